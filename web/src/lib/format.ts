// Amounts, durations and sizes as the Python side writes and reads them (blendr/units.py): the page shows the
// same text as the CLI, and parses a price to the same wei.

import { InvalidArgumentError } from "./errors";
import { pyFixed } from "./pyjson";

/** Wei as whole tokens with at most `places` decimals, rounded half to even, trailing zeros dropped
 * (fmt_tokens: `2.5`, `-0.1`, `0`). */
export function formatTokens(wei: bigint | string, decimals = 18, places = 6): string {
  const w = typeof wei === "bigint" ? wei : BigInt(wei);
  const neg = w < 0n;
  const abs = neg ? -w : w;
  let scaled: bigint;
  if (decimals >= places) {
    const div = 10n ** BigInt(decimals - places);
    scaled = abs / div;
    const rem = abs % div;
    if (rem * 2n > div || (rem * 2n === div && scaled % 2n === 1n)) scaled += 1n;
  } else {
    scaled = abs * 10n ** BigInt(places - decimals);
  }
  const s = scaled.toString().padStart(places + 1, "0");
  let text = places ? `${s.slice(0, s.length - places)}.${s.slice(s.length - places)}` : s;
  if (text.includes(".")) text = text.replace(/0+$/, "").replace(/\.$/, "");
  if (neg) text = "-" + text;
  return text === "" || text === "-0" ? "0" : text;
}

const DECIMAL = /^\s*([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/;

/** `2.5` (whole tokens: a decimal string or a number) in wei, exactly; sub-wei digits are dropped
 * (parse_tokens; `1e3`, `.5` and `+2` are read as Python's Decimal reads them; digit separators `_` are not).
 *
 * @throws InvalidArgumentError negative, not finite or not a number (the message names `what`). */
export function parseTokens(amount: string | number | bigint, what = "amount", decimals = 18): bigint {
  const text = String(amount);
  const m = DECIMAL.exec(text);
  const shown = JSON.stringify(text.slice(0, 80)).replace(/^"|"$/g, "'");
  if (!m || (!m[2] && !m[3])) {
    if (/^\s*[+-]?(inf|infinity|s?nan\d*)\s*$/i.test(text)) {
      throw new InvalidArgumentError(`${what} must be a non-negative number of GPUTOKEN (got ${shown})`);
    }
    throw new InvalidArgumentError(`${what} must be a number of GPUTOKEN (got ${shown})`);
  }
  const neg = m[1] === "-";
  const digits = (m[2] ?? "") + (m[3] ?? "");
  const exp = Number(m[4] ?? "0") - (m[3] ?? "").length + decimals;
  let wei = BigInt(digits || "0");
  if (neg && wei !== 0n) {
    throw new InvalidArgumentError(`${what} must be a non-negative number of GPUTOKEN (got ${shown})`);
  }
  wei = exp >= 0 ? wei * 10n ** BigInt(exp) : wei / 10n ** BigInt(-exp);
  return wei;
}

/** Seconds as `2 h`, `1.50 h`, `5 min` or `42 s` (fmt_duration; whole seconds). */
export function formatDuration(seconds: number): string {
  const s = Math.trunc(seconds);
  if (s % 3600 === 0 && s >= 3600) return `${s / 3600} h`;
  if (s >= 3600) return `${pyFixed(s / 3600, 2)} h`;
  if (s % 60 === 0 && s >= 60) return `${s / 60} min`;
  return `${s} s`;
}

/** A size as `1.5 GiB`, `3.0 MiB`, `2.0 KiB` or `12 bytes` (fmt_bytes). */
export function formatBytes(size: number | bigint): string {
  const n = Number(size);
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (n >= size) return `${pyFixed(n / size, 1)} ${unit}`;
  }
  return `${n} bytes`;
}

/** TokenDistributor.REWARD_EPOCH_DURATION (blendr.rewards.EPOCH_DURATION_S): reward epoch `e` is the week
 *  `[e * duration, (e + 1) * duration)` of unix time. */
export const REWARD_EPOCH_S = 7 * 24 * 3600;

/** A reward epoch as its days, UTC: `#2914 (2025-11-06 – 2025-11-12)` (the last day it holds, not the end). */
export function formatRewardEpoch(epoch: number | bigint, durationS = REWARD_EPOCH_S): string {
  const e = Number(epoch);
  const day = (unix: number) => new Date(unix * 1000).toISOString().slice(0, 10);
  return `#${e} (${day(e * durationS)} – ${day((e + 1) * durationS - 1)})`;
}

/** A reward kind as the wallet shows it: what it is earned by ("provider" / "renter", blendr.rewards.RewardKind). */
export function formatRewardKind(kind: string): string {
  if (kind === "provider") return "Provider (verified GPU-hours)";
  if (kind === "renter") return "Renter (GPUTOKEN spent)";
  return kind || "—";
}
