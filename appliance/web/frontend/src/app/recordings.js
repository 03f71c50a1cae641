// The Recordings tab: start a recording on the device (WAV or FLAC, written to the
// card as it is captured, so closing this page does not stop it), watch its progress
// and the time left on the card, stop it; list, download, rename, delete.
import { api } from "./http.js";
import { h, byId, formatBytes, toast } from "./dom.js";

const POLL_ACTIVE_MS = 1000;
const POLL_IDLE_MS = 10000;

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds);
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Recordings {
  constructor() {
    this.pane = byId("pane-recordings");
    this.timer = 0;
    this.build();
    document.querySelector('[data-tab="recordings"]')?.addEventListener("click", () => this.refresh());
    this.refresh();
  }

  build() {
    this.format = h("select", { id: "rec-format" }, h("option", { value: "wav" }, "WAV"), h("option", { value: "flac" }, "FLAC"));
    this.seconds = h("input", { id: "rec-seconds", type: "number", min: "1", step: "1", placeholder: "until stopped" });
    this.name = h("input", { id: "rec-name", placeholder: "automatic", spellcheck: "false" });
    this.active = h("div", { id: "rec-active" });
    this.table = h("table", { id: "rec-table", class: "files" });
    this.pane.append(
      h("h3", {}, "Record on the device"),
      h("div", { class: "toolbar" },
        h("label", {}, "Format ", this.format),
        h("label", {}, "Seconds ", this.seconds),
        h("label", {}, "Name ", this.name),
        h("button", { id: "btn-rec-start", class: "primary", onclick: () => this.start() }, "● Start recording")),
      this.active,
      h("h3", {}, "Recordings"),
      this.table);
  }

  async start() {
    const body = { format: this.format.value };
    if (this.seconds.value) body.seconds = Number(this.seconds.value);
    const name = this.name.value.trim();
    if (name) body.name = /\.(wav|flac)$/i.test(name) ? name : `${name}.${body.format}`;
    try {
      await api("POST", "/api/v1/recordings", body);
      this.name.value = "";
    } catch (err) {
      toast(`Could not start the recording: ${err.message}`, "error");
    }
    await this.refresh();
  }

  async stop(name) {
    try { await api("POST", `/api/v1/recordings/${encodeURIComponent(name)}/stop`); } catch (err) { toast(err.message, "error"); }
    await this.refresh();
  }

  async rename(name) {
    const to = prompt(`Rename ${name} to:`, name);
    if (!to || to === name) return;
    try { await api("POST", `/api/v1/recordings/${encodeURIComponent(name)}/rename`, { to }); } catch (err) { toast(err.message, "error"); }
    await this.refresh();
  }

  async remove(name) {
    if (!confirm(`Delete the recording ${name}?`)) return;
    try { await api("DELETE", `/api/v1/recordings/${encodeURIComponent(name)}`); } catch (err) { toast(err.message, "error"); }
    await this.refresh();
  }

  async refresh() {
    clearTimeout(this.timer);
    let list = [];
    try { list = await api("GET", "/api/v1/recordings"); } catch { list = null; }
    if (list) this.render(list);
    const going = list && list.some((r) => r.state === "recording");
    this.timer = setTimeout(() => this.refresh(), going ? POLL_ACTIVE_MS : POLL_IDLE_MS);
  }

  render(list) {
    const going = list.filter((r) => r.state === "recording");
    this.active.replaceChildren(...going.map((r) => {
      const bar = r.target_seconds
        ? h("progress", { max: r.target_seconds, value: r.seconds })
        : h("progress", {});
      return h("div", { class: "rec-going", dataset: { name: r.name } },
        h("b", {}, `● ${r.name}`), " ", bar,
        ` ${duration(r.seconds)}${r.target_seconds ? ` of ${duration(r.target_seconds)}` : ""}`,
        ` · ${r.channels} ch · ${r.rate} Hz · ${formatBytes(r.size)}`,
        ` · ${duration(r.disk_seconds_left)} left on the card`,
        r.lost_blocks ? ` · ${r.lost_blocks} blocks lost` : "", " ",
        h("button", { class: "rec-stop", onclick: () => this.stop(r.name) }, "■ Stop"));
    }));
    const rows = list.filter((r) => r.state !== "recording").map((r) => h("tr", { dataset: { name: r.name } },
      h("td", { class: "file-path", title: r.reason || "" }, r.name),
      h("td", { class: "num" }, duration(r.seconds)),
      h("td", { class: "num" }, r.channels ?? "–"),
      h("td", { class: "num" }, r.rate ? `${r.rate} Hz` : "–"),
      h("td", { class: "num" }, formatBytes(r.size)),
      h("td", { class: "muted" }, new Date(r.started * 1000).toLocaleString()),
      h("td", {},
        h("a", { href: `/api/v1/recordings/${encodeURIComponent(r.name)}`, download: r.name, class: "rec-download" }, "Download"), " ",
        h("button", { class: "rec-rename", onclick: () => this.rename(r.name) }, "Rename"), " ",
        h("button", { class: "rec-delete", onclick: () => this.remove(r.name) }, "Delete"))));
    this.table.replaceChildren(
      h("tr", {}, ...["Name", "Duration", "Channels", "Rate", "Size", "Started", ""].map((t) => h("th", {}, t))),
      ...(rows.length ? rows : [h("tr", {}, h("td", { class: "muted" }, "No recordings yet."))]));
  }
}
