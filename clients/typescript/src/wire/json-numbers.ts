/**
 * JSON numbers that would not be kept as written. JSON.parse turns every
 * number into the nearest 64-bit float, and a google.protobuf.Value number
 * is one: 12345678901234567890 would be stored as 12345678901234567000,
 * -1e-400 as 0, and an int64 field given 9007199254740993 would read
 * 9007199254740992. kvctl and the server's HTTP/JSON port refuse such a
 * number, naming it, instead of storing another one.
 */

/** A JSON number token (in valid JSON one starts wherever a '-' or a digit is outside a string). */
const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Why the JSON number `token` would not be kept as written (the float it becomes is another number), or undefined. */
export function numberProblem(token: string): string | undefined {
  // Up to 15 significant digits without an exponent, a decimal survives the trip through a double (DBL_DIG).
  if (token.length <= 15 && !/[eE]/.test(token)) return undefined;
  const stored = Number(token);
  if (!Number.isFinite(stored)) return `has the number ${token}, larger than a JSON number can be here (a 64-bit float)`;
  const written = decimal(token);
  const kept = decimal(String(stored));
  // Zero is zero whatever its sign or exponent (JSON has no -0 to keep).
  if (
    written.digits === kept.digits &&
    (written.digits === '' || (written.exponent === kept.exponent && written.negative === kept.negative))
  ) {
    return undefined;
  }
  return `has the number ${token}, which would be stored as ${JSON.stringify(stored)} (a JSON number here is a 64-bit float)`;
}

/**
 * Why a JSON text has a number that would not be kept as written
 * ("has the number 1e400, ..."), or undefined. Strings are skipped; text
 * that is not JSON is not an error here (JSON.parse names what is wrong).
 */
export function roundedNumberIn(text: string): string | undefined {
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i = stringEnd(text, i);
      if (i < 0) return undefined;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const token = numberTokenAt(text, i);
      if (token === undefined) continue;
      const problem = numberProblem(token);
      if (problem !== undefined) return problem;
      i += token.length - 1;
    }
  }
  return undefined;
}

/** The JSON number token that starts at `at`, or undefined if none does. */
export function numberTokenAt(text: string, at: number): string | undefined {
  NUMBER.lastIndex = at;
  return NUMBER.exec(text)?.[0];
}

/** The index of the quote that ends the string opened at `open`, or -1 if none does. */
export function stringEnd(text: string, open: number): number {
  let end = text.indexOf('"', open + 1);
  while (end > 0) {
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === 0x5c /* \ */) backslashes++;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
  return -1;
}

/** A decimal number as its significant digits (no leading or trailing zeros; '' for zero), the exponent of the last one, and its sign. */
function decimal(text: string): { negative: boolean; digits: string; exponent: number } {
  const [, sign, whole, fraction = '', exp = '0'] = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text) as RegExpExecArray;
  const all = (whole + fraction).replace(/^0+/, '');
  const digits = all.replace(/0+$/, '');
  return { negative: sign === '-', digits, exponent: Number(exp) - fraction.length + (all.length - digits.length) };
}
