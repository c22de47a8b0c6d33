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
  {
    entity: 'CREDIT_CARD',
    text: 'then numbers 4111 1111 1111 1111 137 42 ok',
    want: `then numbers ${R('CREDIT_CARD')} 137 42 ok`,
  },
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
  { entity: 'PHONE_NUMBER', text: 'tel +1 415 555 0100 3 items', want: `tel ${R('PHONE_NUMBER')} 3 items` },
  { entity: 'PHONE_NUMBER', text: 'tel +1 415 555 0100 42ms', want: `tel ${R('PHONE_NUMBER')} 42ms` },
  { entity: 'PHONE_NUMBER', text: 'tel +1 415 555 0100 137 42ms', want: `tel ${R('PHONE_NUMBER')} 137 42ms` },
  { entity: 'PHONE_NUMBER', text: 'uk +44 20 7946 0958', want: `uk ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'e164:+14155550100;', want: `e164:${R('PHONE_NUMBER')};` },
  { entity: 'PHONE_NUMBER', text: 'us (415) 555-0100', want: `us ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'us +1 (415) 555-0100', want: `us ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: '415-555-0100, 415.555.0100', want: `${R('PHONE_NUMBER')}, ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'london 020 7946 0958', want: `london ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'tollfree 1-800-555-0199', want: `tollfree ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'paris 01 23 45 67 89', want: `paris ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'tél. ☎+33 1 23 45 67 89ü', want: `tél. ☎${R('PHONE_NUMBER')}ü` },
  { entity: 'PHONE_NUMBER', text: 'uk mobile 07700 900123.', want: `uk mobile ${R('PHONE_NUMBER')}.` },
  {
    entity: 'PHONE_NUMBER',
    text: 'berlin 030 12345678, mobil 0171 1234567',
    want: `berlin ${R('PHONE_NUMBER')}, mobil ${R('PHONE_NUMBER')}`,
  },
  {
    entity: 'PHONE_NUMBER',
    text: 'au 0412 345 678 / (02) 1234 5678',
    want: `au ${R('PHONE_NUMBER')} / ${R('PHONE_NUMBER')}`,
  },
  { entity: 'PHONE_NUMBER', text: 'roma 06 1234 5678', want: `roma ${R('PHONE_NUMBER')}` },
  { entity: 'PHONE_NUMBER', text: 'sp (11) 91234-5678', want: `sp ${R('PHONE_NUMBER')}` },
  {
    entity: 'PHONE_NUMBER',
    text: 'in 98765 43210; es 612 34 56 78',
    want: `in ${R('PHONE_NUMBER')}; es ${R('PHONE_NUMBER')}`,
  },
  {
    entity: 'PHONE_NUMBER',
    text: 'no trunk 12345 678901 and 1234 1234567 and 412 345 678 and 12345 67890 and 512 34 56 78',
  },
  { entity: 'PHONE_NUMBER', text: 'date 2024-01-15 time 12:30:45' },
  { entity: 'PHONE_NUMBER', text: 'three parts 192.168.100 and 10.0.0' },
  { entity: 'PHONE_NUMBER', text: 'version v1.2.3 and 415-555-010' },
  { entity: 'PHONE_NUMBER', text: 'leading zero +0123456789 and +0 12 34 56 78' },
  { entity: 'PHONE_NUMBER', text: 'plan lengths +1 415 555 010 and +44 20 7946 09581 and +33 1 23 45 67 8' },
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
  {
    entity: 'PRIVATE_KEY',
    text: '{"type": "service_account", "private_key_id": "abc", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n", "client_email": "x"}',
    want: `{"type": "service_account", "private_key_id": "abc", "private_key": "${R('PRIVATE_KEY')}\\n", "client_email": "x"}`,
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
  { entity: 'BEARER_TOKEN', text: 'the bearer rollback. {"authorization": self.authorization_header_value}' },

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
  { entity: 'PASSWORD', text: 'def f(self, password=None): password: string; WHERE password = $1 OR pwd = ?' },
  { entity: 'PASSWORD', text: 'ns::password::apply(x); {"password": self.secret}; password = await fetch(u)' },

  // IP_ADDRESS
  {
    entity: 'IP_ADDRESS',
    text: 'ip 192.168.100.200 and 10.0.0.1',
    want: `ip ${R('IP_ADDRESS')} and ${R('IP_ADDRESS')}`,
  },
  { entity: 'IP_ADDRESS', text: 'from 203.0.113.9:443.', want: `from ${R('IP_ADDRESS')}:443.` },
  { entity: 'IP_ADDRESS', text: 'cidr 10.1.0.0/16', want: `cidr ${R('IP_ADDRESS')}/16` },
  { entity: 'IP_ADDRESS', text: 'v6 2001:db8::8a2e:370:7334 ok', want: `v6 ${R('IP_ADDRESS')} ok` },
  {
    entity: 'IP_ADDRESS',
    text: 'lo ::1, link fe80::1%eth0',
    want: `lo ${R('IP_ADDRESS')}, link ${R('IP_ADDRESS')}%eth0`,
  },
  { entity: 'IP_ADDRESS', text: 'full 2001:0db8:85a3:0000:0000:8a2e:0370:7334', want: `full ${R('IP_ADDRESS')}` },
  { entity: 'IP_ADDRESS', text: 'mapped [::ffff:192.0.2.128]:80', want: `mapped [${R('IP_ADDRESS')}]:80` },
  { entity: 'IP_ADDRESS', text: 'not ips 1.2.3.4.5 256.1.1.1 01.02.03.04 1.2.3 v1.2.3.4' },
  { entity: 'IP_ADDRESS', text: 'times 12:30:45 and mac 00:1a:2b:3c:4d:5e and std::vector and dead::beef' },
  { entity: 'IP_ADDRESS', text: 'too many 1:2:3:4:5:6:7:8:9 and two gaps 1::2::3' },

  // URL_CREDENTIALS
  {
    entity: 'URL_CREDENTIALS',
    text: 'DATABASE_URL=postgres://app:s3cr3t@db.internal:5432/app',
    want: `DATABASE_URL=postgres://app:${R('URL_CREDENTIALS')}@db.internal:5432/app`,
  },
  {
    entity: 'URL_CREDENTIALS',
    text: 'redis://:hunter2@cache:6379/0',
    want: `redis://:${R('URL_CREDENTIALS')}@cache:6379/0`,
  },
  {
    entity: 'URL_CREDENTIALS',
    text: '"mongodb+srv://u:p%40ss@c0.example.net/db"',
    want: `"mongodb+srv://u:${R('URL_CREDENTIALS')}@c0.example.net/db"`,
  },
  {
    entity: 'URL_CREDENTIALS',
    text: 'jdbc:mysql://root:toor@10.0.0.5:3306/x',
    want: `jdbc:mysql://root:${R('URL_CREDENTIALS')}@${R('IP_ADDRESS')}:3306/x`,
  },
  {
    entity: 'URL_CREDENTIALS',
    text: 'jdbc:oracle:thin:scott/tiger@//db:1521/orcl',
    want: `jdbc:oracle:thin:scott/${R('URL_CREDENTIALS')}@//db:1521/orcl`,
  },
  { entity: 'URL_CREDENTIALS', text: 'no password ftp://anonymous@ftp/pub and https://example.com:8443/a@b' },
  { entity: 'URL_CREDENTIALS', text: 'empty postgres://app:@db/app and thin:@//db:1521/orcl' },

  // CRYPTO
  { entity: 'CRYPTO', text: 'btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2.', want: `btc ${R('CRYPTO')}.` },
  { entity: 'CRYPTO', text: 'p2sh 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy', want: `p2sh ${R('CRYPTO')}` },
  {
    entity: 'CRYPTO',
    text: 'segwit bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq ok',
    want: `segwit ${R('CRYPTO')} ok`,
  },
  {
    entity: 'CRYPTO',
    text: 'taproot bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297',
    want: `taproot ${R('CRYPTO')}`,
  },
  {
    entity: 'CRYPTO',
    text: 'eth "0x52908400098527886E0F7030069857D2E4169EE7"',
    want: `eth "${R('CRYPTO')}"`,
  },
  {
    entity: 'CRYPTO',
    text: 'bad checksum 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3 and bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr',
  },
  { entity: 'CRYPTO', text: 'mixed case bc1qAr0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq and short 0x5290840009852788' },

  // US_ITIN
  { entity: 'US_ITIN', text: 'itin 912-70-1234.', want: `itin ${R('US_ITIN')}.` },
  { entity: 'US_ITIN', text: 'itin 999 94 1234 and 900.50.0001', want: `itin ${R('US_ITIN')} and ${R('US_ITIN')}` },
  { entity: 'US_ITIN', text: 'group outside the ranges 912-69-1234 912-89-1234 912-93-1234 912-00-1234' },

  // US_PASSPORT
  { entity: 'US_PASSPORT', text: 'passport: 912803456', want: `passport: ${R('US_PASSPORT')}` },
  { entity: 'US_PASSPORT', text: 'Passport No. A12345678,', want: `Passport No. ${R('US_PASSPORT')},` },
  {
    entity: 'US_PASSPORT',
    text: '{"passport_number": "340020013"}',
    want: `{"passport_number": "${R('US_PASSPORT')}"}`,
  },
  { entity: 'US_PASSPORT', text: 'no keyword 912803456x and passport 12345 and passport AB1234567' },

  // ABA_ROUTING_NUMBER
  { entity: 'ABA_ROUTING_NUMBER', text: 'routing number 011000015', want: `routing number ${R('ABA_ROUTING_NUMBER')}` },
  { entity: 'ABA_ROUTING_NUMBER', text: 'ABA: 1210-0024-8;', want: `ABA: ${R('ABA_ROUTING_NUMBER')};` },
  { entity: 'ABA_ROUTING_NUMBER', text: 'routing 011000016 and aba 131000015 and abandon 011000015' },

  // UK_NHS
  { entity: 'UK_NHS', text: 'nhs 943 476 5919.', want: `nhs ${R('UK_NHS')}.` },
  { entity: 'UK_NHS', text: 'nhs 943-476-5919', want: `nhs ${R('UK_NHS')}` },
  { entity: 'UK_NHS', text: 'a run 9434765919 and mixed 943 476-5919' },

  // UK_NINO
  { entity: 'UK_NINO', text: 'nino AB123456C.', want: `nino ${R('UK_NINO')}.` },
  { entity: 'UK_NINO', text: 'nino: AB 12 34 56 C', want: `nino: ${R('UK_NINO')}` },
  { entity: 'UK_NINO', text: 'bad prefix DA123456C QQ123456C GB123456A bad suffix AB123456E glued AB123456CD' },

  // AWS_SECRET_KEY
  {
    entity: 'AWS_SECRET_KEY',
    text: 'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n',
    want: `aws_secret_access_key = ${R('AWS_SECRET_KEY')}\n`,
  },
  {
    entity: 'AWS_SECRET_KEY',
    text: '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
    want: `{"SecretAccessKey": "${R('AWS_SECRET_KEY')}"}`,
  },
  {
    entity: 'AWS_SECRET_KEY',
    text: 'client_secret = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY and aws_secret_key: short',
  },

  // GITHUB_TOKEN
  {
    entity: 'GITHUB_TOKEN',
    text: 'GITHUB_TOKEN=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',
    want: `GITHUB_TOKEN=${R('GITHUB_TOKEN')}`,
  },
  {
    entity: 'GITHUB_TOKEN',
    text: `pat github_pat_11ABCDEFG0123456789abc_${'x1'.repeat(29)}y ok`,
    want: `pat ${R('GITHUB_TOKEN')} ok`,
  },
  { entity: 'GITHUB_TOKEN', text: 'bad checksum ghp_Ky9Pf34qY6Nb3wWD25RQ4F5ZR3qa7y3gm1IM and short ghp_abc' },

  // GITLAB_TOKEN
  { entity: 'GITLAB_TOKEN', text: 'token: glpat-9eX2kLmN4pQrS7tUvWx1.', want: `token: ${R('GITLAB_TOKEN')}.` },
  { entity: 'GITLAB_TOKEN', text: 'short glpat-abc and other glxyz-9eX2kLmN4pQrS7tUvWx1' },

  // SLACK_TOKEN
  {
    entity: 'SLACK_TOKEN',
    text: 'SLACK_BOT_TOKEN=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
    want: `SLACK_BOT_TOKEN=${R('SLACK_TOKEN')}`,
  },
  { entity: 'SLACK_TOKEN', text: 'xoxz-123456789012 and xoxb-short' },

  // STRIPE_KEY
  { entity: 'STRIPE_KEY', text: 'key sk_live_4eC39HqLyjWDarjtT1zdp7dc', want: `key ${R('STRIPE_KEY')}` },
  {
    entity: 'STRIPE_KEY',
    text: 'rk_test_4eC39HqLyjWDarjtT1zdp7dc whsec_4eC39HqLyjWDarjtT1zdp7dc4eC39HqL',
    want: `${R('STRIPE_KEY')} ${R('STRIPE_KEY')}`,
  },
  { entity: 'STRIPE_KEY', text: 'public pk_live_4eC39HqLyjWDarjtT1zdp7dc and short sk_live_abc' },

  // OPENAI_API_KEY
  {
    entity: 'OPENAI_API_KEY',
    text: 'OPENAI_API_KEY="sk-proj-abc123DEF456ghi789JKL012mno345"',
    want: `OPENAI_API_KEY="${R('OPENAI_API_KEY')}"`,
  },
  { entity: 'OPENAI_API_KEY', text: 'sk-learn and sk-abcdefghijklmnopqrstuvwxyz and sk-12345678901234567890' },
];

/** Plain text with nothing to mask (mixed scripts, numbers, punctuation), for byte-identity checks. */
export const CLEAN = [
  'The quick brown fox jumps over the lazy dog. Ünïcödé ✓ 日本語 — 42, 3.14, 2024-01-15 12:30.',
  'order #123456 shipped to host-10 via v1.2.3; ratio 1:2; price $19.99; p=0.05; a@b; e-mail me.',
  'Bearer of news, passwords are hashed, authorization required, eyJ alone, AKIA alone, ----- dashes',
];
