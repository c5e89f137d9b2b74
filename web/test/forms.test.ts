import { describe, expect, it } from "vitest";
import { InputError } from "../src/errors";
import { parseEnv, parseGpus, parseHours, pathInFolder, pricedOut } from "../src/forms";
import { storedToken, sessionKey } from "../src/tokens";

describe("parseEnv", () => {
  it("reads KEY=VALUE lines, skipping blanks and comments", () => {
    expect(parseEnv("A=1\n\n# note\nB = x=y \r\nC=")).toEqual({ A: "1", B: " x=y", C: "" });
  });

  it("names the line that is not KEY=VALUE", () => {
    expect(() => parseEnv("A=1\nnope")).toThrow(/line 2/);
    expect(() => parseEnv("1A=2")).toThrow(InputError);
  });
});

describe("numbers", () => {
  it("takes whole GPUs from 1", () => {
    expect(parseGpus("2")).toBe(2);
    expect(() => parseGpus("0")).toThrow(InputError);
    expect(() => parseGpus("1.5")).toThrow(InputError);
  });

  it("turns hours into seconds", () => {
    expect(parseHours("1.5")).toBe(5400);
    expect(() => parseHours("0")).toThrow(InputError);
    expect(() => parseHours("0.001")).toThrow(/at least 1 minute/);
  });
});

describe("pathInFolder", () => {
  it("drops the picked folder's own name", () => {
    expect(pathInFolder("proj/src/a.py")).toBe("src/a.py");
    expect(pathInFolder("a.py")).toBe("a.py");
  });
});

describe("storedToken", () => {
  function storage(): Storage {
    const m = new Map<string, string>();
    return {
      get length() {
        return m.size;
      },
      clear: () => m.clear(),
      getItem: (k) => m.get(k) ?? null,
      key: (i) => [...m.keys()][i] ?? null,
      removeItem: (k) => void m.delete(k),
      setItem: (k, v) => void m.set(k, v),
    };
  }

  it("answers a live token per address, case-blind", () => {
    const s = storage();
    s.setItem(sessionKey("0xAB"), JSON.stringify({ token: "t", expires: 1000 }));
    expect(storedToken(s, "0xab", 500)).toBe("t");
  });

  it("drops an expiring or damaged entry", () => {
    const s = storage();
    s.setItem(sessionKey("0xab"), JSON.stringify({ token: "t", expires: 1000 }));
    expect(storedToken(s, "0xab", 950)).toBeNull();
    expect(s.length).toBe(0);
    s.setItem(sessionKey("0xab"), "{");
    expect(storedToken(s, "0xab", 0)).toBeNull();
    expect(s.length).toBe(0);
  });
});

describe("pricedOut", () => {
  const E18 = 10n ** 18n;
  const offer = (gpuModel: string, gpusFree: number, ask: bigint, quote: bigint) =>
    ({ gpuModel, gpusFree, minAskPerGpuHour: ask.toString(), quotePerGpuHour: quote.toString() });
  const spec = (maxPricePerGpuHour: bigint, gpuModel = "cpu", gpus = 1) => ({ gpus, gpuModel, maxPricePerGpuHour });

  it("lists the offers of the model that only the max price rules out, cheapest quote first", () => {
    const a = offer("cpu", 2, E18 / 2n, E18), b = offer("cpu", 1, E18 / 2n, E18 / 2n);
    expect(pricedOut([a, b, offer("h100", 4, E18, E18)], spec(E18 / 10n))).toEqual([b, a]);
    expect(pricedOut([a, offer("h100", 4, E18, E18)], spec(E18 / 10n, ""))).toHaveLength(2); // any model
  });

  it("is empty when the price is not what stands in the way", () => {
    expect(pricedOut([offer("cpu", 1, E18 / 2n, E18)], spec(E18 / 2n))).toEqual([]); // the ask fits the max
    expect(pricedOut([offer("cpu", 1, E18 / 2n, E18)], spec(E18 / 10n, "cpu", 2))).toEqual([]); // too few GPUs free
    expect(pricedOut([offer("h100", 1, E18, E18)], spec(E18 / 10n))).toEqual([]); // another model
    expect(pricedOut([], spec(1n))).toEqual([]);
  });
});
