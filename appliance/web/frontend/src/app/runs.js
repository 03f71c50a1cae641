// Script runs: Execute/Stop/Restart, the console (stdout, stderr marked, traceback
// links), the state badge and exit status. Output is drawn once per animation frame
// and the console keeps a bounded number of lines so a flood cannot freeze the page.
import { h, byId, toast } from "./dom.js";

const MAX_LINES = 5000;        // lines kept per run in the page
const MAX_LINES_PER_FRAME = 400; // lines drawn per animation frame; the rest wait

export class Runs {
  constructor(conn, editor, getName) {
    this.conn = conn;
    this.editor = editor;
    this.getName = getName;
    this.runs = new Map();  // id -> {info, lines: [], dropped}
    this.selected = null;
    this.queue = [];        // lines waiting to be drawn for the selected run
    this.frame = 0;
    this.consoleEl = byId("console");
    this.select = byId("run-select");
    this.badge = byId("run-state");
    this.exitEl = byId("exit-status");
    // How far behind live audio the selected run's script is, next to its state.
    this.lagEl = h("span", { id: "run-lag", class: "run-lag", title: "how far behind live audio the script is" });
    this.badge.after(this.lagEl);
    this.select.addEventListener("change", () => this.show(this.select.value));
    byId("btn-execute").addEventListener("click", () => this.execute());
    byId("btn-stop").addEventListener("click", () => this.stop());
    byId("btn-restart").addEventListener("click", () => this.restart());
    byId("btn-clear").addEventListener("click", () => { this.consoleEl.textContent = ""; });
    this.consoleEl.addEventListener("click", (event) => {
      const link = event.target.closest("[data-line]");
      if (link) this.editor.gotoLine(Number(link.dataset.line));
    });
    conn.on("welcome", (msg) => this.reset(msg.runs || []));
    conn.on("run_started", (msg) => this.upsert(msg.run, true));
    conn.on("run_ended", (msg) => this.upsert(msg.run, false));
    conn.on("run_output", (msg) => this.output(msg.run, { stream: msg.stream, text: msg.text, line: msg.line }));
    conn.on("stats", (msg) => this.lags(msg.run_lag_ms || {}));
    conn.on("run_dropped", (msg) => this.output(msg.run, { stream: "notice", text: `… ${msg.lines} lines dropped: the script printed faster than the console can show` }));
  }

  reset(list) {
    this.runs.clear();
    this.selected = null;
    for (const info of list) this.upsert(info, false);
    const running = list.filter((r) => r.state === "running");
    const last = running.at(-1) || list.at(-1);
    this.refreshSelect();
    if (last) this.show(last.id); else this.render();
  }

  upsert(info, select) {
    let run = this.runs.get(info.id);
    if (!run) {
      run = { info, lines: (info.output || []).slice(-MAX_LINES), dropped: 0 };
      this.runs.set(info.id, run);
    } else {
      run.info = { ...run.info, ...info, output: undefined };
    }
    this.refreshSelect();
    if (select || this.selected === null) this.show(info.id);
    else if (info.id === this.selected) { this.updateStatus(); if (info.state !== "running") this.endNote(run); }
  }

  lags(byRun) {
    for (const [id, run] of this.runs) run.lag = byRun[id];
    this.showLag();
  }

  showLag() {
    const run = this.runs.get(this.selected);
    const lag = run && run.info.state === "running" ? run.lag : undefined;
    this.lagEl.textContent = lag === undefined ? "" : `lag ${Math.round(lag)} ms`;
    this.lagEl.classList.toggle("behind", lag !== undefined && lag >= 500);
  }

  output(id, line) {
    const run = this.runs.get(id);
    if (!run) return;
    run.lines.push(line);
    if (run.lines.length > MAX_LINES) { run.lines.splice(0, run.lines.length - MAX_LINES); run.dropped += 1; }
    if (id === this.selected) {
      this.queue.push(line);
      if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.frame = 0;
    const batch = this.queue.splice(0, MAX_LINES_PER_FRAME);
    const stick = this.consoleEl.scrollTop + this.consoleEl.clientHeight >= this.consoleEl.scrollHeight - 30;
    const fragment = document.createDocumentFragment();
    for (const line of batch) fragment.append(this.lineEl(line));
    this.consoleEl.append(fragment);
    const excess = this.consoleEl.childElementCount - MAX_LINES;
    for (let i = 0; i < excess; i += 1) this.consoleEl.firstElementChild.remove();
    if (stick) this.consoleEl.scrollTop = this.consoleEl.scrollHeight;
    if (this.queue.length) this.frame = requestAnimationFrame(() => this.flush());
  }

  lineEl(line) {
    const cls = `line ${line.stream}`;
    if (line.line) {
      return h("div", { class: `${cls} tb`, dataset: { line: line.line }, title: `Go to line ${line.line}` }, line.text);
    }
    return h("div", { class: cls }, line.text);
  }

  show(id) {
    this.selected = this.runs.has(id) ? id : null;
    this.queue = [];
    this.render();
  }

  render() {
    this.consoleEl.textContent = "";
    const run = this.runs.get(this.selected);
    if (run) {
      this.queue = run.lines.slice();
      if (run.dropped) this.queue.unshift({ stream: "notice", text: "… older lines were dropped from this page" });
      this.flush();
      if (run.info.state !== "running") this.endNote(run);
    }
    this.select.value = this.selected ?? "";
    this.updateStatus();
  }

  endNote(run) {
    if (this.consoleEl.querySelector(".line.exit")) return;
    this.queue.push({ stream: "exit", text: `— ${describeEnd(run.info)}` });
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  refreshSelect() {
    const options = [...this.runs.values()].reverse().map(({ info }) =>
      h("option", { value: info.id }, runLabel(info)));
    this.select.replaceChildren(...(options.length ? options : [h("option", { value: "" }, "no runs yet")]));
    this.select.value = this.selected ?? "";
  }

  updateStatus() {
    const run = this.runs.get(this.selected);
    const state = run ? run.info.state : "idle";
    this.badge.textContent = state;
    this.badge.className = `badge state-${state}`;
    this.exitEl.textContent = run && state !== "running" ? describeEnd(run.info) : "";
    byId("btn-stop").disabled = state !== "running";
    this.showLag();
    this.refreshSelect();
  }

  async execute() {
    const code = this.editor.getCode();
    try {
      const ack = await this.conn.request({ type: "run_start", name: this.getName(), code });
      if (ack.run) this.upsert(ack.run, true);
    } catch (err) {
      toast(`Could not start the script: ${err.message}`, "error");
    }
  }

  async stop() {
    const run = this.runs.get(this.selected);
    if (!run || run.info.state !== "running") return;
    try { await this.conn.request({ type: "run_stop", run: run.info.id }); } catch (err) { toast(`Could not stop: ${err.message}`, "error"); }
  }

  async restart() {
    await this.stop();
    await this.execute();
  }
}

/** A run in the run menu: name, where it runs when elsewhere, state, start time. */
export function runLabel(info) {
  const where = info.remote ? ` on ${info.host || "another host"}` : "";
  const when = info.started ? ` · ${new Date(info.started * 1000).toLocaleTimeString()}` : "";
  return `${info.name}${where} · ${info.state}${when}`;
}

export function describeEnd(info) {
  const parts = [info.state];
  if (info.signal) parts.push(`by signal ${info.signal}`);
  else if (info.exit_code !== null && info.exit_code !== undefined) parts.push(`exit code ${info.exit_code}`);
  if (info.reason && !/^exited with status/.test(info.reason)) parts.push(`(${info.reason})`);
  return parts.join(", ");
}
