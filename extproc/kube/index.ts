/** The Kubernetes adapter's public surface: the adapter itself, and its classifier for the policy tools and the CLI. */
export { classifyKubeRequest } from './classify-request.ts';
export type { KubeRequest } from './classify-request.ts';
export { isClassifyError } from './classify-error.ts';
export type { ClassifyError, ClassifyErrorCode } from './classify-error.ts';
export { resolveRequestInfo } from './request-info.ts';
export type { RequestInfo } from './request-info.ts';
export type { PatchType } from './patch.ts';
export { kubeExtProcAdapter, TARGET_METADATA, type KubeAdapterOptions } from './kube-adapter.ts';
export { KubeProcessor, type ProcessorDeps } from './processor.ts';
export { METADATA_NAMESPACE } from './envoy-messages.ts';
export { classifyK8sSample } from './sample-classifier.ts';
export { recordFilterRefusal, type FilterRefusalRecord, type FilterRefusalReport } from './filter-refusal.ts';
