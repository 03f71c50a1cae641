// Saving a tab: the chart as a PNG (every canvas of the pane, composed) and the data
// received as CSV (one row per point for the documented formats, JSON otherwise).
import { h } from "./dom.js";

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function fileStem(entry) {
  return entry.info.name.replace(/[^A-Za-z0-9_.-]+/g, "_") || "chart";
}

/** The pane's canvases drawn onto one, on the page's background colour. */
export async function chartPng(entry) {
  const box = entry.chart.getBoundingClientRect();
  const canvases = [...entry.chart.querySelectorAll("canvas")].filter((c) => c.width && c.height);
  if (!canvases.length) throw new Error("the chart has not been drawn yet");
  const scale = window.devicePixelRatio || 1;
  const out = document.createElement("canvas");
  out.width = Math.round(box.width * scale);
  out.height = Math.round(box.height * scale);
  const ctx = out.getContext("2d");
  ctx.fillStyle = getComputedStyle(entry.pane).backgroundColor || "#fff";
  ctx.fillRect(0, 0, out.width, out.height);
  for (const c of canvases) {
    const r = c.getBoundingClientRect();
    ctx.drawImage(c, (r.left - box.left) * scale, (r.top - box.top) * scale, r.width * scale, r.height * scale);
  }
  const blob = await new Promise((resolve) => out.toBlob(resolve, "image/png"));
  if (!blob) throw new Error("the browser could not encode the image");
  save(blob, `${fileStem(entry)}.png`);
}

const cell = (v) => {
  const text = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v ?? "");
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

/** Rows for one data message: [series, x, y] for graphs, [message, index, values...] otherwise. */
export function csvRows(type, data, n, seriesNames) {
  const series = (i) => seriesNames[i] ?? `series ${i}`;
  if (type.startsWith("base:graph:")) {
    if (Array.isArray(data)) return data.map((p, i) => [n, series(i), p?.x, p?.y]);
    const list = data?.add ?? data?.replace;
    if (Array.isArray(list)) {
      return list.flatMap((s, i) => (Array.isArray(s?.x) ? s.x.map((x, k) => [n, series(i), x, s.y?.[k]]) : [[n, series(i), s?.x, s?.y]]));
    }
    if (Array.isArray(data?.x) && Array.isArray(data?.y)) {
      return data.y.flatMap((ys, i) => (Array.isArray(ys) ? ys.map((y, k) => [n, series(i), data.x[k], y]) : []));
    }
  }
  if (type.startsWith("base:polar:") && Array.isArray(data)) {
    return data.map((s, i) => [n, series(i), ...(Array.isArray(s?.replace) ? s.replace : [s?.append])]);
  }
  if (Array.isArray(data) && data.every(Array.isArray)) return data.map((row, i) => [n, i, ...row]);
  if (Array.isArray(data)) return [[n, "", ...data]];
  return [[n, "", JSON.stringify(data)]];
}

/** The data this page received for the tab (the last messages kept), as CSV. */
export function chartCsv(entry) {
  const type = entry.info.handler_type;
  const names = (entry.info.parameters?.series || []).map((s) => (typeof s === "string" ? s : s?.name));
  const head = type.startsWith("base:graph:") ? ["message", "series", entry.info.parameters?.xName || "x", "y"]
    : type.startsWith("base:polar:") ? ["message", "series", "values"] : ["message", "row", "values"];
  const lines = [head.map(cell).join(",")];
  entry.replay.forEach((data, n) => { for (const row of csvRows(type, data, n, names)) lines.push(row.map(cell).join(",")); });
  save(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }), `${fileStem(entry)}.csv`);
}
