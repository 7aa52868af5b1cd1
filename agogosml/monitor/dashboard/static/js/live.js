// The Live tab: the pipeline now, refreshed every few seconds.

import { getJson, throughputSeries, versionColor } from "./api.js";
import { PALETTE, calibrationPlot, driftHistogram, hbars, levelBar, levelClass, lineChart, metricBars } from "./charts.js";
import { el, fmt, fmtMs, fmtTime, pct, replace } from "./dom.js";

const THROUGHPUT_SPAN_MS = 15 * 60_000;
const THROUGHPUT_WINDOW_MS = 10_000;
const LATENCY_HISTORY = 180;

const latencyHistory = [];

function panel(id) {
  return document.querySelector(`#${id} .plot`);
}

function tile(name, value, note) {
  return el("div", { class: "tile" }, el("div", { class: "tile-name", text: name }),
    el("div", { class: "tile-value", text: value }), note ? el("div", { class: "tile-note", text: note }) : null);
}

function renderTiles(live) {
  replace(document.getElementById("live-tiles"),
    tile("Events / s", fmt(live.events_per_s, 1), `over ${fmt(live.window_s, 0)} s`),
    tile("Latency p50", fmtMs(live.latency_ms_p50), "event time → scored"),
    tile("Latency p99", fmtMs(live.latency_ms_p99)),
    tile("Stored", fmt(live.stored_total), `${fmt(live.skipped_total)} skipped`),
    tile("Store failures", fmt(live.store_failures_total)),
    tile("Labels", fmt(live.labels_total), "late ground truth"));
}

function renderThroughput(counts) {
  const end = counts.end_ms;
  replace(panel("panel-throughput"), lineChart({
    series: throughputSeries(counts, PALETTE), label: "events per second by model version",
    xDomain: [end - THROUGHPUT_SPAN_MS, end], xFormat: (x) => fmtTime(x), yFormat: (y) => fmt(y, 1),
  }));
}

function renderLatency(live) {
  latencyHistory.push([live.at_ms, live.latency_ms_p50, live.latency_ms_p99]);
  if (latencyHistory.length > LATENCY_HISTORY) latencyHistory.shift();
  const series = [
    { name: "p50", color: PALETTE[0], points: latencyHistory.filter((p) => p[1] !== null).map((p) => [p[0], p[1]]) },
    { name: "p99", color: PALETTE[3], points: latencyHistory.filter((p) => p[2] !== null).map((p) => [p[0], p[2]]) },
  ];
  const first = latencyHistory[0][0];
  const last = latencyHistory[latencyHistory.length - 1][0];
  replace(panel("panel-latency"), lineChart({
    series, label: "latency p50 and p99 since this page opened", xFormat: (x) => fmtTime(x),
    xDomain: [Math.min(first, last - 60_000), last],
    yFormat: (y) => fmtMs(y), width: 420,
  }));
}

function byValue(record) {
  return Object.entries(record).sort((a, b) => b[1] - a[1]);
}

function renderBars(live) {
  replace(panel("panel-predictions"), hbars({
    items: byValue(live.prediction_shares).map(([label, value], i) => ({ label, value, color: PALETTE[i % PALETTE.length] })),
    label: "share of predictions", format: (v) => pct(v), emptyText: "No predictions in the window",
  }));
  replace(panel("panel-errors"), hbars({
    items: byValue(live.errors).map(([label, value]) => ({ label, value, color: "#d0453a" })),
    label: "errors by service", format: (v) => fmt(v, 0), emptyText: "No errors",
  }));
  replace(panel("panel-dead-letters"), hbars({
    items: byValue(live.dead_letters).map(([label, value]) => ({ label, value, color: "#b7791f" })),
    label: "dead letters by reason", format: (v) => fmt(v, 0), emptyText: "No dead letters",
  }));
}

function stat(name, value) {
  return el("span", { class: "stat" }, el("span", { class: "stat-name", text: name }), el("span", { class: "stat-value", text: value }));
}

function featureCard(feature) {
  const level = levelClass(feature.detector_level);
  return el("article", { class: `feature-card ${level}`, "data-feature": feature.feature },
    el("header", {},
      el("h4", { class: "feature-name", text: feature.feature }),
      el("span", { class: "feature-kind", text: feature.kind.replace("_", " ") })),
    driftHistogram({ bins: feature.bins, reference: feature.reference, live: feature.live, label: `${feature.feature}: live against reference` }),
    el("div", { class: "feature-stats" },
      stat("PSI", fmt(feature.psi, 3)), stat("p", feature.pvalue < 0.001 ? "<0.001" : fmt(feature.pvalue, 3)),
      feature.js_distance === null ? null : stat("JS", fmt(feature.js_distance, 3)),
      stat("n", fmt(feature.n)), stat("alarms", fmt(feature.alarms))),
    el("div", { class: "detector" }, el("span", { class: "stat-name", text: "detector" }), levelBar(feature.detector_level)));
}

function renderDrift(versions) {
  const root = document.getElementById("drift");
  if (!versions.length) return replace(root, el("p", { class: "note", text: "No model version seen yet." }));
  return replace(root, versions.map((version) => {
    const features = [...version.features].sort((a, b) => b.detector_level - a.detector_level);
    return el("section", { class: "version-drift", "data-version": version.model_version },
      el("h3", {}, el("span", { class: "version-dot", "data-color": versionColor(version.model_version, PALETTE) }),
        `${version.model_name} · version ${version.model_version}`,
        el("span", { class: "muted", text: ` ${fmt(version.window_events)} events in the window, ${fmt(version.events)} seen` })),
      version.profile === "loaded" ? null : el("p", { class: "note", text: `No reference profile: ${version.profile}` }),
      el("div", { class: "feature-grid" }, features.map(featureCard)));
  }));
}

const METRICS = [
  { key: "roc_auc", name: "ROC AUC" }, { key: "precision", name: "precision" },
  { key: "recall", name: "recall" }, { key: "accuracy", name: "accuracy" },
];

function renderPerformance(versions) {
  const root = document.getElementById("performance");
  if (!versions.length) return replace(root, el("p", { class: "note", text: "No labelled events yet." }));
  const colored = versions.map((v) => ({ ...v, color: versionColor(v.model_version, PALETTE) }));
  return replace(root, el("div", { class: "performance-grid" },
    el("article", { class: "panel" }, el("h3", { text: "Metrics by version" }),
      metricBars({ metrics: METRICS, label: "ROC AUC, precision, recall and accuracy per model version",
        versions: colored.map((v) => ({ name: `version ${v.model_version}`, color: v.color, values: v })) }),
      el("div", { class: "legend" }, colored.map((v) => el("span", { class: "legend-item" },
        el("span", { class: "swatch", "data-color": v.color }), `version ${v.model_version}`)))),
    colored.map((v) => el("article", { class: "panel performance-card", "data-version": v.model_version },
      el("h3", { text: `${v.model_name} · version ${v.model_version}` }),
      el("div", { class: "feature-stats" },
        stat("labelled", fmt(v.labelled)), stat("log loss", fmt(v.log_loss, 3)),
        stat("ROC AUC", fmt(v.roc_auc, 3)), stat("window", `${fmt(v.window_s / 60, 0)} min`)),
      calibrationPlot({ bins: v.calibration, color: v.color, label: `calibration of version ${v.model_version}` })))));
}

function paint(root) {
  for (const node of root.querySelectorAll("[data-color]")) node.style.background = node.dataset.color;
}

export async function refreshLive() {
  const now = Date.now();
  const [live, drift, performance, counts] = await Promise.all([
    getJson("live"), getJson("drift"), getJson("performance"),
    getJson("counts", { start: now - THROUGHPUT_SPAN_MS, end: now, window: THROUGHPUT_WINDOW_MS }),
  ]);
  renderTiles(live);
  renderThroughput(counts);
  renderLatency(live);
  renderBars(live);
  renderDrift(drift);
  renderPerformance(performance);
  paint(document.getElementById("live"));
  return live.at_ms;
}
