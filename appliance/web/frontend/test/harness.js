// Test page entry: the charts and audio modules as the app bundles them, plus
// helpers the Playwright tests (tests/test_handler_types.py) and the benchmark
// (bench/web_charts.py) call through page.evaluate. Not shipped to the device.
import { chartTotals, createHandlerView, handlerTypes } from "../src/charts/index.js";
import * as audio from "../src/audio/index.js";

const views = new Map();

function frames(n = 2) {
  return new Promise((resolve) => {
    const step = () => (--n <= 0 ? resolve() : requestAnimationFrame(step));
    requestAnimationFrame(step);
  });
}

function hexToRgb(hex) {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

window.harness = {
  audio,
  handlerTypes,
  chartTotals,
  frames,

  /** A view in a new box of width x height CSS pixels (display:none when hidden). */
  create(id, type, parameters, { width = 640, height = 360, hidden = false } = {}) {
    const box = document.createElement("div");
    box.id = id;
    box.style.cssText = `width:${width}px;height:${height}px;display:${hidden ? "none" : "block"};`;
    document.body.append(box);
    views.set(id, { box, view: createHandlerView(box, type, parameters) });
  },

  /** Destroy every view (between tests sharing the page). */
  reset() {
    for (const id of [...views.keys()]) this.destroy(id);
  },

  feed(id, messages) {
    const { view } = views.get(id);
    for (const message of messages) view.update(message);
  },

  show(id) {
    views.get(id).box.style.display = "block";
  },

  destroy(id) {
    views.get(id).view.destroy();
    views.get(id).box.remove();
    views.delete(id);
  },

  view(id) {
    return views.get(id).view;
  },

  stats(id) {
    return views.get(id).view.stats();
  },

  /** The message shown in the tab, or null. */
  banner(id) {
    const banner = views.get(id).box.querySelector(".micarray-handler-error");
    return banner && banner.style.display !== "none" ? banner.firstChild.textContent : null;
  },

  /**
   * Pixels of the view's canvases: `painted` = not transparent and not white,
   * `near` = within `tolerance` of each colour in `colors` (hex).
   */
  pixels(id, colors = [], tolerance = 40) {
    const targets = colors.map(hexToRgb);
    const result = { canvases: 0, painted: 0, near: targets.map(() => 0) };
    for (const canvas of views.get(id).box.querySelectorAll("canvas")) {
      result.canvases++;
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      for (let p = 0; p < data.length; p += 4) {
        if (data[p + 3] === 0) continue;
        const [r, g, b] = [data[p], data[p + 1], data[p + 2]];
        if (r < 250 || g < 250 || b < 250) result.painted++;
        targets.forEach(([tr, tg, tb], i) => {
          if (Math.abs(r - tr) + Math.abs(g - tg) + Math.abs(b - tb) <= tolerance) result.near[i]++;
        });
      }
    }
    return result;
  },

  /** [r, g, b, a] at CSS pixel (x, y) of the view: the topmost canvas painted there. */
  pixelAt(id, x, y) {
    const box = views.get(id).box.getBoundingClientRect();
    const canvases = [...views.get(id).box.querySelectorAll("canvas")].reverse();
    for (const canvas of canvases) {
      const rect = canvas.getBoundingClientRect();
      const cx = x + box.left - rect.left;
      const cy = y + box.top - rect.top;
      if (cx < 0 || cy < 0 || cx >= rect.width || cy >= rect.height) continue;
      const scale = canvas.width / rect.width;
      const rgba = [...canvas.getContext("2d").getImageData(Math.floor(cx * scale), Math.floor(cy * scale), 1, 1).data];
      if (rgba[3] > 0) return rgba;
    }
    return [0, 0, 0, 0];
  },

  /** The y (or x) axis extent ECharts settled on. */
  axisExtent(id, axis = "yAxis") {
    const chart = views.get(id).view.impl.chart;
    return chart.getModel().getComponent(axis, 0).axis.scale.getExtent();
  },

  /** A WAV blob's bytes as base64 (for Python's wave module). */
  async blobBase64(blob) {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(text);
  },

  bytesFromBase64(text) {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer;
  },
};

// The benchmark's helpers ride along; they do nothing until called.
import "./bench.js";
