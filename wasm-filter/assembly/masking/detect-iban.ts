// IBAN_CODE: country code with its registered length, two check digits, the BBAN in upper case (optionally in
// groups of four separated by single spaces or dashes), and the ISO 13616 mod-97 check.
import { byteAt, C_DIGIT, C_UPPER, cls, isAlnum, isDigit, MATCH, NEED, NONE, SCRATCH } from "./bytes";
import { IBAN_CODE } from "./entities";
import { found } from "./found";

// IBAN lengths by country: every entry of the SWIFT IBAN registry (ISO 13616), including the territories it lists
// under their own codes (AX with Finland's length; BL GF GP MF MQ NC PF PM RE TF WF YT with France's), indexed by (first letter - 'A') * 26 + (second letter - 'A').
const LENGTHS: usize = memory.data(676);
// One literal (not a concatenation): building strings would need the runtime allocator, which can abort.
const REGISTRY = "AD24AE23AL28AT20AX18AZ28BA20BE16BG22BH22BI27BL27BR29BY28CH21CR22CY28CZ24DE22DJ27DK18DO28EE20EG29ES24FI18FK18FO18FR27GB22GE22GF27GI23GL18GP27GR27GT28HN28HR21HU28IE22IL23IQ23IS26IT27JO30KW30KZ20LB28LC32LI21LT20LU20LV21LY25MC27MD24ME22MF27MK19MN20MQ27MR27MT31MU30NC27NI28NL18NO15OM23PF27PK24PL28PM27PS29PT25QA29RE27RO24RS22RU33SA24SC31SD18SE24SI19SK24SM27SO23ST25SV28TF27TL23TN24TR26UA29VA22VG24WF27XK20YE30YT27";
for (let k = 0; k + 3 < REGISTRY.length; k += 4) {
  const a = <i32>REGISTRY.charCodeAt(k) - 0x41;
  const b = <i32>REGISTRY.charCodeAt(k + 1) - 0x41;
  const n = (<i32>REGISTRY.charCodeAt(k + 2) - 0x30) * 10 + (<i32>REGISTRY.charCodeAt(k + 3) - 0x30);
  store<u8>(LENGTHS + <usize>(a * 26 + b), <u8>n);
}

/** At an upper-case letter whose previous byte is not alphanumeric. */
export function detectIban(p: usize, len: i32, i: i32, final: bool): i32 {
  if (i + 3 >= len) return final ? NONE : lookahead(p, len, i);
  const a = byteAt(p, i) - 0x41;
  const b = byteAt(p, i + 1) - 0x41;
  if (a >= 26 || b >= 26) return NONE;
  const want = <i32>load<u8>(LENGTHS + <usize>(a * 26 + b));
  if (want == 0) return NONE;
  if (!isDigit(byteAt(p, i + 2)) || !isDigit(byteAt(p, i + 3))) return NONE;
  let n = 0;
  let j = i;
  let sep: u32 = 0;
  while (n < want) {
    if (j >= len) return final ? NONE : NEED;
    const c = byteAt(p, j);
    if ((cls(c) & (C_DIGIT | C_UPPER)) != 0) {
      store<u8>(SCRATCH + <usize>n, <u8>c);
      n++;
      j++;
      continue;
    }
    // One separator (a space or a dash, the same throughout) may follow each complete group of four.
    if ((c == 0x20 || c == 0x2d) && (sep == 0 || sep == c) && n > 0 && (n & 3) == 0 && byteAt(p, j - 1) != c) {
      sep = c;
      j++;
      continue;
    }
    return NONE;
  }
  if (j < len) {
    if (isAlnum(byteAt(p, j))) return NONE;
  } else if (!final) {
    return NEED;
  }
  if (!mod97(want)) return NONE;
  found(i, j, IBAN_CODE);
  return MATCH;
}

/** Too few bytes to look the country up: wait only if what is there could begin an IBAN. */
function lookahead(p: usize, len: i32, i: i32): i32 {
  for (let k = i; k < len; k++) {
    const c = byteAt(p, k);
    if (k - i < 2 ? c - 0x41 >= 26 : !isDigit(c)) return NONE;
  }
  return NEED;
}

function mod97(n: i32): bool {
  let r: u32 = 0;
  for (let k = 0; k < n; k++) {
    const at = k + 4 < n ? k + 4 : k + 4 - n; // the first four characters move to the end
    const c = <u32>load<u8>(SCRATCH + <usize>at);
    if (isDigit(c)) r = (r * 10 + (c - 0x30)) % 97;
    else r = (r * 100 + (c - 0x41 + 10)) % 97;
  }
  return r == 1;
}
