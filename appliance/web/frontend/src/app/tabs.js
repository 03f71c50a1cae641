// The tab strip: fixed panes (Device, Audio) and one tab per add_handler, built with
// the chart views of ../charts. The welcome message's handlers (with their history)
// rebuild every tab after a reload or in a second window.
import { createHandlerView, onHandlerTypeRegistered } from "../charts/index.js";
import { h, byId, toast } from "./dom.js";
import { chartCsv, chartPng } from "./chart-export.js";

const DROP_CHECK_MS = 1000;
const REPLAY_KEEP = 2000; // data messages kept per tab (up to twice as many) to rebuild it or export its data

export class Tabs {
  constructor(conn) {
    this.conn = conn;
    this.strip = byId("tabstrip");
    this.bar = byId("tabbar");
    this.panes = byId("tabpanes");
    this.handlers = new Map(); // id -> {info, tab, pane, view, notice}
    this.active = null;
    this.tiled = false;
    byId("btn-tile").addEventListener("click", () => this.tile(!this.tiled));
    byId("btn-close-ended").addEventListener("click", () => this.closeEnded());
    for (const tab of this.strip.querySelectorAll(".fixed-tab")) {
      tab.addEventListener("click", () => this.activate(tab.dataset.tab));
    }
    conn.on("welcome", (msg) => this.reset(msg.handlers || []));
    conn.on("handler_added", (msg) => this.add(msg.handler, true));
    conn.on("handler_data", (msg) => this.data(msg.handler, msg.data));
    conn.on("handler_ended", (msg) => this.ended(msg.handler));
    // A tab closed in another window, or an ended tab replaced when its script ran again.
    conn.on("handler_removed", (msg) => this.removed(msg.handler));
    window.addEventListener("resize", () => (this.tiled ? this.resizeAll() : this.resizeActive()));
    setInterval(() => this.reportDrops(), DROP_CHECK_MS);
    onHandlerTypeRegistered((type) => this.rebuildType(type));
    this.activate("device");
  }

  reset(list) {
    for (const id of [...this.handlers.keys()]) this.remove(id);
    for (const info of list) this.add(info, false);
    const last = list.at(-1);
    if (last) this.activate(last.id);
  }

  add(info, focus) {
    if (this.handlers.has(info.id)) return;
    const where = ownerLabel(info.owner);
    const close = h("button", { class: "tab-close", title: "Close this tab", "aria-label": `Close ${info.name}` }, "×");
    const tab = h("button", { class: "tab handler-tab", role: "tab", dataset: { tab: info.id, type: info.handler_type }, title: `${info.handler_type} — ${where}` },
      h("span", { class: "tab-name" }, info.name), h("span", { class: "tab-where" }, where), close);
    const notice = h("div", { class: "chart-notice", hidden: true });
    const drops = h("div", { class: "chart-dropped", hidden: true });
    const chart = h("div", { class: "chart" });
    const tools = h("span", { class: "chart-tools" },
      h("button", { class: "chart-png", title: "Save the chart as a PNG image" }, "PNG"),
      h("button", { class: "chart-csv", title: "Save the data received as CSV" }, "CSV"),
      h("button", { class: "chart-full", title: "Full screen (Esc leaves)" }, "Full screen"));
    const pane = h("div", { class: "pane handler-pane", dataset: { pane: info.id }, hidden: true },
      h("div", { class: "chart-head" }, h("span", { class: "chart-title" }, h("b", {}, info.name), ` ${info.handler_type} · ${where}`, h("span", { class: "ended-mark" }, info.ended ? " · ended" : "")), tools),
      notice, drops, chart);
    this.bar.append(tab);
    this.panes.append(pane);
    const entry = { info, tab, pane, chart, view: null, notice, drops, errors: 0, replay: [] };
    this.handlers.set(info.id, entry);
    tools.querySelector(".chart-png").addEventListener("click", () => chartPng(entry).catch((err) => toast(`No PNG: ${err.message}`, "error")));
    tools.querySelector(".chart-csv").addEventListener("click", () => chartCsv(entry));
    tools.querySelector(".chart-full").addEventListener("click", () => this.fullScreen(entry));
    tab.addEventListener("click", (event) => {
      if (event.target === close) { this.close(info.id); return; }
      this.activate(info.id);
    });
    // The view measures its container, so make the pane visible while it is built.
    const previous = this.active;
    this.activate(info.id);
    this.build(entry);
    for (const data of info.history || []) this.apply(entry, data);
    if (info.ended) tab.classList.add("ended");
    if (!focus && previous) this.activate(previous);
    this.layout();
  }

  build(entry) {
    try {
      entry.view = createHandlerView(entry.chart, entry.info.handler_type, entry.info.parameters || {});
    } catch (err) {
      this.warn(entry, `This tab cannot be drawn: ${err.message}`);
    }
  }

  /** A custom type registered after its tabs opened: rebuild them from the data kept. */
  rebuildType(type) {
    for (const entry of this.handlers.values()) {
      if (entry.info.handler_type !== type) continue;
      try { entry.view?.destroy(); } catch (err) { console.warn("destroying a chart failed", err); }
      entry.chart.textContent = "";
      entry.notice.hidden = true;
      const previous = this.active;
      this.activate(entry.info.id);
      this.build(entry);
      const replay = entry.replay;
      entry.replay = [];
      for (const data of replay) this.apply(entry, data);
      this.activate(previous);
    }
  }

  data(id, data) {
    const entry = this.handlers.get(id);
    if (entry) this.apply(entry, data);
  }

  apply(entry, data) {
    entry.replay.push(data);
    // Trimmed in steps, not on every message: a splice per message moved the whole
    // list each time, thousands of times a second under a flood.
    if (entry.replay.length >= 2 * REPLAY_KEEP) entry.replay.splice(0, entry.replay.length - REPLAY_KEEP);
    if (!entry.view) return;
    try {
      entry.view.update(data);
    } catch (err) {
      entry.errors += 1;
      this.warn(entry, `Data not understood (${entry.errors} so far): ${err.message}`);
    }
  }

  warn(entry, text) {
    entry.notice.hidden = false;
    entry.notice.textContent = text;
    console.warn(`tab ${entry.info.name}: ${text}`);
  }

  /** Tell the user when a tab's data came faster than the page could keep. */
  reportDrops() {
    for (const entry of this.handlers.values()) {
      const dropped = entry.view?.stats?.().dropped || 0;
      if (!dropped) continue;
      entry.drops.hidden = false;
      entry.drops.textContent = `${dropped} older updates dropped (the tab was hidden or data came faster than the page draws)`;
    }
  }

  ended(id) {
    const entry = this.handlers.get(id);
    if (!entry) return;
    entry.info.ended = true;
    entry.tab.classList.add("ended");
    entry.pane.querySelector(".ended-mark").textContent = " · ended";
    this.layout();
  }

  /** Close a tab here and, through the device, in every open window. */
  close(id) {
    this.conn.send({ type: "handler_close", handler: id });
    this.removed(id);
  }

  closeEnded() {
    for (const [id, entry] of [...this.handlers]) if (entry.info.ended) this.close(id);
  }

  removed(id) {
    const wasActive = this.active === id;
    this.remove(id);
    this.layout();
    if (!wasActive) return;
    const next = [...this.handlers.keys()].at(-1);
    if (next !== undefined) this.activate(next);
    else this.activate("device");
  }

  /** Tile grid size and the strip's buttons follow the tabs there are. */
  layout() {
    const n = this.handlers.size;
    const cols = Math.max(1, Math.ceil(Math.sqrt(n)));
    this.panes.style.setProperty("--tile-cols", String(cols));
    this.panes.style.setProperty("--tile-rows", String(Math.max(1, Math.ceil(n / cols))));
    byId("btn-close-ended").disabled = ![...this.handlers.values()].some((e) => e.info.ended);
    if (this.tiled) this.resizeAll();
  }

  fullScreen(entry) {
    if (document.fullscreenElement) { document.exitFullscreen().catch(() => {}); return; }
    entry.pane.requestFullscreen().then(() => entry.view?.resize()).catch((err) => toast(`Full screen is not available: ${err.message}`, "error"));
  }

  remove(id) {
    const entry = this.handlers.get(id);
    if (!entry) return;
    try { entry.view?.destroy(); } catch (err) { console.warn("destroying a chart failed", err); }
    entry.tab.remove();
    entry.pane.remove();
    this.handlers.delete(id);
  }

  /** Show every chart tab at once in a grid (or go back to one tab at a time). */
  tile(on) {
    this.tiled = on;
    this.panes.classList.toggle("tiled", on);
    byId("btn-tile").classList.toggle("active", on);
    byId("btn-tile").setAttribute("aria-pressed", String(on));
    if (on && !this.handlers.has(this.active)) {
      const first = this.handlers.keys().next();
      if (!first.done) this.activate(first.value);
    }
    this.resizeAll();
  }

  resizeAll() {
    for (const entry of this.handlers.values()) {
      try { entry.view?.resize(); } catch (err) { console.warn("resizing a chart failed", err); }
    }
  }

  activate(id) {
    if (this.tiled && !this.handlers.has(id)) this.tile(false);
    this.active = id;
    for (const tab of this.strip.querySelectorAll("[data-tab]")) {
      const on = tab.dataset.tab === id;
      tab.classList.toggle("active", on);
      tab.setAttribute("aria-selected", String(on));
      if (on && tab.parentElement === this.bar) tab.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
    for (const pane of this.panes.querySelectorAll("[data-pane]")) pane.hidden = pane.dataset.pane !== id;
    this.resizeActive();
  }

  resizeActive() {
    const entry = this.handlers.get(this.active);
    if (entry?.view) { try { entry.view.resize(); } catch (err) { console.warn("resizing a chart failed", err); } }
  }
}

/** Where a handler's script runs, in words. */
export function ownerLabel(owner) {
  if (!owner) return "";
  if (owner.kind === "run") return `${owner.origin === "terminal" ? "terminal" : "editor"}: ${owner.name || owner.run || "script"}`;
  return `${owner.name || "script"} on ${owner.host || "unknown host"}`;
}
