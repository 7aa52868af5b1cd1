// The Historical tab: a time range over the store, its event counts, the scored events
// (filtered, each expandable to its inputs) and the trigger log.

import { getJson, throughputSeries, versionColor } from "./api.js";
import { PALETTE, hbars, lineChart } from "./charts.js";
import { el, fmt, fmtTime, jsonText, replace, truncate } from "./dom.js";

const PRESETS = [["15m", 15 * 60_000], ["1h", 3_600_000], ["6h", 6 * 3_600_000], ["24h", 86_400_000], ["7d", 7 * 86_400_000]];
const WINDOWS_MS = [1_000, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000];
const POINTS = 240;
const PAGE = 50;

const state = { start: 0, end: 0, versions: new Set(), cursor: null };

function $(id) {
  return document.getElementById(id);
}

// Rollups are per minute: a window past a minute stays a multiple of it.
function windowFor(span) {
  return WINDOWS_MS.find((w) => span / w <= POINTS) ?? WINDOWS_MS[WINDOWS_MS.length - 1];
}

function toInput(ms) {
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return date.toISOString().slice(0, 16);
}

function fromInput(text) {
  const ms = new Date(text).getTime();
  return Number.isFinite(ms) ? ms : null;
}

function error(node, message) {
  replace(node, el("p", { class: "error", text: message }));
}

function setRange(start, end) {
  state.start = start;
  state.end = end;
  $("range-from").value = toInput(start);
  $("range-to").value = toInput(end);
  $("range-summary").textContent = `${fmtTime(start, true)} → ${fmtTime(end, true)}`;
}

async function loadCounts() {
  const window = windowFor(state.end - state.start);
  const counts = await getJson("counts", { start: state.start, end: state.end, window });
  for (const row of counts.windows) state.versions.add(row.model_version);
  const firings = await getJson("firings", { start: state.start, end: state.end });
  replace(document.querySelector("#panel-history-counts .plot"), lineChart({
    series: throughputSeries(counts, PALETTE), label: "events per second over the range",
    xDomain: [state.start, state.end], xFormat: (x) => fmtTime(x, state.end - state.start > 86_400_000),
    yFormat: (y) => fmt(y, 1), markers: firings.firings.map((f) => ({ x: f.fired_at_ms, label: `${f.rule}: ${f.action}` })),
  }));
  for (const swatch of document.querySelectorAll("#panel-history-counts .swatch[data-color]")) swatch.style.background = swatch.dataset.color;
  const items = counts.predictions.map((p, i) => ({ label: jsonText(p.prediction), value: p.count, color: PALETTE[i % PALETTE.length] }));
  if (counts.other_predictions) items.push({ label: "other", value: counts.other_predictions, color: "#8a94a6" });
  replace(document.querySelector("#panel-history-predictions .plot"), hbars({
    items, label: "events per prediction over the range", format: (v) => fmt(v, 0), emptyText: "No events in this range",
  }));
  renderFirings(firings);
  fillVersions();
}

function fillVersions() {
  const select = $("filter-version");
  const chosen = select.value;
  replace(select, el("option", { value: "", text: "all versions" }),
    [...state.versions].sort().map((v) => el("option", { value: v, text: `version ${v}` })));
  select.value = state.versions.has(chosen) ? chosen : "";
}

// What the prediction box holds, as the JSON value the API filters on: typed JSON
// (1, true, "a b") as it is, anything else as a string.
function predictionFilter() {
  const text = $("filter-prediction").value.trim();
  if (!text) return undefined;
  try {
    const value = JSON.parse(text);
    if (value !== null) return JSON.stringify(value);
  } catch {
    // not JSON: a plain string
  }
  return JSON.stringify(text);
}

function detailList(title, record) {
  const entries = record && typeof record === "object" && !Array.isArray(record) ? Object.entries(record) : [["value", record]];
  return el("section", { class: "detail-block" }, el("h5", { text: title }),
    el("dl", { class: title === "Inputs" ? "features" : "scores" }, entries.map(([name, value]) => [
      el("dt", { class: "feature-key", text: name }), el("dd", { class: "feature-value", text: jsonText(value) })])));
}

function eventRows(event) {
  const detail = el("tr", { class: "event-detail", hidden: true },
    el("td", { colspan: 6 }, el("div", { class: "detail-grid" },
      detailList("Inputs", event.features), detailList("Scores", event.scores),
      el("section", { class: "detail-block" }, el("h5", { text: "Event" }), el("dl", {},
        el("dt", { text: "scored at" }), el("dd", { text: fmtTime(event.scored_at_ms, true) }),
        el("dt", { text: "model" }), el("dd", { text: event.model_name }),
        el("dt", { text: "subject" }), el("dd", { text: event.subject ?? "—" }))))));
  const toggle = el("button", { class: "expand", type: "button", "aria-expanded": "false", "aria-label": `inputs of ${event.event_id}`, text: "▸" });
  const row = el("tr", { class: "event-row", "data-event-id": event.event_id },
    el("td", {}, toggle),
    el("td", { text: fmtTime(event.event_time_ms, true) }),
    el("td", { class: "mono", text: truncate(event.event_id, 24), title: event.event_id }),
    el("td", {}, el("span", { class: "version-dot", "data-color": versionColor(event.model_version, PALETTE) }), event.model_version),
    el("td", { class: "prediction", text: truncate(jsonText(event.prediction), 32) }),
    el("td", { class: "latency", text: `${fmt(event.scored_at_ms - event.event_time_ms, 0)} ms` }));
  row.addEventListener("click", () => {
    detail.hidden = !detail.hidden;
    toggle.textContent = detail.hidden ? "▸" : "▾";
    toggle.setAttribute("aria-expanded", String(!detail.hidden));
  });
  return [row, detail];
}

async function loadEvents(more = false) {
  const body = document.querySelector("#events-table tbody");
  const note = $("events-note");
  if (!more) {
    body.replaceChildren();
    state.cursor = null;
  }
  note.textContent = "Loading…";
  try {
    const page = await getJson("events", {
      start: state.start, end: state.end, model_version: $("filter-version").value,
      prediction: predictionFilter(), limit: PAGE, cursor: more ? state.cursor : undefined,
    });
    for (const event of page.events) body.append(...eventRows(event));
    for (const dot of body.querySelectorAll(".version-dot[data-color]")) dot.style.background = dot.dataset.color;
    state.cursor = page.cursor;
    $("events-more").hidden = !page.cursor;
    const shown = body.querySelectorAll("tr.event-row").length;
    note.textContent = shown ? `${shown} events${page.cursor ? ", more below" : ""}` : "No events match.";
  } catch (failure) {
    note.textContent = "";
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "error", text: failure.message })));
  }
}

function renderFirings({ firings, truncated }) {
  const list = $("firings");
  if (!firings.length) return replace(list, el("li", { class: "note", text: "No trigger fired in this range." }));
  return replace(list, [...firings].reverse().map((firing) =>
    el("li", { class: "firing" },
      el("div", { class: "firing-head" },
        el("time", { text: fmtTime(firing.fired_at_ms, true) }),
        el("strong", { class: "firing-rule", text: firing.rule }),
        el("span", { class: "firing-action", text: firing.action }),
        el("span", { class: `firing-outcome ${/fail|error|refus/i.test(firing.outcome) ? "bad" : "good"}`, text: firing.outcome })),
      el("details", {}, el("summary", { text: "evidence" }),
        el("pre", { class: "evidence", text: JSON.stringify(firing.evidence, null, 2) })))),
  truncated ? el("li", { class: "note", text: "Older firings in this range are not shown." }) : null);
}

// ROC AUC per model version and window over the range, from the labels in the store.
async function loadPerformance() {
  const window = windowFor(state.end - state.start);
  const history = await getJson("performance/history", { start: state.start, end: state.end, window });
  const perVersion = new Map();
  for (const point of history.points) {
    if (point.roc_auc === null) continue;
    if (!perVersion.has(point.model_version)) perVersion.set(point.model_version, []);
    perVersion.get(point.model_version).push([point.window_start_ms, point.roc_auc]);
  }
  const series = [...perVersion.keys()].sort().map((version) => ({
    name: `version ${version}`, color: versionColor(version, PALETTE), points: perVersion.get(version),
  }));
  const node = document.querySelector("#panel-history-performance .plot");
  replace(node, lineChart({
    series, label: "ROC AUC from late labels over the range", yMax: 1,
    xDomain: [state.start, state.end], xFormat: (x) => fmtTime(x, state.end - state.start > 86_400_000),
    yFormat: (y) => fmt(y, 2),
  }));
  if (history.truncated) node.append(el("p", { class: "note", text: "The earliest labels of this range are not read." }));
}

export async function loadHistory() {
  $("history-status").textContent = "";
  try {
    await loadCounts();
  } catch (failure) {
    error(document.querySelector("#panel-history-counts .plot"), failure.message);
    $("history-status").textContent = failure.message;
  }
  try {
    await loadPerformance();
  } catch (failure) {
    error(document.querySelector("#panel-history-performance .plot"), failure.message);
  }
  await loadEvents();
}

export function setupHistory() {
  const presets = $("range-presets");
  for (const [name, span] of PRESETS) {
    presets.append(el("button", { type: "button", class: "preset", "data-span": span, text: name, on: {
      click: () => { setRange(Date.now() - span, Date.now()); loadHistory(); },
    } }));
  }
  $("range").addEventListener("submit", (event) => {
    event.preventDefault();
    const start = fromInput($("range-from").value);
    const end = fromInput($("range-to").value);
    if (start === null || end === null || end <= start) {
      $("history-status").textContent = "Pick a start before the end.";
      return;
    }
    setRange(start, end);
    loadHistory();
  });
  $("events-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    loadEvents();
  });
  $("events-more").addEventListener("click", () => loadEvents(true));
  setRange(Date.now() - 3_600_000, Date.now());
}

