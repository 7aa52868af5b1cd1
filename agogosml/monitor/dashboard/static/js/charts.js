// Small SVG plots drawn with createElementNS: line charts, histograms with a reference
// overlay, horizontal bars, detector levels, grouped metric bars and calibration plots.
// Labels are SVG text nodes (textContent), so names from the data stay text.

import { el, truncate } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
export const PALETTE = ["#2f6fdf", "#e08a1e", "#1a9a73", "#c7407d", "#7a55d6", "#1394b3", "#6c9a1f", "#d0453a"];

export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function frame(width, height, kind, label) {
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, class: `chart ${kind}`, role: "img", "aria-label": label });
}

function titled(node, text) {
  node.append(svg("title", {}, text));
  return node;
}

function empty(root, width, height, text) {
  root.append(svg("text", { x: width / 2, y: height / 2, class: "empty", "text-anchor": "middle" }, text));
  return root;
}

function extent(values) {
  let low = Infinity;
  let high = -Infinity;
  for (const value of values) {
    if (value < low) low = value;
    if (value > high) high = value;
  }
  return [low, high];
}

export function niceTicks(low, high, count = 4) {
  if (!(high > low)) high = low + 1;
  const rough = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const ratio = rough / magnitude;
  const step = (ratio < 1.5 ? 1 : ratio < 3 ? 2 : ratio < 7 ? 5 : 10) * magnitude;
  const ticks = [];
  for (let value = Math.floor(low / step) * step; value < high + step * 0.999; value += step) {
    ticks.push(Number(value.toPrecision(12)));
  }
  return ticks;
}

export function legend(entries) {
  return el("div", { class: "legend" }, entries.map(({ name, color, kind }) =>
    el("span", { class: "legend-item" },
      el("span", { class: `swatch ${kind ?? ""}`, "data-color": color }), name)));
}

// Swatch colours are set through the CSSOM (allowed by the page's style-src policy).
export function paintSwatches(root) {
  for (const swatch of root.querySelectorAll(".swatch[data-color]")) swatch.style.background = swatch.dataset.color;
  return root;
}

// series: [{ name, color, points: [[x, y], ...] }]; markers: [{ x, label }]
export function lineChart({ series, label, xDomain, xFormat, yFormat, yMax, markers = [], width = 640, height = 210 }) {
  const m = { left: 52, right: 14, top: 12, bottom: 26 };
  const root = frame(width, height, "line-chart", label);
  const points = series.flatMap((s) => s.points);
  if (!points.length) return figure(empty(root, width, height, "No events in this range"), series);
  let [x0, x1] = xDomain ?? extent(points.map((p) => p[0]));
  if (x1 <= x0) x1 = x0 + 1;
  const top = Math.max(yMax ?? 0, extent(points.map((p) => p[1]))[1], 1e-9);
  const yTicks = niceTicks(0, top, 4);
  const y1 = yTicks[yTicks.length - 1];
  const sx = (x) => m.left + ((x - x0) / (x1 - x0)) * (width - m.left - m.right);
  const sy = (y) => height - m.bottom - (y / y1) * (height - m.top - m.bottom);
  for (const tick of yTicks) {
    root.append(svg("line", { x1: m.left, x2: width - m.right, y1: sy(tick), y2: sy(tick), class: "grid" }));
    root.append(svg("text", { x: m.left - 6, y: sy(tick) + 4, class: "tick", "text-anchor": "end" }, yFormat(tick)));
  }
  for (let i = 0; i <= 4; i += 1) {
    const x = x0 + ((x1 - x0) * i) / 4;
    const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
    root.append(svg("text", { x: sx(x), y: height - 8, class: "tick", "text-anchor": anchor }, xFormat(x)));
  }
  for (const marker of markers) {
    if (marker.x < x0 || marker.x > x1) continue;
    const line = svg("line", { x1: sx(marker.x), x2: sx(marker.x), y1: m.top, y2: height - m.bottom, class: "marker" });
    root.append(titled(line, marker.label));
  }
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
    root.append(svg("path", { d, class: "line", stroke: s.color }));
    if (s.points.length === 1) {
      root.append(svg("circle", { cx: sx(s.points[0][0]), cy: sy(s.points[0][1]), r: 3, fill: s.color }));
    }
  }
  return figure(root, series);
}

function figure(chart, series) {
  const entries = series.map((s) => ({ name: s.name, color: s.color }));
  return paintSwatches(el("figure", { class: "figure" }, chart, entries.length > 1 ? legend(entries) : null));
}

// A feature's live shares per bin as bars, the training reference as outlined bars over them.
export function driftHistogram({ bins, reference, live, label, width = 340, height = 160 }) {
  const m = { left: 38, right: 6, top: 8, bottom: 36 };
  const root = frame(width, height, "drift-plot", label);
  if (!bins.length) return empty(root, width, height, "No bins");
  const top = Math.max(0.01, extent(reference)[1], extent(live)[1]);
  const ticks = niceTicks(0, top, 3);
  const y1 = ticks[ticks.length - 1];
  const sy = (y) => height - m.bottom - (y / y1) * (height - m.top - m.bottom);
  const band = (width - m.left - m.right) / bins.length;
  for (const tick of ticks) {
    root.append(svg("line", { x1: m.left, x2: width - m.right, y1: sy(tick), y2: sy(tick), class: "grid" }));
    root.append(svg("text", { x: m.left - 4, y: sy(tick) + 4, class: "tick", "text-anchor": "end" }, `${Math.round(tick * 100)}%`));
  }
  const every = Math.ceil(bins.length / Math.max(1, Math.floor((width - m.left) / 44)));
  bins.forEach((bin, i) => {
    const x = m.left + i * band;
    const share = live[i] ?? 0;
    const expected = reference[i] ?? 0;
    const tip = `${bin}: live ${(share * 100).toFixed(1)}%, reference ${(expected * 100).toFixed(1)}%`;
    root.append(titled(svg("rect", { x: x + band * 0.12, width: band * 0.76, y: sy(share), height: sy(0) - sy(share), class: "bar-live" }), tip));
    root.append(titled(svg("rect", { x: x + band * 0.06, width: band * 0.88, y: sy(expected), height: sy(0) - sy(expected), class: "bar-reference" }), tip));
    if (i % every === 0) {
      root.append(titled(svg("text", { x: x + band / 2, y: height - m.bottom + 14, class: "tick", "text-anchor": "middle" }, truncate(bin, 9)), bin));
    }
  });
  return root;
}

// items: [{ label, value, color? }]; one horizontal bar each, scaled to the largest.
export function hbars({ items, label, format, width = 340, emptyText = "Nothing to show" }) {
  const rowHeight = 24;
  const labelWidth = 120;
  const height = Math.max(items.length * rowHeight + 6, 40);
  const root = frame(width, height, "hbars", label);
  if (!items.length) return empty(root, width, height, emptyText);
  const top = Math.max(extent(items.map((item) => item.value))[1], 1e-9);
  const room = width - labelWidth - 64;
  items.forEach((item, i) => {
    const y = 3 + i * rowHeight;
    root.append(titled(svg("text", { x: labelWidth - 6, y: y + 15, class: "label", "text-anchor": "end" }, truncate(item.label, 16)), item.label));
    root.append(svg("rect", { x: labelWidth, y: y + 3, width: Math.max(1, (item.value / top) * room), height: rowHeight - 8, class: "hbar", fill: item.color ?? PALETTE[0] }));
    root.append(svg("text", { x: labelWidth + (item.value / top) * room + 6, y: y + 15, class: "value" }, format(item.value)));
  });
  return root;
}

export function levelClass(level) {
  return level >= 1 ? "alarm" : level >= 0.5 ? "warn" : "ok";
}

// The online detector's statistic as a share of its threshold, with the threshold at 1.0.
export function levelBar(level, width = 200) {
  const height = 26;
  const scale = Math.max(1.5, level * 1.1);
  const inner = width - 12;
  const root = frame(width, height, "level-bar", `detector level ${level.toFixed(2)} of threshold`);
  root.append(svg("rect", { x: 6, y: 6, width: inner, height: 10, rx: 5, class: "track" }));
  root.append(svg("rect", { x: 6, y: 6, width: Math.max(2, (Math.min(level, scale) / scale) * inner), height: 10, rx: 5, class: `level ${levelClass(level)}` }));
  const threshold = 6 + inner / scale;
  root.append(svg("line", { x1: threshold, x2: threshold, y1: 2, y2: 20, class: "threshold" }));
  root.append(svg("text", { x: threshold, y: 26, class: "tick", "text-anchor": "middle" }, "alarm"));
  return root;
}

// metrics: [{ key, name }]; versions: [{ name, color, values: { key: number|null } }]
export function metricBars({ metrics, versions, label, width = 420, height = 190 }) {
  const m = { left: 34, right: 8, top: 10, bottom: 26 };
  const root = frame(width, height, "metric-bars", label);
  if (!versions.length) return empty(root, width, height, "No labelled events yet");
  const sy = (y) => height - m.bottom - y * (height - m.top - m.bottom);
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    root.append(svg("line", { x1: m.left, x2: width - m.right, y1: sy(tick), y2: sy(tick), class: "grid" }));
    root.append(svg("text", { x: m.left - 4, y: sy(tick) + 4, class: "tick", "text-anchor": "end" }, tick.toFixed(2)));
  }
  const group = (width - m.left - m.right) / metrics.length;
  const bar = (group * 0.8) / versions.length;
  metrics.forEach((metric, i) => {
    const x = m.left + i * group + group * 0.1;
    root.append(svg("text", { x: m.left + i * group + group / 2, y: height - 8, class: "tick", "text-anchor": "middle" }, metric.name));
    versions.forEach((version, j) => {
      const value = version.values[metric.key];
      const tip = `${version.name} ${metric.name}: ${value === null || value === undefined ? "n/a" : value.toFixed(3)}`;
      if (value === null || value === undefined) {
        root.append(titled(svg("text", { x: x + j * bar + bar / 2, y: sy(0) - 4, class: "tick", "text-anchor": "middle" }, "n/a"), tip));
        return;
      }
      const clamped = Math.min(1, Math.max(0, value));
      root.append(titled(svg("rect", { x: x + j * bar + 1, width: bar - 2, y: sy(clamped), height: sy(0) - sy(clamped), fill: version.color, class: "metric-bar" }), tip));
    });
  });
  return root;
}

// bins: [{ predicted, observed, n }]; perfect calibration is the diagonal.
export function calibrationPlot({ bins, label, color = PALETTE[0], size = 220 }) {
  const m = 30;
  const root = frame(size, size, "calibration-plot", label);
  const s = (v) => m + v * (size - m - 8);
  const sy = (v) => size - m - v * (size - m - 8);
  for (const tick of [0, 0.5, 1]) {
    root.append(svg("line", { x1: s(0), x2: s(1), y1: sy(tick), y2: sy(tick), class: "grid" }));
    root.append(svg("text", { x: m - 4, y: sy(tick) + 4, class: "tick", "text-anchor": "end" }, tick));
    root.append(svg("text", { x: s(tick), y: size - m + 14, class: "tick", "text-anchor": "middle" }, tick));
  }
  root.append(svg("text", { x: s(0.5), y: size - 2, class: "axis-label", "text-anchor": "middle" }, "predicted"));
  root.append(svg("text", { x: 10, y: sy(0.5), class: "axis-label", "text-anchor": "middle", transform: `rotate(-90 10 ${sy(0.5)})` }, "observed"));
  root.append(svg("line", { x1: s(0), y1: sy(0), x2: s(1), y2: sy(1), class: "diagonal" }));
  if (!bins.length) return empty(root, size, size, "No labels yet");
  const sorted = [...bins].sort((a, b) => a.predicted - b.predicted);
  const most = Math.max(...sorted.map((bin) => bin.n), 1);
  const d = sorted.map((bin, i) => `${i ? "L" : "M"}${s(bin.predicted).toFixed(1)},${sy(bin.observed).toFixed(1)}`).join("");
  root.append(svg("path", { d, class: "line", stroke: color }));
  for (const bin of sorted) {
    const tip = `predicted ${bin.predicted.toFixed(3)}, observed ${bin.observed.toFixed(3)}, ${bin.n} events`;
    root.append(titled(svg("circle", { cx: s(bin.predicted), cy: sy(bin.observed), r: 2.5 + 4 * Math.sqrt(bin.n / most), fill: color, class: "calibration-point" }), tip));
  }
  return root;
}
