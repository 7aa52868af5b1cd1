// Building the page from data. Everything that came from the stream (feature names,
// categories, predictions, rule names, evidence) is set as text or as an attribute value,
// never parsed as HTML.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key === "on") for (const [type, handler] of Object.entries(value)) node.addEventListener(type, handler);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

export function fmt(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (typeof value !== "number") return String(value);
  if (Math.abs(value) >= 1e6) return (value / 1e6).toFixed(1) + "M";
  if (Math.abs(value) >= 1e4) return (value / 1e3).toFixed(1) + "k";
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
}

export function pct(share, digits = 1) {
  return share === null || share === undefined ? "—" : (share * 100).toFixed(digits) + "%";
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms >= 60_000) return (ms / 60_000).toFixed(1) + " min";
  if (ms >= 1_000) return (ms / 1_000).toFixed(2) + " s";
  return ms.toFixed(ms < 10 ? 1 : 0) + " ms";
}

export function fmtTime(ms, withDate = false) {
  const date = new Date(ms);
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  if (!withDate) return time;
  return date.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time;
}

// A JSON value as one line of text (strings without their quotes).
export function jsonText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function truncate(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}
