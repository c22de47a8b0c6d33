/**
 * An SSH `exec` command line as the remote shell will run it: parsed with mvdan/sh (the parser behind shfmt, built to
 * JavaScript) into the commands it runs, with their arguments after quote removal, through pipes, `;`, `&&`, `||`,
 * `&`, subshells, `{ …; }` groups, `time`, redirections, and the command strings of `sh -c`/`bash -c` (and `eval`),
 * which are parsed in turn.
 *
 * A policy must see every command that will run and every argument as the command receives it, so anything whose value
 * is only known when the shell runs it is refused, never guessed: parameter and arithmetic expansion, command and
 * process substitution (an argument built from `$(…)` is unknown), unquoted glob patterns, brace expansion and `~`,
 * `$'…'` strings, variable assignments before a command (they can change what it does: PATH, LD_PRELOAD), function
 * definitions (they can rename any command), control flow (if, loops, case, [[ ]], (( ))), and a shell that would read
 * a script or its standard input. The error says which.
 */
import sh, { type ShNode } from 'mvdan-sh';

export interface ShellCommand {
  /** The name the shell looks up: the last path segment of the command word (`/bin/rm` → `rm`). */
  program: string;
  /** The command word as written (after quote removal), when it names a path (`/bin/rm`, `./deploy`). */
  path?: string;
  args: string[];
}

export interface Redirection {
  /** The operator as written: `>`, `>>`, `<`, `&>`, `2>&1` is `>&` with fd `2`, … */
  op: string;
  /** The file descriptor before the operator, or "" for the default. */
  fd: string;
  /** The file (or descriptor, or here-string) after the operator; a here-document's delimiter. */
  target: string;
}

export interface CommandLine {
  /** Every command the line runs, in the order they appear. */
  commands: ShellCommand[];
  redirects: Redirection[];
}

export type Classification = { ok: true; line: CommandLine } | { ok: false; error: string };

/** Longest command line classified; OpenSSH sends the whole line in one request, a real one is far shorter. */
export const MAX_COMMAND_LINE = 64 * 1024;
/** `bash -c "sh -c '…'"` nesting beyond this is refused. */
const MAX_SHELL_DEPTH = 4;

const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'ksh', 'mksh', 'zsh', 'busybox']);
/** Shell options that take the next argument as their value. */
const SHELL_OPTIONS_WITH_VALUE = new Set(['-o', '+o', '-O', '+O', '--rcfile', '--init-file']);

class NotStatic extends Error {}

const syntax = sh.syntax;

/** Go token numbers of the operators, learned from the parser itself by parsing one sample of each. */
const OPERATORS = (() => {
  const parser = syntax.NewParser();
  const first = (src: string): ShNode => (parser.Parse(src, '').Stmts as ShNode[])[0];
  const binary = new Map<number, string>();
  for (const op of ['&&', '||', '|', '|&']) binary.set((first(`a ${op} b`).Cmd as ShNode).Op as number, op);
  const redirect = new Map<number, string>();
  for (const [op, src] of [
    ['>', 'a > f'],
    ['>>', 'a >> f'],
    ['<', 'a < f'],
    ['<>', 'a <> f'],
    ['<&', 'a <&0'],
    ['>&', 'a >&2'],
    ['>|', 'a >| f'],
    ['<<', 'a << E\nx\nE\n'],
    ['<<-', 'a <<- E\nx\nE\n'],
    ['<<<', 'a <<< w'],
    ['&>', 'a &> f'],
    ['&>>', 'a &>> f'],
  ]) {
    redirect.set((first(src).Redirs as ShNode[])[0].Op as number, op);
  }
  return { binary, redirect };
})();

/** Classifies `line`; never throws. */
export function classifyCommandLine(line: string): Classification {
  if (line.length > MAX_COMMAND_LINE) {
    return { ok: false, error: `command line longer than ${MAX_COMMAND_LINE} characters` };
  }
  if (line.includes('\0')) return { ok: false, error: 'command line contains a NUL byte' };
  const out: CommandLine = { commands: [], redirects: [] };
  try {
    parseInto(line, out, 0);
  } catch (err) {
    if (err instanceof NotStatic) return { ok: false, error: err.message };
    if (err instanceof RangeError) return { ok: false, error: 'command line nested too deeply' };
    throw err;
  }
  if (out.commands.length === 0) return { ok: false, error: 'command line runs no command' };
  return { ok: true, line: out };
}

function parseInto(src: string, out: CommandLine, depth: number): void {
  let file: ShNode;
  try {
    file = syntax.NewParser().Parse(src, '');
  } catch (err) {
    throw new NotStatic(`shell syntax error: ${goErrorMessage(err)}`);
  }
  for (const stmt of file.Stmts as ShNode[]) statement(stmt, out, depth);
}

function goErrorMessage(err: unknown): string {
  const e = err as { Error?: () => string } | null;
  return typeof e?.Error === 'function' ? e.Error().replace(/^:/, '') : String(err);
}

function statement(stmt: ShNode, out: CommandLine, depth: number): void {
  if (stmt.Coprocess) throw new NotStatic('coprocesses are not supported');
  for (const r of stmt.Redirs as ShNode[]) out.redirects.push(redirection(r));
  if (stmt.Cmd) command(stmt.Cmd as ShNode, out, depth);
}

function command(cmd: ShNode, out: CommandLine, depth: number): void {
  const type = syntax.NodeType(cmd);
  switch (type) {
    case 'CallExpr':
      return call(cmd, out, depth);
    case 'BinaryCmd':
      if (!OPERATORS.binary.has(cmd.Op as number)) throw new NotStatic('unknown shell operator');
      statement(cmd.X as ShNode, out, depth);
      statement(cmd.Y as ShNode, out, depth);
      return;
    case 'Subshell':
    case 'Block':
      for (const s of cmd.Stmts as ShNode[]) statement(s, out, depth);
      return;
    case 'TimeClause':
      if (cmd.Stmt) statement(cmd.Stmt as ShNode, out, depth);
      return;
    default:
      throw new NotStatic(`${describe(type)} cannot be decided before the shell runs it`);
  }
}

function describe(type: string): string {
  switch (type) {
    case 'IfClause':
      return 'an if statement';
    case 'WhileClause':
      return 'a while/until loop';
    case 'ForClause':
      return 'a for loop';
    case 'CaseClause':
      return 'a case statement';
    case 'FuncDecl':
      return 'a function definition';
    case 'ArithmCmd':
      return 'an arithmetic command ((…))';
    case 'TestClause':
      return 'a test [[ … ]]';
    case 'DeclClause':
      return 'a declaration (export, local, declare, readonly, typeset)';
    case 'LetClause':
      return 'a let command';
    default:
      return `a ${type}`;
  }
}

function call(cmd: ShNode, out: CommandLine, depth: number): void {
  if ((cmd.Assigns as ShNode[]).length > 0) {
    throw new NotStatic('variable assignments (NAME=value) are not allowed: they can change what a command does');
  }
  const words = (cmd.Args as ShNode[]).map(staticWord);
  if (words.length === 0) return;
  const [first, ...args] = words;
  const slash = first.lastIndexOf('/');
  const program = slash >= 0 ? first.slice(slash + 1) : first;
  if (program === '') throw new NotStatic(`command word ${JSON.stringify(first)} names no program`);
  if (SHELLS.has(program)) return shellWrapper(program, args, out, depth);
  if (program === 'eval') return nested(args.join(' '), out, depth);
  out.commands.push(slash >= 0 ? { program, path: first, args } : { program, args });
}

/** `sh -c 'CMD'`: the command string is what runs; any other use of a shell runs something we cannot see. */
function shellWrapper(shell: string, args: string[], out: CommandLine, depth: number): void {
  let commandMode = false;
  let i = 0;
  const rest = shell === 'busybox' ? args.slice(1) : args;
  if (shell === 'busybox' && !SHELLS.has(args[0] ?? '')) {
    throw new NotStatic('busybox runs other programs through its first argument; name the program directly');
  }
  for (; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--' || a === '-') {
      i++;
      break;
    }
    if (SHELL_OPTIONS_WITH_VALUE.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('--')) continue;
    if (!/^[-+][A-Za-z]+$/.test(a)) break;
    if (a[0] === '-' && a.includes('c')) commandMode = true;
  }
  if (!commandMode) {
    throw new NotStatic(`${shell} without -c runs a script or its standard input, which cannot be inspected`);
  }
  if (i >= rest.length) throw new NotStatic(`${shell} -c has no command string`);
  nested(rest[i], out, depth);
}

function nested(src: string, out: CommandLine, depth: number): void {
  if (depth + 1 > MAX_SHELL_DEPTH) throw new NotStatic(`shells nested more than ${MAX_SHELL_DEPTH} deep`);
  parseInto(src, out, depth + 1);
}

function redirection(r: ShNode): Redirection {
  const op = OPERATORS.redirect.get(r.Op as number);
  if (!op) throw new NotStatic('unknown redirection operator');
  const fd = r.N ? String((r.N as ShNode).Value) : '';
  const target = staticWord(r.Word as ShNode);
  // A here-document's body is expanded by the shell unless its delimiter is quoted: it must hold no expansion.
  if (r.Hdoc) for (const p of (r.Hdoc as ShNode).Parts as ShNode[]) heredocPart(p);
  return { op, fd, target };
}

function heredocPart(p: ShNode): void {
  const type = syntax.NodeType(p);
  if (type !== 'Lit') throw new NotStatic(`a here-document with ${partName(type)} cannot be expanded statically`);
}

/** A word's value after expansion and quote removal, when it is known without running anything. */
function staticWord(word: ShNode): string {
  const parts = word.Parts as ShNode[];
  let value = '';
  parts.forEach((p, index) => {
    const type = syntax.NodeType(p);
    switch (type) {
      case 'Lit':
        value += unquotedLiteral(String(p.Value), index === 0);
        return;
      case 'SglQuoted':
        if (p.Dollar) throw new NotStatic("$'…' strings are not supported; use '…' or \"…\"");
        value += String(p.Value);
        return;
      case 'DblQuoted':
        if (p.Dollar) throw new NotStatic('$"…" strings are not supported; use "…"');
        for (const q of p.Parts as ShNode[]) {
          const inner = syntax.NodeType(q);
          if (inner !== 'Lit') throw new NotStatic(`${partName(inner)} cannot be expanded statically`);
          value += doubleQuotedLiteral(String(q.Value));
        }
        return;
      default:
        throw new NotStatic(`${partName(type)} cannot be expanded statically`);
    }
  });
  return value;
}

function partName(type: string): string {
  switch (type) {
    case 'ParamExp':
      return 'a parameter expansion ($NAME or $' + '{…})';
    case 'CmdSubst':
      return 'a command substitution ($(…) or `…`)';
    case 'ArithmExp':
      return 'an arithmetic expansion $((…))';
    case 'ProcSubst':
      return 'a process substitution <(…) or >(…)';
    case 'ExtGlob':
      return 'an extended glob pattern';
    case 'BraceExp':
      return 'a brace expansion';
    default:
      return `a ${type}`;
  }
}

/** Quote removal of an unquoted literal; refuses what the shell would still expand (globs, braces, a leading `~`). */
function unquotedLiteral(lit: string, wordStart: boolean): string {
  if (wordStart && lit.startsWith('~'))
    throw new NotStatic('a ~ (home directory) expansion cannot be expanded statically');
  let value = '';
  let braceOpen = false;
  for (let i = 0; i < lit.length; i++) {
    const c = lit[i];
    if (c === '\\') {
      const next = lit[i + 1];
      i++;
      if (next === undefined || next === '\n') continue;
      value += next;
      continue;
    }
    if (c === '*' || c === '?' || c === '[') {
      throw new NotStatic(`the glob pattern in ${JSON.stringify(lit)} is expanded by the shell at run time; quote it`);
    }
    if (c === '{') braceOpen = true;
    if (braceOpen && (c === ',' || (c === '.' && lit[i + 1] === '.'))) {
      throw new NotStatic(`the brace expansion in ${JSON.stringify(lit)} is expanded by the shell; quote it`);
    }
    value += c;
  }
  return value;
}

/** Inside "…", a backslash escapes only $ ` " \ and newline (POSIX 2.2.3). */
function doubleQuotedLiteral(lit: string): string {
  let value = '';
  for (let i = 0; i < lit.length; i++) {
    const c = lit[i];
    const next = lit[i + 1];
    if (c === '\\' && next !== undefined && '$`"\\\n'.includes(next)) {
      i++;
      if (next !== '\n') value += next;
      continue;
    }
    value += c;
  }
  return value;
}
