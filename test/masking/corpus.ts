/**
 * Positive and negative cases per built-in detector. `want` is the expected output with the `redact` strategy and
 * every built-in entity on; a negative case has no `want` (the output must be the input, byte for byte).
 */
import type { BuiltinEntity } from '../../extproc/masking/index.ts';

export interface Case {
  entity: BuiltinEntity;
  text: string;
  want?: string;
  /** The value runs to the end of the data (an unterminated PEM block): masked to the end, fail closed. */
  toEnd?: boolean;
}

const b64url = (s: string): string => Buffer.from(s).toString('base64url');
export const JWT_HS256 = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url('{"sub":"1234567890","name":"Jane"}')}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`;
const JWT_NONE = `${b64url('{"typ":"JWT", "alg":"none"}')}.${b64url('{"sub":"x"}')}.`;
const NOT_ALG = `${b64url('{"notalg":"HS256"}')}.${b64url('{"sub":"x"}')}.abcdef`;
const NOT_JSON = `${b64url('{alg HS256')}.${b64url('{"sub":"x"}')}.abcdef`;
export const PEM_RSA =
  '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\nZ1BjP5CE/Wm/Rr500P\n-----END RSA PRIVATE KEY-----';
const PEM_OPENSSH =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----';
const R = (e: string): string => `[REDACTED:${e}]`;

export const CASES: Case[] = [
  // CREDIT_CARD: issuers, grouping, Luhn, neighbours.
  { entity: 'CREDIT_CARD', text: 'card 4111111111111111 end', want: `card ${R('CREDIT_CARD')} end` },
  { entity: 'CREDIT_CARD', text: 'mc 5555555555554444', want: `mc ${R('CREDIT_CARD')}` },
  { entity: 'CREDIT_CARD', text: 'amex 3782 822463 10005.', want: `amex ${R('CREDIT_CARD')}.` },
  { entity: 'CREDIT_CARD', text: 'disc 6011-1111-1111-1117;', want: `disc ${R('CREDIT_CARD')};` },
  { entity: 'CREDIT_CARD', text: 'jcb:3530111333300000', want: `jcb:${R('CREDIT_CARD')}` },
  { entity: 'CREDIT_CARD', text: 'diners (30569309025904)', want: `diners (${R('CREDIT_CARD')})` },
  { entity: 'CREDIT_CARD', text: 'mc2 2223003122003222', want: `mc2 ${R('CREDIT_CARD')}` },
  { entity: 'CREDIT_CARD', text: 'visa13 4222222222222', want: `visa13 ${R('CREDIT_CARD')}` },
  { entity: 'CREDIT_CARD', text: '"4111 1111 1111 1111"', want: `"${R('CREDIT_CARD')}"` },
  { entity: 'CREDIT_CARD', text: '[4111-1111-1111-1111]', want: `[${R('CREDIT_CARD')}]` },
  { entity: 'CREDIT_CARD', text: '4111111111111111,5555555555554444', want: `${R('CREDIT_CARD')},${R('CREDIT_CARD')}` },
  { entity: 'CREDIT_CARD', text: 'é4111111111111111ü', want: `é${R('CREDIT_CARD')}ü` },
  { entity: 'CREDIT_CARD', text: '№4111 1111 1111 1111—ok', want: `№${R('CREDIT_CARD')}—ok` },
  { entity: 'CREDIT_CARD', text: 'カード4111111111111111です', want: `カード${R('CREDIT_CARD')}です` },
  { entity: 'CREDIT_CARD', text: 'uatp 1000 000000 00009', want: `uatp ${R('CREDIT_CARD')}` },
  { entity: 'CREDIT_CARD', text: 'uatp 100000000000009;', want: `uatp ${R('CREDIT_CARD')};` },
  { entity: 'CREDIT_CARD', text: 'mir 2200 0000 0000 0004', want: `mir ${R('CREDIT_CARD')}` },
  { entity: 'CREDIT_CARD', text: 'rupay 8171000000000006', want: `rupay ${R('CREDIT_CARD')}` },
  { entity: 'CREDIT_CARD', text: 'troy 9792-0000-0000-0003', want: `troy ${R('CREDIT_CARD')}` },
  { entity: 'CREDIT_CARD', text: 'uatp wrong length 1000000000000009 and luhn 100000000000008' },
  { entity: 'CREDIT_CARD', text: 'iban tail XX89 4111 1111 1111 1111 and AB12 4111 1111 1111 1111' },
  { entity: 'CREDIT_CARD', text: 'inside tokens DE894111111111111111 4111111111111111AB id-4111111111111111x' },
  { entity: 'CREDIT_CARD', text: 'luhn fails 4111111111111112' },
  { entity: 'CREDIT_CARD', text: 'luhn fails 5555 5555 5555 4445' },
  { entity: 'CREDIT_CARD', text: 'no issuer 1234567812345670' },
  { entity: 'CREDIT_CARD', text: 'too long 41111111111111111111' },
  { entity: 'CREDIT_CARD', text: 'grouped too long 1234 5678 9012 3456 7890' },
  {
    entity: 'CREDIT_CARD',
    text: 'with expiry 4111 1111 1111 1111 12/25',
    want: `with expiry ${R('CREDIT_CARD')} 12/25`,
  },
  {
    entity: 'CREDIT_CARD',
    text: 'and next 4111111111111111 078-05-1120',
    want: `and next ${R('CREDIT_CARD')} ${R('US_SSN')}`,
  },
  {
    entity: 'CREDIT_CARD',
    text: 'two 5555 5555 5555 4444 4111 1111 1111 1111',
    want: `two ${R('CREDIT_CARD')} ${R('CREDIT_CARD')}`,
  },
  { entity: 'CREDIT_CARD', text: 'glued x4111111111111111 and 4111111111111111x' },
  { entity: 'CREDIT_CARD', text: 'mixed separators 4111 1111-1111 1111' },
  { entity: 'CREDIT_CARD', text: 'odd groups 41 11111111111111' },
  {
    entity: 'CREDIT_CARD',
    text: 'amex length 378282246310005 is fine but 37828224631000 is not',
    want: `amex length ${R('CREDIT_CARD')} is fine but 37828224631000 is not`,
  },

  // US_SSN
  { entity: 'US_SSN', text: 'ssn 078-05-1120.', want: `ssn ${R('US_SSN')}.` },
  { entity: 'US_SSN', text: 'ssn:123456789', want: `ssn:${R('US_SSN')}` },
  { entity: 'US_SSN', text: '(665-12-3456)', want: `(${R('US_SSN')})` },
  { entity: 'US_SSN', text: 'ü899-99-9999ü', want: `ü${R('US_SSN')}ü` },
  {
    entity: 'US_SSN',
    text: 'dots 078.05.1120 and spaces 078 05 1120',
    want: `dots ${R('US_SSN')} and spaces ${R('US_SSN')}`,
  },
  { entity: 'US_SSN', text: '{"ssn":"219 09 9999"}', want: `{"ssn":"${R('US_SSN')}"}` },
  { entity: 'US_SSN', text: 'area 000-12-3456' },
  { entity: 'US_SSN', text: 'dotted invalid 000.12.3456 666 12 3456 123.00.4567 123 45 0000' },
  { entity: 'US_SSN', text: 'mixed separators 123-45.6789 and 123 45-6789 and 123.45 6789' },
  { entity: 'US_SSN', text: 'a version 123.45.6789.1 and nine digits that are no SSN 900123456 123006789 123450000' },
  { entity: 'US_SSN', text: 'area 666-12-3456' },
  { entity: 'US_SSN', text: 'area 900-12-3456 and 999-45-6789' },
  { entity: 'US_SSN', text: 'group 123-00-4567' },
  { entity: 'US_SSN', text: 'serial 123-45-0000' },
  { entity: 'US_SSN', text: 'nine digits but 000123456 and 666123456' },
  { entity: 'US_SSN', text: 'longer 123-45-67890 or 123-45-6789-1 or 1234567890' },
  { entity: 'US_SSN', text: 'mixed 123-456789' },

  // EMAIL_ADDRESS
  { entity: 'EMAIL_ADDRESS', text: 'mail john.doe@example.com now', want: `mail ${R('EMAIL_ADDRESS')} now` },
  { entity: 'EMAIL_ADDRESS', text: '<a+tag@sub.example.co.uk>', want: `<${R('EMAIL_ADDRESS')}>` },
  { entity: 'EMAIL_ADDRESS', text: 'end of sentence bob@example.org.', want: `end of sentence ${R('EMAIL_ADDRESS')}.` },
  { entity: 'EMAIL_ADDRESS', text: 'mailto:X_Y@Example.IO', want: `mailto:${R('EMAIL_ADDRESS')}` },
  { entity: 'EMAIL_ADDRESS', text: '«bob@example.com»ü', want: `«${R('EMAIL_ADDRESS')}»ü` },
  { entity: 'EMAIL_ADDRESS', text: 'ébob@example.com', want: `é${R('EMAIL_ADDRESS')}` },
  { entity: 'EMAIL_ADDRESS', text: '"o\'brien@my-host.example.net",', want: `"${R('EMAIL_ADDRESS')}",` },
  { entity: 'EMAIL_ADDRESS', text: 'user@localhost' },
  { entity: 'EMAIL_ADDRESS', text: 'a@b.c and @example.com and x@.com' },
  { entity: 'EMAIL_ADDRESS', text: 'john..doe@example.com' },
  { entity: 'EMAIL_ADDRESS', text: 'name@-example.com and name@example-.com' },
  { entity: 'EMAIL_ADDRESS', text: 'version 1.2@3.4 and foo@bar.123' },
  { entity: 'EMAIL_ADDRESS', text: 'idn ric@exämple.com ok', want: `idn ${R('EMAIL_ADDRESS')} ok` },
  { entity: 'EMAIL_ADDRESS', text: 'ivan@пример.com.', want: `${R('EMAIL_ADDRESS')}.` },
  { entity: 'EMAIL_ADDRESS', text: 'a-label ric@xn--exmple-cua.com', want: `a-label ${R('EMAIL_ADDRESS')}` },
  {
    entity: 'EMAIL_ADDRESS',
    text: 'idn tld <ivan@xn--e1afmkfd.xn--p1ai>',
    want: `<${R('EMAIL_ADDRESS')}>`.replace('<', 'idn tld <'),
  },
  { entity: 'EMAIL_ADDRESS', text: 'bob@example.com»ü', want: `${R('EMAIL_ADDRESS')}»ü` },
  { entity: 'EMAIL_ADDRESS', text: 'unicode tld ivan@пример.рф and digits x@example.x1 and y@example.xn--' },

  // PHONE_NUMBER
  { entity: 'PHONE_NUMBER', text: 'call +1 415 555 0100.', want: `call ${R('PHONE_NUMBER')}.` },
  { entity: 'PHONE_NUMBER', text: 'uk +44 20 7946 0958', want: `uk ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'e164:+14155550100;', want: `e164:${R('PHONE_NUMBER')};` },
  { entity: 'PHONE_NUMBER', text: 'us (415) 555-0100', want: `us ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'us +1 (415) 555-0100', want: `us ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: '415-555-0100, 415.555.0100', want: `${R('PHONE_NUMBER')}, ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'london 020 7946 0958', want: `london ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'tollfree 1-800-555-0199', want: `tollfree ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'paris 01 23 45 67 89', want: `paris ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'tél. ☎+33 1 23 45 67 89ü', want: `tél. ☎${R('PHONE_NUMBER')}ü` },
  { entity: 'PHONE_NUMBER', text: 'date 2024-01-15 time 12:30:45' },
  { entity: 'PHONE_NUMBER', text: 'ip 192.168.100.200 and 10.0.0.1' },
  { entity: 'PHONE_NUMBER', text: 'version v1.2.3 and 415-555-010' },
  { entity: 'PHONE_NUMBER', text: 'leading zero +0123456789 and +0 12 34 56 78' },
  { entity: 'PHONE_NUMBER', text: 'other groupings 0532 0130 01 and 12-34-56-7890 and 1234 567 890' },
  { entity: 'PHONE_NUMBER', text: 'ungrouped 4155550100 and short +1234' },
  { entity: 'PHONE_NUMBER', text: 'dots not nanp 41.55.55.01.00' },

  // IBAN_CODE
  { entity: 'IBAN_CODE', text: 'iban DE89 3704 0044 0532 0130 00.', want: `iban ${R('IBAN_CODE')}.` },
  { entity: 'IBAN_CODE', text: 'GB82WEST12345698765432', want: R('IBAN_CODE') },
  { entity: 'IBAN_CODE', text: '(FR1420041010050500013M02606)', want: `(${R('IBAN_CODE')})` },
  {
    entity: 'IBAN_CODE',
    text: 'nl: NL91ABNA0417164300, no: NO9386011117947',
    want: `nl: ${R('IBAN_CODE')}, no: ${R('IBAN_CODE')}`,
  },
  { entity: 'IBAN_CODE', text: 'ü GB82 WEST 1234 5698 7654 32ü', want: `ü ${R('IBAN_CODE')}ü` },
  { entity: 'IBAN_CODE', text: 'dashes DE89-3704-0044-0532-0130-00.', want: `dashes ${R('IBAN_CODE')}.` },
  { entity: 'IBAN_CODE', text: 'guiana GF41 2004 1010 0505 0001 3M02 606', want: `guiana ${R('IBAN_CODE')}` },
  { entity: 'IBAN_CODE', text: 'åland AX2112345600000785', want: `åland ${R('IBAN_CODE')}` },
  { entity: 'IBAN_CODE', text: 'mixed separators DE89 3704-0044 0532 0130 00 and DE89--3704004405320130 00' },
  { entity: 'IBAN_CODE', text: 'dash mid-group DE89-370-40044-0532-0130-00' },
  { entity: 'IBAN_CODE', text: 'mod97 fails DE89 3704 0044 0532 0130 01' },
  { entity: 'IBAN_CODE', text: 'unknown country XX89370400440532013000' },
  { entity: 'IBAN_CODE', text: 'wrong length DE8937040044053201300 and DE893704004405320130001' },
  { entity: 'IBAN_CODE', text: 'lower case de89370400440532013000' },
  { entity: 'IBAN_CODE', text: 'double space DE89  3704 0044 0532 0130 00' },

  // JWT
  { entity: 'JWT', text: `token ${JWT_HS256} end`, want: `token ${R('JWT')} end` },
  { entity: 'JWT', text: `{"id_token":"${JWT_HS256}"}`, want: `{"id_token":"${R('JWT')}"}` },
  { entity: 'JWT', text: `unsecured ${JWT_NONE} ok`, want: `unsecured ${R('JWT')} ok` },
  { entity: 'JWT', text: `ü${JWT_HS256}ü`, want: `ü${R('JWT')}ü` },
  { entity: 'JWT', text: `no alg ${NOT_ALG}` },
  { entity: 'JWT', text: `not json ${NOT_JSON}` },
  { entity: 'JWT', text: `two segments ${JWT_HS256.split('.').slice(0, 2).join('.')} only` },
  { entity: 'JWT', text: `inside base64 AAAA${JWT_HS256}` },

  // AWS_ACCESS_KEY
  {
    entity: 'AWS_ACCESS_KEY',
    text: 'aws_access_key_id = AKIAIOSFODNN7EXAMPLE',
    want: `aws_access_key_id = ${R('AWS_ACCESS_KEY')}`,
  },
  { entity: 'AWS_ACCESS_KEY', text: '"ASIAY34FZKBOKMUTVV7A",', want: `"${R('AWS_ACCESS_KEY')}",` },
  { entity: 'AWS_ACCESS_KEY', text: 'ключAKIAIOSFODNN7EXAMPLEключ', want: `ключ${R('AWS_ACCESS_KEY')}ключ` },
  { entity: 'AWS_ACCESS_KEY', text: 'short AKIAIOSFODNN7EXAMPL and long AKIAIOSFODNN7EXAMPLEX' },
  { entity: 'AWS_ACCESS_KEY', text: 'glued xAKIAIOSFODNN7EXAMPLE and lower AKIAiosfodnn7example' },
  { entity: 'AWS_ACCESS_KEY', text: 'other prefix AKIBIOSFODNN7EXAMPLE' },

  // PRIVATE_KEY
  { entity: 'PRIVATE_KEY', text: `key:\n${PEM_RSA}\nafter`, want: `key:\n${R('PRIVATE_KEY')}\nafter` },
  { entity: 'PRIVATE_KEY', text: `${PEM_OPENSSH}\n`, want: `${R('PRIVATE_KEY')}\n` },
  { entity: 'PRIVATE_KEY', text: `{"key":"${PEM_RSA.replace(/\n/g, '\\n')}"}`, want: `{"key":"${R('PRIVATE_KEY')}"}` },
  {
    entity: 'PRIVATE_KEY',
    text: 'cut off -----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN',
    want: `cut off ${R('PRIVATE_KEY')}`,
    toEnd: true,
  },
  { entity: 'PRIVATE_KEY', text: '-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----' },
  { entity: 'PRIVATE_KEY', text: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' },

  // BEARER_TOKEN
  {
    entity: 'BEARER_TOKEN',
    text: 'Authorization: Bearer abc.def-ghi_jkl\r\n',
    want: `Authorization: Bearer ${R('BEARER_TOKEN')}\r\n`,
  },
  {
    entity: 'BEARER_TOKEN',
    text: 'authorization: Basic dXNlcjpwYXNzd29yZA==',
    want: `authorization: Basic ${R('BEARER_TOKEN')}`,
  },
  {
    entity: 'BEARER_TOKEN',
    text: `{"Authorization": "Bearer ${JWT_HS256}"}`,
    want: `{"Authorization": "Bearer ${R('BEARER_TOKEN')}"}`,
  },
  {
    entity: 'BEARER_TOKEN',
    text: "curl -H 'Authorization: token ghp_abcdefghijklmnop1234' x",
    want: `curl -H 'Authorization: token ${R('BEARER_TOKEN')}' x`,
  },
  {
    entity: 'BEARER_TOKEN',
    text: 'use bearer 0123456789abcdef please',
    want: `use bearer ${R('BEARER_TOKEN')} please`,
  },
  { entity: 'BEARER_TOKEN', text: 'BEARER sk-live-51HxQ', want: `BEARER ${R('BEARER_TOKEN')}` },
  { entity: 'BEARER_TOKEN', text: 'bearer authentication and Bearer token and the bearer of bad news' },
  { entity: 'BEARER_TOKEN', text: 'Authorization: required' },

  // PASSWORD
  { entity: 'PASSWORD', text: 'password=hunter2', want: `password=${R('PASSWORD')}` },
  {
    entity: 'PASSWORD',
    text: '{"password": "hunter2", "user": "bob"}',
    want: `{"password": "${R('PASSWORD')}", "user": "bob"}`,
  },
  { entity: 'PASSWORD', text: 'PGPASSWORD=s3cret psql -h db', want: `PGPASSWORD=${R('PASSWORD')} psql -h db` },
  { entity: 'PASSWORD', text: "DB_PASSWORD: 'p@ss w0rd'\n", want: `DB_PASSWORD: '${R('PASSWORD')}'\n` },
  { entity: 'PASSWORD', text: 'passwd=abc;x=1', want: `passwd=${R('PASSWORD')};x=1` },
  { entity: 'PASSWORD', text: '?user=a&pwd=abc&x=1', want: `?user=a&pwd=${R('PASSWORD')}&x=1` },
  { entity: 'PASSWORD', text: 'run --password=xyz --verbose', want: `run --password=${R('PASSWORD')} --verbose` },
  { entity: 'PASSWORD', text: '"{\\"password\\":\\"x1y2\\"}"', want: `"{\\"password\\":\\"${R('PASSWORD')}\\"}"` },
  { entity: 'PASSWORD', text: 'userPassword: sécurité!', want: `userPassword: ${R('PASSWORD')}` },
  { entity: 'PASSWORD', text: '{"password":"a\\"b"}', want: `{"password":"${R('PASSWORD')}"}` },
  { entity: 'PASSWORD', text: 'pass: letmein', want: `pass: ${R('PASSWORD')}` },
  { entity: 'PASSWORD', text: 'password: \nnext line' },
  { entity: 'PASSWORD', text: 'the password is secret; passwords are hashed' },
  { entity: 'PASSWORD', text: '{"password": null}' },
  { entity: 'PASSWORD', text: 'compass=north bypass=1 pwdx=1 cwd=/tmp' },
  { entity: 'PASSWORD', text: 'if password == "x"' },
];

/** Plain text with nothing to mask (mixed scripts, numbers, punctuation), for byte-identity checks. */
export const CLEAN = [
  'The quick brown fox jumps over the lazy dog. Ünïcödé ✓ 日本語 — 42, 3.14, 2024-01-15 12:30.',
  'order #123456 shipped to 10.0.0.1 via v1.2.3; ratio 1:2; price $19.99; p=0.05; a@b; e-mail me.',
  'Bearer of news, passwords are hashed, authorization required, eyJ alone, AKIA alone, ----- dashes',
];
