// The submit form's values, parsed and checked before anything is asked of the King or the wallet.
import { InputError } from "./errors";

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** KEY=VALUE lines (blank lines and # comments skipped; the value may hold "="). */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const eq = trimmed.indexOf("=");
    const key = eq < 0 ? trimmed : trimmed.slice(0, eq).trim();
    if (eq < 0 || !ENV_KEY.test(key)) {
      throw new InputError("env", `Environment line ${i + 1} is not KEY=VALUE (a key is letters, digits and _, not starting with a digit).`);
    }
    env[key] = trimmed.slice(eq + 1);
  });
  return env;
}

/** Whole GPUs, at least one. */
export function parseGpus(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new InputError("gpus", "GPUs must be a whole number from 1 to 1024.");
  return n;
}

/** Hours (decimals allowed) as whole seconds, at least one minute. */
export function parseHours(text: string): number {
  const hours = Number(text);
  if (!Number.isFinite(hours) || hours <= 0) throw new InputError("hours", "Hours must be a number above 0.");
  const seconds = Math.round(hours * 3600);
  if (seconds < 60) throw new InputError("hours", "A rental lasts at least 1 minute (0.017 hours).");
  return seconds;
}

/** The path of a file picked from a folder, inside that folder ("proj/src/a.py" → "src/a.py"). */
export function pathInFolder(relativePath: string): string {
  const parts = relativePath.split("/").filter((p) => p !== "" && p !== ".");
  return parts.length > 1 ? parts.slice(1).join("/") : parts.join("/");
}

/** The offers a max price alone keeps the job from: the model asked for (any when none), enough GPUs free, and an
 * ask above `maxPrice` (wei per GPU-hour), cheapest quote first. A quote with no candidate and such offers means
 * "raise your max price", not "no provider" (the King's quote says so only in words: its reason). */
export function pricedOut<O extends { gpuModel: string; gpusFree: number; minAskPerGpuHour: string; quotePerGpuHour: string }>(
  offers: O[],
  spec: { gpus: number; gpuModel: string; maxPricePerGpuHour: bigint },
): O[] {
  const wei = (s: string) => (/^\d+$/.test(s) ? BigInt(s) : 0n);
  const price = (o: O) => wei(o.quotePerGpuHour) || wei(o.minAskPerGpuHour);
  return offers
    .filter((o) => (!spec.gpuModel || o.gpuModel === spec.gpuModel) && o.gpusFree >= spec.gpus && wei(o.minAskPerGpuHour) > spec.maxPricePerGpuHour)
    .sort((x, y) => (price(x) < price(y) ? -1 : price(x) > price(y) ? 1 : 0));
}
