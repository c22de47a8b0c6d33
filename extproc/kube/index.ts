export { classifyKubeRequest } from './classify-request.ts';
export type { KubeRequest } from './classify-request.ts';
export { isClassifyError } from './classify-error.ts';
export type { ClassifyError, ClassifyErrorCode } from './classify-error.ts';
export { resolveRequestInfo } from './request-info.ts';
export type { RequestInfo } from './request-info.ts';
export type { PatchType } from './patch.ts';
