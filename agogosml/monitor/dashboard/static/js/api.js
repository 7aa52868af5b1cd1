// The dashboard's JSON API, by URLs relative to the page (it works under any prefix).

export class ApiError extends Error {}

export async function getJson(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const url = `api/${path}${query.size ? "?" + query : ""}`;
  let response;
  try {
    response = await fetch(url, { headers: { accept: "application/json" } });
  } catch (error) {
    throw new ApiError(`the monitor did not answer (${error.message})`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(body && body.detail ? String(body.detail) : `HTTP ${response.status}`);
  }
  return body;
}

// One colour per model version, stable across panels and refreshes.
const versionColors = new Map();
export function versionColor(version, palette) {
  if (!versionColors.has(version)) versionColors.set(version, palette[versionColors.size % palette.length]);
  return versionColors.get(version);
}

// Events per second per model version, one point per window, zero where none were stored.
export function throughputSeries(counts, palette) {
  const perVersion = new Map();
  for (const row of counts.windows) {
    if (!perVersion.has(row.model_version)) perVersion.set(row.model_version, new Map());
    perVersion.get(row.model_version).set(row.window_start_ms, row.count);
  }
  const first = Math.floor(counts.start_ms / counts.window_ms) * counts.window_ms;
  return [...perVersion.keys()].sort().map((version) => {
    const windows = perVersion.get(version);
    const points = [];
    for (let start = first; start < counts.end_ms; start += counts.window_ms) {
      // The first and last windows may be cut by the range: divide by the part covered,
      // and leave out a sliver too short to give a steady rate.
      const covered = Math.min(start + counts.window_ms, counts.end_ms) - Math.max(start, counts.start_ms);
      if (covered < counts.window_ms / 2) continue;
      points.push([start, (windows.get(start) ?? 0) / (covered / 1000)]);
    }
    return { name: `version ${version}`, color: versionColor(version, palette), points };
  });
}
