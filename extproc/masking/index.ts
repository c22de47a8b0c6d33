/** Masking: one engine (the wasm core shared with the Envoy filter) for every data path. */
export { BUILTIN_ENTITIES, ENTITY_VALIDATION, STRATEGIES } from './types.ts';
export type { BuiltinEntity, CustomDetector, MaskingRule, Strategy } from './types.ts';
export {
  builtinPlan,
  columnMatcher,
  compileMaskingRules,
  MaskingRulesError,
  MAX_CUSTOM,
  validateMaskingRules,
} from './compile.ts';
export type { CompiledMasking, EntityMasking, FieldMasking, MaskingRuleIssue } from './compile.ts';
export { lazyMaskingEngine, loadMaskingEngine, MaskingEngine, MaskingStream } from './engine.ts';
export type { Detection, Finding, MaskJsonOptions, MaskResult } from './engine.ts';
export { MaskingCoreMissingError, WASM_PATH } from './wasm-core.ts';
