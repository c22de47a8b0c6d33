/** Why a Kubernetes request could not be classified. Every message is safe to show the agent: none echoes the body. */
export type ClassifyErrorCode =
  | 'bad-path'
  | 'ambiguous-path'
  | 'bad-query'
  | 'unsupported-method'
  | 'unsupported-content-type'
  | 'unsupported-content-encoding'
  | 'bad-body';

export interface ClassifyError {
  refused: true;
  code: ClassifyErrorCode;
  message: string;
}

export function refuse(code: ClassifyErrorCode, message: string): ClassifyError {
  return { refused: true, code, message };
}

export function isClassifyError(x: unknown): x is ClassifyError {
  return typeof x === 'object' && x !== null && (x as { refused?: unknown }).refused === true;
}
