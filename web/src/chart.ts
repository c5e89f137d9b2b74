// Small inline SVG charts without a chart library: the scaling is pure (tested), drawing is a thin layer.
import type { PassRatePoint } from "./gen/protos/blendr/v1/network_pb";
import type { PricePoint } from "./gen/protos/blendr/v1/network_pb";

export interface XY {
  t: number;
  v: number;
}

export interface Box {
  width: number;
  height: number;
  pad: number;
}

export interface Scaled {
  /** SVG path data ("M x y L x y ..."), "" when there are no points. */
  d: string;
  /** The drawn points in pixel coordinates. */
  points: { x: number; y: number }[];
  tMin: number;
  tMax: number;
  /** The value axis runs from 0 to vMax (pixels: bottom to top). */
  vMax: number;
}

/** Points scaled into a box: time left to right, value from 0 (bottom) to a little over the largest value. A
 * single point (or points all at one time) lies in the middle; all-zero values get a unit axis. */
export function scaleLine(points: XY[], box: Box, vMaxHint?: number): Scaled {
  const sorted = points.filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v)).sort((a, b) => a.t - b.t);
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (!first || !last) return { d: "", points: [], tMin: 0, tMax: 0, vMax: 0 };
  const largest = Math.max(vMaxHint ?? 0, ...sorted.map((p) => p.v));
  const vMax = largest > 0 ? largest * 1.1 : 1;
  const w = box.width - 2 * box.pad;
  const hgt = box.height - 2 * box.pad;
  const span = last.t - first.t;
  const xs = (t: number) => box.pad + (span > 0 ? ((t - first.t) / span) * w : w / 2);
  const ys = (v: number) => box.pad + hgt - (Math.max(0, v) / vMax) * hgt;
  const pts = sorted.map((p) => ({ x: round2(xs(p.t)), y: round2(ys(p.v)) }));
  const d = pts.map((p, i) => `${i === 0 ? "M" : "L"}${p.x} ${p.y}`).join(" ");
  return { d, points: pts, tMin: first.t, tMax: last.t, vMax };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Price history grouped per GPU model (quote per GPU-hour in wei as a number; oldest first). */
export function priceSeries(points: PricePoint[]): Map<string, XY[]> {
  const out = new Map<string, XY[]>();
  for (const p of points) {
    const v = Number(p.quotePerGpuHour);
    if (!Number.isFinite(v) || p.quotePerGpuHour === "") continue;
    let list = out.get(p.gpuModel);
    if (!list) out.set(p.gpuModel, (list = []));
    list.push({ t: p.tsUnix, v });
  }
  for (const list of out.values()) list.sort((a, b) => a.t - b.t);
  return out;
}

export interface Bar {
  x: number;
  width: number;
  /** Height of the passed share (pixels); 0 when nothing was decided. */
  height: number;
  /** passed / (passed + failed), or null when no challenge was decided in that period. */
  rate: number | null;
  passed: number;
  failed: number;
  start: number;
}

/** Pass-rate bars, one per period, left to right in time order, each as tall as its pass share. */
export function passRateBars(points: PassRatePoint[], width: number, height: number): Bar[] {
  const sorted = [...points].sort((a, b) => a.startUnix - b.startUnix);
  const n = sorted.length;
  if (n === 0) return [];
  const slot = width / n;
  const gap = slot > 3 ? 1 : 0;
  return sorted.map((p, i) => {
    const total = p.passed + p.failed;
    const rate = total > 0 ? p.passed / total : null;
    return {
      x: round2(i * slot),
      width: round2(slot - gap),
      height: rate === null ? 0 : round2(rate * height),
      rate,
      passed: p.passed,
      failed: p.failed,
      start: p.startUnix,
    };
  });
}
