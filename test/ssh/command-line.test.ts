import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyCommandLine } from '../../extproc/ssh/command-line.ts';

const commandsOf = (line: string) => {
  const c = classifyCommandLine(line);
  assert.ok(c.ok, `${line}: ${c.ok ? '' : c.error}`);
  return c.line.commands;
};

test('commands and arguments through pipes, lists, subshells, groups, time and background jobs', () => {
  assert.deepEqual(commandsOf('ls -l /srv | grep data && (cd /tmp; pwd) || { echo no; } ; time sleep 1 &'), [
    { program: 'ls', args: ['-l', '/srv'] },
    { program: 'grep', args: ['data'] },
    { program: 'cd', args: ['/tmp'] },
    { program: 'pwd', args: [] },
    { program: 'echo', args: ['no'] },
    { program: 'sleep', args: ['1'] },
  ]);
});

test('quotes and escapes are removed as the shell removes them', () => {
  assert.deepEqual(commandsOf(`r\\m -rf "/srv/da"'ta' "a\\$b\\q" \\*`), [
    { program: 'rm', args: ['-rf', '/srv/data', 'a$b\\q', '*'] },
  ]);
  assert.deepEqual(commandsOf('/bin/rm x'), [{ program: 'rm', path: '/bin/rm', args: ['x'] }]);
});

test('sh -c, bash -c (with options), nested and eval strings are parsed in turn', () => {
  assert.deepEqual(commandsOf(`bash -lc 'ls && sh -c "rm -rf /srv/data"'`), [
    { program: 'ls', args: [] },
    { program: 'rm', args: ['-rf', '/srv/data'] },
  ]);
  assert.deepEqual(commandsOf(`sh -e -c 'eval "rm -rf /"' arg0`), [{ program: 'rm', args: ['-rf', '/'] }]);
  assert.deepEqual(commandsOf(`busybox sh -c 'id'`), [{ program: 'id', args: [] }]);
});

test('redirections are listed with their operator, descriptor and target', () => {
  const c = classifyCommandLine('cat < in.txt > /dev/null 2>&1 >> log');
  assert.ok(c.ok);
  assert.deepEqual(c.line.redirects, [
    { op: '<', fd: '', target: 'in.txt' },
    { op: '>', fd: '', target: '/dev/null' },
    { op: '>&', fd: '2', target: '1' },
    { op: '>>', fd: '', target: 'log' },
  ]);
});

const REFUSED: [string, RegExp][] = [
  ['echo $(id)', /command substitution/],
  ['echo `id`', /command substitution/],
  ['cat "$(echo /etc/shadow)"', /command substitution/],
  ['rm -rf $DIR', /parameter expansion/],
  ['echo $((1+2))', /arithmetic expansion/],
  ['diff <(ls a) <(ls b)', /process substitution/],
  ['rm -rf /srv/*', /glob pattern/],
  ['rm -rf /srv/{data,x}', /brace expansion/],
  ['cat ~/.ssh/id_ed25519', /~/],
  ["echo $'\\x72m'", /\$'…'/],
  ['PATH=/tmp ls', /variable assignments/],
  ['ls() { rm -rf /; }; ls', /function definition/],
  ['for f in a; do rm $f; done', /for loop/],
  ['if true; then rm -rf /; fi', /if statement/],
  ['export X=1', /declaration/],
  ['[[ -f x ]] && rm x', /test/],
  ['echo rm -rf / | bash', /bash without -c/],
  ['sh script.sh', /sh without -c/],
  ['bash -c', /no command string/],
  ['cat <<EOF\n$(rm -rf /)\nEOF', /here-document/],
  ['echo "unterminated', /syntax error/],
  ['', /runs no command/],
  [`sh -c "sh -c 'sh -c \\"sh -c \\\\\\"sh -c id\\\\\\"\\"'"`, /nested more than/],
];

for (const [line, reason] of REFUSED) {
  test(`refused: ${JSON.stringify(line)}`, () => {
    const c = classifyCommandLine(line);
    assert.equal(c.ok, false, JSON.stringify(c));
    if (!c.ok) assert.match(c.error, reason);
  });
}
