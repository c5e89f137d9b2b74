// Python's text forms where bytes are hashed or compared across languages: json.dumps(sort_keys=True,
// separators=(",", ":")) with either ensure_ascii, repr() of a float, and f"{x:.Nf}" (round half to even on
// the double's exact value). Guarantees: for the values below, the same bytes as CPython 3.
//
// Values: a bigint is a Python int, a number is a Python float (so 0 is written "0.0"), plus strings, booleans,
// null, arrays and plain objects (keys sorted by code point, as Python sorts str).

export type PyJson = string | bigint | number | boolean | null | PyJson[] | { [key: string]: PyJson };

/** repr() of a Python float: the shortest round-trip digits, scientific below 1e-4 and from 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity"; // json.dumps' spelling
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(x.toExponential());
  if (!m) throw new Error(`cannot format ${x}`);
  const sign = m[1] ?? "";
  const digits = (m[2] ?? "") + (m[3] ?? "");
  const exp = Number(m[4]);
  if (exp < -4 || exp >= 16) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp);
    return `${sign}${mantissa}e${exp < 0 ? "-" : "+"}${e < 10 ? "0" : ""}${e}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  const int = digits.length > exp + 1 ? digits.slice(0, exp + 1) : digits.padEnd(exp + 1, "0");
  const frac = digits.slice(exp + 1);
  return `${sign}${int}.${frac || "0"}`;
}

/** f"{x:.{places}f}" for a finite float, as CPython formats it (exact value, ties to even). */
export function pyFixed(x: number, places: number): string {
  if (!Number.isFinite(x)) return pyFloatRepr(x).toLowerCase().replace("infinity", "inf");
  const neg = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  // toFixed is exact below 1e21 but sends a tie up; from 1e21 it writes an exponent (such doubles are integers)
  let text = a < 1e21 ? a.toFixed(places) : BigInt(a).toString() + (places ? "." + "0".repeat(places) : "");
  const tie = exactTie(a, places);
  if (tie !== null) text = tie;
  return (neg ? "-" : "") + text;
}

// When a * 10^places is exactly halfway between two integers, the half-to-even result; else null.
function exactTie(a: number, places: number): string | null {
  if (a === 0) return null;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, a);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp: number;
  if (biased === 0) exp = -1074;
  else {
    mant |= 1n << 52n;
    exp = biased - 1075;
  }
  if (exp >= 0) return null; // an integer: no tie
  // a * 10^places * 2 = mant * 10^places * 2 / 2^-exp
  const num = mant * 10n ** BigInt(places) * 2n;
  const den = 1n << BigInt(-exp);
  if (num % den !== 0n) return null;
  const twice = num / den;
  if (twice % 2n === 0n) return null;
  let q = (twice - 1n) / 2n;
  if (q % 2n === 1n) q += 1n;
  const s = q.toString().padStart(places + 1, "0");
  return places ? `${s.slice(0, s.length - places)}.${s.slice(s.length - places)}` : s;
}

function codePointCompare(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i]?.codePointAt(0) ?? 0) - (y[i]?.codePointAt(0) ?? 0);
    if (d) return d;
  }
  return x.length - y.length;
}

function pyString(s: string, ensureAscii: boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i] ?? "";
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (c < 0x20 || (ensureAscii && c > 0x7e)) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += ch;
  }
  return out + '"';
}

/** json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=ensureAscii). */
export function pyJsonDumps(value: PyJson, ensureAscii = true): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") return pyFloatRepr(value);
  if (typeof value === "string") return pyString(value, ensureAscii);
  if (Array.isArray(value)) return "[" + value.map((v) => pyJsonDumps(v, ensureAscii)).join(",") + "]";
  const keys = Object.keys(value).sort(codePointCompare);
  return "{" + keys.map((k) => pyString(k, ensureAscii) + ":" + pyJsonDumps(value[k] as PyJson, ensureAscii)).join(",") + "}";
}
