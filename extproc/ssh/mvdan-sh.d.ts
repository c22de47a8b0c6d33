/**
 * The part of `mvdan-sh` (mvdan/sh's syntax package built to JavaScript with GopherJS) the command-line classifier
 * reads. Nodes are Go structs: fields as in https://pkg.go.dev/mvdan.cc/sh/v3/syntax, operators as Go's token numbers
 * (the classifier learns them by parsing a sample of each, never from hard-coded values).
 */
declare module 'mvdan-sh' {
  export interface ShNode {
    [field: string]: unknown;
  }
  export interface ShParser {
    /** Throws a Go error object (its `Error()` is the message, with line and column) on a syntax error. */
    Parse(src: string, name: string): ShNode;
  }
  const sh: {
    syntax: {
      NewParser(): ShParser;
      /** The Go type name of a node: "CallExpr", "BinaryCmd", "Lit", … */
      NodeType(node: ShNode): string;
    };
  };
  export default sh;
}
