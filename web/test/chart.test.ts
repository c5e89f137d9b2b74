import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { passRateBars, priceSeries, scaleLine } from "../src/chart";
import { PassRatePointSchema, PricePointSchema } from "../src/gen/protos/blendr/v1/network_pb";

const box = { width: 110, height: 60, pad: 5 };

describe("scaleLine", () => {
  it("maps time left to right and value bottom to top with headroom", () => {
    const sc = scaleLine([{ t: 200, v: 10 }, { t: 100, v: 0 }, { t: 150, v: 5 }], box);
    expect(sc.tMin).toBe(100);
    expect(sc.tMax).toBe(200);
    expect(sc.vMax).toBeCloseTo(11);
    expect(sc.points[0]).toEqual({ x: 5, y: 55 });
    expect(sc.points[2]?.x).toBe(105);
    expect(sc.points[2]?.y).toBeCloseTo(5 + 50 - (10 / 11) * 50, 1);
    expect(sc.d.startsWith("M5 55 L55 ")).toBe(true);
  });

  it("centres a single point and gives all-zero values a unit axis", () => {
    const sc = scaleLine([{ t: 7, v: 0 }], box);
    expect(sc.vMax).toBe(1);
    expect(sc.points).toEqual([{ x: 55, y: 55 }]);
  });

  it("draws nothing without points", () => {
    expect(scaleLine([], box).d).toBe("");
    expect(scaleLine([{ t: NaN, v: 1 }], box).points).toEqual([]);
  });

  it("handles wei-sized values", () => {
    const sc = scaleLine([{ t: 0, v: 3e18 }, { t: 1, v: 1.5e18 }], box);
    expect(sc.points[0]?.y).toBeLessThan(sc.points[1]!.y);
    expect(sc.points.every((p) => p.y >= box.pad && p.y <= box.height - box.pad)).toBe(true);
  });
});

describe("priceSeries", () => {
  it("groups per model, sorts by time and skips empty quotes", () => {
    const p = (ts: number, m: string, q: string) => create(PricePointSchema, { tsUnix: ts, gpuModel: m, quotePerGpuHour: q });
    const s = priceSeries([p(2, "a", "20"), p(1, "a", "10"), p(1, "b", ""), p(3, "b", "7")]);
    expect(s.get("a")).toEqual([{ t: 1, v: 10 }, { t: 2, v: 20 }]);
    expect(s.get("b")).toEqual([{ t: 3, v: 7 }]);
  });
});

describe("passRateBars", () => {
  it("is one bar per period in time order, as tall as its pass share", () => {
    const pt = (start: number, passed: number, failed: number) => create(PassRatePointSchema, { startUnix: start, passed, failed });
    const bars = passRateBars([pt(2, 1, 1), pt(1, 4, 0), pt(3, 0, 0)], 30, 20);
    expect(bars.map((b) => b.start)).toEqual([1, 2, 3]);
    expect(bars.map((b) => b.rate)).toEqual([1, 0.5, null]);
    expect(bars.map((b) => b.height)).toEqual([20, 10, 0]);
    expect(bars.map((b) => b.x)).toEqual([0, 10, 20]);
    expect(bars[0]?.width).toBe(9);
  });

  it("is empty without periods", () => {
    expect(passRateBars([], 10, 10)).toEqual([]);
  });
});
