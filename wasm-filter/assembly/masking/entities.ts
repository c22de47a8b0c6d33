// Entity ids: the order of BUILTIN_ENTITIES in extproc/masking/types.ts (bit i of the entity mask).
export const CREDIT_CARD: i32 = 0;
export const US_SSN: i32 = 1;
export const EMAIL_ADDRESS: i32 = 2;
export const PHONE_NUMBER: i32 = 3;
export const IBAN_CODE: i32 = 4;
export const JWT: i32 = 5;
export const AWS_ACCESS_KEY: i32 = 6;
export const PRIVATE_KEY: i32 = 7;
export const BEARER_TOKEN: i32 = 8;
export const PASSWORD: i32 = 9;
export const BUILTIN_COUNT: i32 = 10;
/** Ids 16..63 are named by the host (custom detectors in Node, field rules). */
export const MAX_ENTITIES: i32 = 64;

export function builtinName(id: i32): string {
  switch (id) {
    case CREDIT_CARD: return "CREDIT_CARD";
    case US_SSN: return "US_SSN";
    case EMAIL_ADDRESS: return "EMAIL_ADDRESS";
    case PHONE_NUMBER: return "PHONE_NUMBER";
    case IBAN_CODE: return "IBAN_CODE";
    case JWT: return "JWT";
    case AWS_ACCESS_KEY: return "AWS_ACCESS_KEY";
    case PRIVATE_KEY: return "PRIVATE_KEY";
    case BEARER_TOKEN: return "BEARER_TOKEN";
    case PASSWORD: return "PASSWORD";
    default: return "";
  }
}
