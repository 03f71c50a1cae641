// The tab strip: fixed panes (Device, Audio) and one tab per add_handler, built with
// the chart views of ../charts. The welcome message's handlers (with their history)
// rebuild every tab after a reload or in a second window.
import { createHandlerView, onHandlerTypeRegistered } from "../charts/index.js";
import { h, byId } from "./dom.js";

const DROP_CHECK_MS = 1000;
const REPLAY_KEEP = 2000; // data messages kept per tab to rebuild it when its type is (re)registered

export class Tabs {
  constructor(conn) {
    this.conn = conn;
    this.bar = byId("tabbar");
    this.panes = byId("tabpanes");
    this.handlers = new Map(); // id -> {info, tab, pane, view, notice}
    this.active = null;
    this.tiled = false;
    byId("btn-tile").addEventListener("click", () => this.tile(!this.tiled));
    for (const tab of this.bar.querySelectorAll("[data-tab]")) {
      tab.addEventListener("click", () => this.activate(tab.dataset.tab));
    }
    conn.on("welcome", (msg) => this.reset(msg.handlers || []));
    conn.on("handler_added", (msg) => this.add(msg.handler, true));
    conn.on("handler_data", (msg) => this.data(msg.handler, msg.data));
    conn.on("handler_ended", (msg) => this.ended(msg.handler));
    window.addEventListener("resize", () => (this.tiled ? this.resizeAll() : this.resizeActive()));
    setInterval(() => this.reportDrops(), DROP_CHECK_MS);
    onHandlerTypeRegistered((type) => this.rebuildType(type));
    this.activate(this.bar.querySelector("[data-tab]").dataset.tab);
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
    const pane = h("div", { class: "pane handler-pane", dataset: { pane: info.id }, hidden: true },
      h("div", { class: "chart-head" }, h("b", {}, info.name), ` ${info.handler_type} · ${where}`, h("span", { class: "ended-mark" }, info.ended ? " · ended" : "")),
      notice, drops, chart);
    this.bar.insertBefore(tab, byId("btn-tile"));
    this.panes.append(pane);
    const entry = { info, tab, pane, chart, view: null, notice, drops, errors: 0, replay: [] };
    this.handlers.set(info.id, entry);
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
    if (entry.replay.length > REPLAY_KEEP) entry.replay.splice(0, entry.replay.length - REPLAY_KEEP);
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
  }

  close(id) {
    this.conn.send({ type: "handler_close", handler: id });
    this.remove(id);
    if (this.active !== id) return;
    const next = this.handlers.keys().next();
    if (!next.done) this.activate(next.value);
    else if (!this.tiled) this.activate("device");
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
    for (const tab of this.bar.querySelectorAll("[data-tab]")) tab.classList.toggle("active", tab.dataset.tab === id);
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
  if (owner.kind === "run") return `editor: ${owner.name || owner.run || "script"}`;
  return `${owner.name || "script"} on ${owner.host || "unknown host"}`;
}
