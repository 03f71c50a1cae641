// The device panel: audio settings limited to what the device accepts, the source,
// level meters, counters, latency, CPU, temperature, disk, clients, listeners, log.
import { h, byId, formatBytes, toast } from "./dom.js";
import { showTitle } from "./title.js";

const MAX_LOG_LINES = 500;
const METER_FLOOR_DB = -60;

export class DevicePanel {
  constructor(conn) {
    this.conn = conn;
    this.config = null;
    this.form = byId("config-form");
    this.error = byId("config-error");
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.apply(); });
    byId("cfg-volume").addEventListener("input", () => { byId("cfg-volume-value").textContent = byId("cfg-volume").value; });
    conn.on("welcome", (msg) => {
      const d = msg.device || {};
      byId("device-name").textContent = d.name || "device";
      showTitle({ device: d.name || "" });
      byId("device-model").textContent = [d.model, d.version && `v${d.version}`].filter(Boolean).join(" · ");
      this.showConfig(msg.config, msg.valid_rates, msg.valid_num_channels);
      byId("service-log").textContent = "";
      for (const line of msg.log || []) this.log(line);
      // Problems the device wants the admin to see (e.g. bad lines in micarray.txt).
      for (const notice of msg.notices || []) toast(notice, "error");
    });
    conn.on("config", (msg) => this.showConfig(msg.config, msg.valid_rates, msg.valid_num_channels));
    conn.on("stats", (msg) => this.showStats(msg));
    conn.on("levels", (msg) => this.showLevels(msg.dbfs));
    conn.on("log", (msg) => this.log(msg));
    conn.on("loss", (msg) => { byId("stat-browser-loss").textContent = String(msg.total); });
  }

  showConfig(config, rates, counts) {
    if (!config) return;
    this.config = config;
    fillSelect(byId("cfg-rate"), rates || [config.rate], config.rate, (r) => `${r} Hz`);
    fillSelect(byId("cfg-channels"), counts || [config.channels], config.channels, (c) => String(c));
    byId("cfg-buffer").value = config.buffer_frames;
    byId("cfg-volume").value = config.volume;
    byId("cfg-volume-value").textContent = config.volume;
    byId("config-summary").textContent = `${config.rate} Hz · ${config.channels} ch · ${config.buffer_frames} frames · volume ${config.volume}`;
    document.dispatchEvent(new CustomEvent("micarray:config", { detail: config }));
  }

  async apply() {
    const wanted = {
      rate: Number(byId("cfg-rate").value),
      channels: Number(byId("cfg-channels").value),
      buffer_frames: Number(byId("cfg-buffer").value),
      volume: Number(byId("cfg-volume").value),
    };
    const change = {};
    for (const [key, value] of Object.entries(wanted)) if (!this.config || this.config[key] !== value) change[key] = value;
    this.error.textContent = "";
    if (!Object.keys(change).length) return;
    try {
      await this.conn.request({ type: "change_config", ...change });
      toast("Audio settings applied");
    } catch (err) {
      this.error.textContent = err.message;
    }
  }

  showStats(s) {
    const set = (id, text) => { byId(id).textContent = text; };
    set("stat-source", s.source ?? "–");
    set("stat-state", s.state === "running" ? "capturing" : (s.state || "–"));
    set("stat-message", s.message || "");
    set("stat-overruns", String(s.overruns ?? 0));
    set("stat-lost", String(s.lost_blocks ?? 0));
    set("stat-cpu", s.cpu_percent === null || s.cpu_percent === undefined ? "–" : `${Math.round(s.cpu_percent)} %`);
    set("stat-temp", s.temperature_c === null || s.temperature_c === undefined ? "not reported" : `${s.temperature_c.toFixed(1)} °C`);
    set("stat-disk", formatBytes(s.disk_free_bytes));
    const latency = byId("latency-badge");
    if (s.latency_ms === null || s.latency_ms === undefined) latency.textContent = "latency –";
    else {
      latency.textContent = `latency ${Math.round(s.latency_ms)} ms`;
      latency.className = `badge ${s.latency_ms > 500 ? "bad" : s.latency_ms > 150 ? "warn" : "good"}`;
    }
    byId("stat-clients").replaceChildren(...(s.clients || []).map((c) => h("li", {}, `${c.name || "client"} (${c.role || "?"}) from ${c.host || "?"}`)));
    byId("stat-listeners").replaceChildren(...(s.listeners || []).map((l) => h("li", {}, `${l.address}:${l.port} · channels ${(l.channels || []).join(", ") || "all"}`)));
    if (!(s.clients || []).length) byId("stat-clients").append(h("li", { class: "muted" }, "none"));
    if (!(s.listeners || []).length) byId("stat-listeners").append(h("li", { class: "muted" }, "none"));
    if (s.levels_dbfs) this.showLevels(s.levels_dbfs);
  }

  showLevels(dbfs) {
    const box = byId("meters");
    if (!Array.isArray(dbfs)) return;
    while (box.childElementCount < dbfs.length) {
      const n = box.childElementCount;
      box.append(h("div", { class: "meter" }, h("span", { class: "meter-label" }, `ch ${n}`), h("div", { class: "meter-track" }, h("div", { class: "meter-bar" })), h("span", { class: "meter-value" })));
    }
    while (box.childElementCount > dbfs.length) box.lastElementChild.remove();
    dbfs.forEach((db, i) => {
      const row = box.children[i];
      const value = db === null || !Number.isFinite(db) ? METER_FLOOR_DB : Math.max(METER_FLOOR_DB, Math.min(0, db));
      const bar = row.querySelector(".meter-bar");
      bar.style.width = `${(100 * (value - METER_FLOOR_DB)) / -METER_FLOOR_DB}%`;
      bar.classList.toggle("clip", value > -1);
      row.querySelector(".meter-value").textContent = db === null || !Number.isFinite(db) ? "–∞" : `${db.toFixed(0)} dB`;
    });
  }

  log(msg) {
    const box = byId("service-log");
    const time = msg.time ? new Date(msg.time * 1000).toLocaleTimeString() : "";
    box.append(h("div", { class: `log-line level-${(msg.level || "INFO").toLowerCase()}` }, `${time} ${msg.level} ${msg.name}: ${msg.message}`));
    while (box.childElementCount > MAX_LOG_LINES) box.firstElementChild.remove();
    box.scrollTop = box.scrollHeight;
  }
}

function fillSelect(select, values, current, label) {
  const list = values.includes(current) ? values : [...values, current];
  select.replaceChildren(...list.map((v) => h("option", { value: v }, label(v))));
  select.value = String(current);
}
