// Drawing the small SVG charts (the scaling is in ../chart.ts).
import { passRateBars, scaleLine, type XY } from "../chart";
import { s } from "../dom";
import type { PassRatePoint } from "../gen/protos/blendr/v1/network_pb";

/** A line chart of a price series (values in wei per GPU-hour). */
export function priceChart(points: XY[], label: string, fmt: (wei: number) => string): SVGElement {
  const box = { width: 320, height: 90, pad: 6 };
  const sc = scaleLine(points, box);
  const lastPt = sc.points[sc.points.length - 1];
  return s(
    "svg",
    { viewBox: `0 0 ${box.width} ${box.height}`, class: "chart", role: "img", "aria-label": label, "data-testid": "price-chart-svg", preserveAspectRatio: "none" },
    s("title", null, label),
    s("line", { x1: box.pad, y1: box.height - box.pad, x2: box.width - box.pad, y2: box.height - box.pad, class: "axis" }),
    s("text", { x: box.pad + 2, y: box.pad + 10, class: "tick" }, fmt(sc.vMax)),
    sc.d ? s("path", { d: sc.d, class: "line", "data-testid": "price-chart-line" }) : null,
    lastPt ? s("circle", { cx: lastPt.x, cy: lastPt.y, r: 2.5, class: "dot" }) : null,
  );
}

/** A bar per period, as tall as its pass rate (gray stub: nothing decided then). */
export function passRateSparkline(points: PassRatePoint[], label: string): SVGElement {
  const width = 96;
  const height = 20;
  const bars = passRateBars(points, width, height);
  return s(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, width, height, class: "spark", role: "img", "aria-label": label, "data-testid": "provider-pass-rate" },
    s("title", null, label),
    bars.map((b) =>
      b.rate === null
        ? s("rect", { x: b.x, y: height - 1, width: b.width, height: 1, class: "none" })
        : s("rect", { x: b.x, y: height - b.height, width: b.width, height: Math.max(1, b.height), class: b.rate < 0.9 ? "bad" : "ok" },
            s("title", null, `${b.passed} passed, ${b.failed} failed`)),
    ),
  );
}
