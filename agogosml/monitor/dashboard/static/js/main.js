// Tabs, and the refresh loop of the Live tab (every few seconds while it is visible).

import { loadHistory, setupHistory } from "./history.js";
import { refreshLive } from "./live.js";
import { fmtTime } from "./dom.js";

const REFRESH_MS = 5_000;
let historyLoaded = false;
let timer = null;
let refreshing = false;

function status(text, failed = false) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.classList.toggle("failed", failed);
}

function activeTab() {
  return document.querySelector("[role=tab][aria-selected=true]").dataset.tab;
}

async function tick() {
  if (refreshing) return;
  refreshing = true;
  clearTimeout(timer);
  try {
    if (activeTab() === "live" && !document.hidden) {
      const at = await refreshLive();
      status(`Live · updated ${fmtTime(at)}`);
      document.body.dataset.liveRefreshes = String(Number(document.body.dataset.liveRefreshes ?? 0) + 1);
    }
  } catch (failure) {
    status(`Live · ${failure.message}`, true);
  } finally {
    refreshing = false;
    timer = setTimeout(tick, REFRESH_MS);
  }
}

function show(tab) {
  for (const button of document.querySelectorAll("[role=tab]")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === tab));
  }
  for (const panel of document.querySelectorAll(".tab-panel")) panel.hidden = panel.id !== tab;
  history.replaceState(null, "", tab === "history" ? "#history" : location.pathname + location.search);
  if (tab === "history") {
    status("Historical");
    if (!historyLoaded) {
      historyLoaded = true;
      loadHistory();
    }
  } else {
    tick();
  }
}

setupHistory();
for (const button of document.querySelectorAll("[role=tab]")) {
  button.addEventListener("click", () => show(button.dataset.tab));
}
window.addEventListener("hashchange", () => show(location.hash === "#history" ? "history" : "live"));
document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
show(location.hash === "#history" ? "history" : "live");
