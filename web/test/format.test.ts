import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../src/lib/errors";
import { formatBytes, formatDuration, formatRewardEpoch, formatRewardKind, formatTokens, parseTokens } from "../src/lib/format";
import { pyFixed, pyFloatRepr, pyJsonDumps } from "../src/lib/pyjson";
import { checkRequestId, makeSpec, maxEscrow, randomRequestId, validateSpec, type Spec } from "../src/lib/spec";

describe("tokens", () => {
  it("formats as fmt_tokens: 6 places, half to even, no trailing zeros", () => {
    expect(formatTokens(2500000000000000000n)).toBe("2.5");
    expect(formatTokens("-100000000000000000")).toBe("-0.1");
    expect(formatTokens(1n)).toBe("0");
    expect(formatTokens(500000n)).toBe("0");
    expect(formatTokens(1500000000000n)).toBe("0.000002");
    expect(formatTokens(2500000000000n)).toBe("0.000002");
    expect(formatTokens(10n ** 24n)).toBe("1000000");
    expect(formatTokens(1234567n, 6, 2)).toBe("1.23");
  });

  it("parses as parse_tokens: exact wei, sub-wei dropped, negatives refused", () => {
    expect(parseTokens("2.5")).toBe(2500000000000000000n);
    expect(parseTokens("1e3")).toBe(10n ** 21n);
    expect(parseTokens(".5")).toBe(5n * 10n ** 17n);
    expect(parseTokens(" 3 ")).toBe(3n * 10n ** 18n);
    expect(parseTokens("1e-19")).toBe(0n);
    expect(parseTokens("-0")).toBe(0n);
    expect(() => parseTokens("-1", "max price")).toThrow("max price must be a non-negative number of GPUTOKEN (got '-1')");
    expect(() => parseTokens("abc")).toThrow(InvalidArgumentError);
    expect(() => parseTokens("inf")).toThrow(/non-negative/);
  });
});

describe("durations and sizes", () => {
  it("read as the CLI writes them", () => {
    expect(formatDuration(7200)).toBe("2 h");
    expect(formatDuration(5400)).toBe("1.50 h");
    expect(formatDuration(4050)).toBe("1.12 h"); // 1.125: Python rounds the tie to even
    expect(formatDuration(300)).toBe("5 min");
    expect(formatDuration(42.9)).toBe("42 s");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(3 * 2 ** 20)).toBe("3.0 MiB");
    expect(formatBytes(12)).toBe("12 bytes");
  });
});

describe("Python text forms", () => {
  it("writes floats as repr()", () => {
    expect([0, -0, 1.5, 1e16, 1e15, 1e-5, 1e-4, 0.1, 2.5e-7, 1e22].map(pyFloatRepr)).toEqual(
      ["0.0", "-0.0", "1.5", "1e+16", "1000000000000000.0", "1e-05", "0.0001", "0.1", "2.5e-07", "1e+22"]);
  });

  it("formats fixed places with ties to even on the exact value", () => {
    expect(pyFixed(0.5, 0)).toBe("0");
    expect(pyFixed(2.5, 0)).toBe("2");
    expect(pyFixed(1.005, 2)).toBe("1.00"); // 1.005 is below the tie as a double
    expect(pyFixed(-1.125, 2)).toBe("-1.12");
    expect(pyFixed(1e22, 1)).toBe("10000000000000000000000.0");
  });

  it("dumps canonical JSON as json.dumps(sort_keys, compact)", () => {
    expect(pyJsonDumps({ b: 1n, a: "é\n", c: [0.5, null, true] })).toBe('{"a":"\\u00e9\\n","b":1,"c":[0.5,null,true]}');
    expect(pyJsonDumps({ a: "é\u007f" }, false)).toBe('{"a":"é\u007f"}');
  });
});

describe("specs", () => {
  const ok: Spec = { gpus: 1, durationS: 3600, maxPricePerGpuHour: 10n ** 18n, gpuModel: "", minVramBytes: 0n, minTflops: 0 };

  it("are made from what a renter types, as JobRequest.spec", () => {
    expect(makeSpec({ gpus: 2, hours: 1.5, maxPrice: "3.5", minVramGb: 40 })).toEqual({
      gpus: 2, durationS: 5400, maxPricePerGpuHour: 35n * 10n ** 17n, gpuModel: "", minVramBytes: 40n * 2n ** 30n, minTflops: 0,
    });
    expect(() => makeSpec({ gpus: 1, hours: 0, maxPrice: "1" })).toThrow("hours must be positive");
  });

  it("are validated with jobspec.validate's messages", () => {
    expect(validateSpec(ok)).toBe(ok);
    expect(() => validateSpec({ ...ok, gpus: 0 })).toThrow("gpus must be at least 1");
    expect(() => validateSpec({ ...ok, gpus: 9 }, { maxGpus: 8 })).toThrow("gpus must be at most 8");
    expect(() => validateSpec({ ...ok, durationS: 0 })).toThrow("the duration (hours) must be positive");
    expect(() => validateSpec({ ...ok, durationS: 60 }, { minDurationS: 600 }))
      .toThrow("the duration must be between 10 min and 30 days".replace("30 days", "720 h") + " (got 1 min)");
    expect(() => validateSpec({ ...ok, gpuModel: "z80" }, { knownModels: ["h100-sxm", "a10"] }))
      .toThrow("unknown GPU model 'z80' (known: a10, h100-sxm)");
    expect(() => validateSpec({ ...ok, maxPricePerGpuHour: 0n })).toThrow("the max price per GPU-hour must be positive");
    expect(() => validateSpec({ ...ok, minTflops: Number.NaN })).toThrow("minimum VRAM and TFLOP/s must be finite and not negative");
    expect(() => validateSpec({ ...ok, maxPricePerGpuHour: 2n ** 88n })).toThrow("the max price per GPU-hour is out of range");
  });

  it("lock at most price x GPUs x duration", () => {
    expect(maxEscrow({ ...ok, gpus: 2, durationS: 5400, maxPricePerGpuHour: 3n * 10n ** 18n })).toBe(9n * 10n ** 18n);
  });

  it("get request ids the king accepts", () => {
    const id = randomRequestId();
    expect(id).toMatch(/^r-[0-9a-f]{24}$/);
    expect(checkRequestId(id)).toBe(id);
    expect(randomRequestId()).not.toBe(id);
    expect(() => checkRequestId("short")).toThrow(/16-64 characters/);
  });
});

describe("rewards", () => {
  it("shows an epoch as its UTC days, the last one it holds", () => {
    expect(formatRewardEpoch(0)).toBe("#0 (1970-01-01 – 1970-01-07)");
    expect(formatRewardEpoch(2914n)).toBe("#2914 (2025-11-06 – 2025-11-12)");
    expect(formatRewardEpoch(1, 60)).toBe("#1 (1970-01-01 – 1970-01-01)");
  });

  it("names a kind by what earns it", () => {
    expect(formatRewardKind("provider")).toBe("Provider (verified GPU-hours)");
    expect(formatRewardKind("renter")).toBe("Renter (GPUTOKEN spent)");
    expect(formatRewardKind("")).toBe("—");
    expect(formatRewardKind("other")).toBe("other");
  });
});
