// Entity ids: the order of BUILTIN_ENTITIES in extproc/masking/types.ts (bit i of the entity mask). Ids 0–9 are the
// first release's and never move; later entities are appended. Names follow Microsoft Presidio's where it has one.
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
export const IP_ADDRESS: i32 = 10;
export const URL_CREDENTIALS: i32 = 11;
export const CRYPTO: i32 = 12;
export const US_ITIN: i32 = 13;
export const US_PASSPORT: i32 = 14;
export const ABA_ROUTING_NUMBER: i32 = 15;
export const UK_NHS: i32 = 16;
export const UK_NINO: i32 = 17;
export const AWS_SECRET_KEY: i32 = 18;
export const GITHUB_TOKEN: i32 = 19;
export const GITLAB_TOKEN: i32 = 20;
export const SLACK_TOKEN: i32 = 21;
export const STRIPE_KEY: i32 = 22;
export const OPENAI_API_KEY: i32 = 23;
export const BUILTIN_COUNT: i32 = 24;
/** Ids 32..63 are named by the host (custom detectors in Node, field rules); the entity mask covers ids 0..31. */
export const CUSTOM_BASE: i32 = 32;
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
    case IP_ADDRESS: return "IP_ADDRESS";
    case URL_CREDENTIALS: return "URL_CREDENTIALS";
    case CRYPTO: return "CRYPTO";
    case US_ITIN: return "US_ITIN";
    case US_PASSPORT: return "US_PASSPORT";
    case ABA_ROUTING_NUMBER: return "ABA_ROUTING_NUMBER";
    case UK_NHS: return "UK_NHS";
    case UK_NINO: return "UK_NINO";
    case AWS_SECRET_KEY: return "AWS_SECRET_KEY";
    case GITHUB_TOKEN: return "GITHUB_TOKEN";
    case GITLAB_TOKEN: return "GITLAB_TOKEN";
    case SLACK_TOKEN: return "SLACK_TOKEN";
    case STRIPE_KEY: return "STRIPE_KEY";
    case OPENAI_API_KEY: return "OPENAI_API_KEY";
    default: return "";
  }
}
