// Script runs: Execute (restarts the editor's script), another copy, Stop, Stop all, the
// console (stdout, stderr marked, ANSI colours, traceback links to the run's own source),
// the state badge and exit status. Output is drawn in frames with a time budget and the
// console keeps a bounded number of lines, so a print flood cannot freeze the page.
import { h, byId, toast } from "./dom.js";
import { api } from "./http.js";
import { ansiRuns, overwriteCR, plainText } from "./ansi.js";
import { ConsoleTools } from "./console-tools.js";
import { showSource } from "./source-view.js";

const MAX_LINES = 5000;        // lines kept per run in the page (up to a fifth more)
const MAX_DOM_LINES = 500;     // lines drawn in the console at once (the layout cost grows with them)
const FRAME_BUDGET_MS = 6;     // drawing time per animation frame; the rest waits
const DRAW_EVERY_MS = 250;     // a flooded console is drawn at most this often: input keeps the other frames
const FLOOD_LINES = 20;        // lines waiting at once that make a flood
const FLOOD_DRAW_LINES = 40;   // lines a flooded console draws at a time (more than it shows); Copy and Download have all

export class Runs {
  constructor(conn, editor, getName) {
    this.conn = conn;
    this.editor = editor;
    this.getName = getName;
    this.runs = new Map();  // id -> {info, lines: [], dropped}
    this.selected = null;
    this.queue = [];        // lines waiting to be drawn for the selected run
    this.frame = 0;
    this.maxDomLines = MAX_DOM_LINES;
    this.consoleEl = byId("console");
    this.select = byId("run-select");
    this.badge = byId("run-state");
    this.exitEl = byId("exit-status");
    this.tools = new ConsoleTools(this);
    // Follow the end while the user has not scrolled up; read on scroll, not on every drawing,
    // so drawing forces no layout of the page.
    this.stick = true;
    this.consoleEl.addEventListener("scroll", () => {
      const el = this.consoleEl;
      this.stick = el.scrollTop + el.clientHeight >= el.scrollHeight - 30;
    }, { passive: true });
    // How far behind live audio the selected run's script is, next to its state.
    this.lagEl = h("span", { id: "run-lag", class: "run-lag", title: "how far behind live audio the script is" });
    this.badge.after(this.lagEl);
    this.select.addEventListener("change", () => this.show(this.select.value));
    byId("btn-execute").addEventListener("click", () => this.execute());
    byId("btn-another").addEventListener("click", () => this.execute({ copy: true }));
    byId("btn-stop").addEventListener("click", () => this.stop());
    byId("btn-stop-all").addEventListener("click", () => this.stopAll());
    byId("btn-clear").addEventListener("click", () => { this.consoleEl.textContent = ""; });
    this.consoleEl.addEventListener("click", (event) => {
      const link = event.target.closest("[data-line]");
      if (link) this.openTraceback(Number(link.dataset.line));
    });
    conn.on("welcome", (msg) => this.reset(msg.runs || []));
    conn.on("run_started", (msg) => this.upsert(msg.run, true));
    conn.on("run_ended", (msg) => this.upsert(msg.run, false));
    conn.on("run_output", (msg) => this.output(msg.run, { stream: msg.stream, text: msg.text, line: msg.line }));
    conn.on("stats", (msg) => this.lags(msg.run_lag_ms || {}));
    conn.on("run_dropped", (msg) => this.output(msg.run, tailLine(msg)));
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
      run = { info, lines: (info.output || []).slice(-MAX_LINES).map(tailLine), dropped: 0 };
      this.runs.set(info.id, run);
    } else {
      run.info = { ...run.info, ...info, output: undefined };
    }
    this.refreshSelect();
    if (select || this.selected === null) this.show(info.id);
    else if (info.id === this.selected) { this.updateStatus(); if (info.state !== "running") this.endNote(run); }
    else this.updateStatus();
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
    // Trimmed in steps of a fifth: a splice per line moved all 5000 each time under a flood.
    if (run.lines.length > MAX_LINES * 1.2) { run.lines.splice(0, run.lines.length - MAX_LINES); run.dropped += 1; }
    if (id === this.selected) {
      this.queue.push(line);
      this.schedule();
    }
  }

  /** Draw soon: on the next frame, but no sooner than DRAW_EVERY_MS after the last drawing. */
  schedule() {
    if (this.frame) return;
    // A flood: many lines waiting, or the last drawing had many (lines come in batches,
    // so a new batch's first line alone says nothing).
    const gap = this.queue.length > FLOOD_LINES || this.lastCount > FLOOD_LINES ? DRAW_EVERY_MS : 0;
    const wait = Math.max(0, (this.lastDraw || 0) + gap - performance.now());
    this.frame = setTimeout(() => requestAnimationFrame(() => this.flush()), wait);
  }

  flush() {
    this.frame = 0;
    this.lastDraw = performance.now();
    // Only the newest lines that fit the console matter: older queued ones would be removed at once.
    if (this.queue.length > this.maxDomLines) this.queue.splice(0, this.queue.length - this.maxDomLines);
    if (!this.full && this.queue.length > FLOOD_DRAW_LINES) this.skipOlder();
    else if (this.gapped && !this.full && this.queue.length <= FLOOD_LINES) {
      // The flood calmed down: draw the last lines again, without the gaps.
      this.gapped = false;
      this.render();
      return;
    }
    const start = performance.now();
    const el = this.consoleEl;
    const fragment = document.createDocumentFragment();
    let n = 0;
    while (n < this.queue.length && (n < 50 || performance.now() - start < FRAME_BUDGET_MS)) {
      fragment.append(this.lineEl(this.queue[n]));
      n += 1;
    }
    this.queue.splice(0, n);
    this.lastCount = n;
    el.append(fragment);
    const excess = el.childElementCount - this.maxDomLines;
    if (excess > 0) {
      const range = document.createRange();
      range.setStartBefore(el.firstChild);
      range.setEndAfter(el.children[excess - 1]);
      range.deleteContents();
    }
    if (this.stick) el.scrollTop = el.scrollHeight;
    this.tools.linesAdded();
    if (this.queue.length) this.schedule();
    else this.full = false;
  }

  // Lines that come faster than anyone reads: draw only the newest, say how many were
  // passed over, keep the device's own notices. Drawing hundreds of lines four times a
  // second took the page's time from the user's keys and clicks.
  skipOlder() {
    const older = this.queue.splice(0, this.queue.length - FLOOD_DRAW_LINES);
    const notices = older.filter((line) => line.stream === "notice").slice(-3);
    const skipped = older.length - notices.length;
    this.queue.unshift(...notices, { stream: "notice", text: `… ${skipped} lines passed over on screen while they came this fast (Copy and Download have them)` });
    this.gapped = true;
  }

  lineEl(line) {
    const cls = `line ${line.stream}`;
    const text = overwriteCR(line.text);
    const body = text.includes("\x1b")
      ? ansiRuns(text).map((r) => (r.cls || r.style ? h("span", { class: r.cls || null, style: r.style || null }, r.text) : r.text))
      : [text];
    if (line.line) {
      return h("div", { class: `${cls} tb`, dataset: { line: line.line }, title: `Open the run's source at line ${line.line}` }, ...body);
    }
    return h("div", { class: cls }, ...body);
  }

  /** The whole console of the selected run as plain text. */
  text() {
    const run = this.runs.get(this.selected);
    if (!run) return "";
    const lines = run.lines.map((l) => plainText(l.text));
    if (run.info.state !== "running") lines.push(`— ${describeEnd(run.info)}`);
    return lines.join("\n") + "\n";
  }

  selectedRun() { return this.runs.get(this.selected) || null; }

  show(id) {
    this.selected = this.runs.has(id) ? id : null;
    this.queue = [];
    this.render();
  }

  render() {
    this.consoleEl.textContent = "";
    const run = this.runs.get(this.selected);
    if (run) {
      this.full = true; // every kept line, without passing over any
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
    this.schedule();
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
    byId("btn-stop-all").disabled = !this.running().length;
    this.showLag();
    this.refreshSelect();
  }

  running() { return [...this.runs.values()].filter((r) => r.info.state === "running"); }

  /** Execute: the editor's script is restarted when it runs already; ``copy`` starts another one. */
  async execute({ copy = false } = {}) {
    const code = this.editor.getCode();
    const name = this.getName();
    if (!copy) {
      const same = this.running().filter((r) => !r.info.remote && r.info.origin !== "terminal" && r.info.name === name);
      try {
        await Promise.all(same.map((r) => this.conn.request({ type: "run_stop", run: r.info.id })));
      } catch (err) {
        toast(`Could not stop the running copy: ${err.message}`, "error");
        return;
      }
    }
    try {
      // The run works in the script's project folder (set by main.js from files.js).
      const project = (await this.getProject?.()) || undefined;
      const ack = await this.conn.request({ type: "run_start", name, code, project });
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

  async stopAll() {
    const results = await Promise.allSettled(this.running().map((r) => this.conn.request({ type: "run_stop", run: r.info.id })));
    const failed = results.filter((r) => r.status === "rejected");
    if (failed.length) toast(`Could not stop ${failed.length} runs: ${failed[0].reason.message}`, "error");
  }

  /** A traceback link: the editor when it holds the run's code, else the run's own source, read-only. */
  async openTraceback(line) {
    const run = this.runs.get(this.selected);
    if (!run || run.info.remote) return;
    let source;
    try { source = await api("GET", `/api/v1/runs/${encodeURIComponent(run.info.id)}/source`); }
    catch (err) { toast(`Cannot open the source: ${err.message}`, "error"); return; }
    if (source.code === this.editor.getCode()) { this.editor.gotoLine(line); return; }
    showSource(source, line, runLabel(run.info));
  }
}

/** A console line from a run's tail as the welcome sends it (output and dropped events). */
function tailLine(event) {
  if (event.type === "run_dropped") return { stream: "notice", text: `… ${event.lines} lines dropped: the script printed faster than the console can show` };
  return { stream: event.stream, text: String(event.text ?? ""), line: event.line };
}

/** A run in the run menu: where it came from, name, state, start time. */
export function runLabel(info) {
  const when = info.started ? ` · ${new Date(info.started * 1000).toLocaleTimeString()}` : "";
  const what = info.remote ? `${info.name} on ${info.host || "another host"}`
    : info.origin === "terminal" ? `terminal: ${info.name}` : `editor: ${info.name}`;
  return `${what} · ${info.state}${when}`;
}

/** How a run ended, one wording for all: the state, who stopped it, the exit status. */
export function describeEnd(info) {
  let text = info.state;
  if (info.state === "stopped") text = `stopped ${info.stopped_by || "by the user"}`;
  if (info.exit_code !== null && info.exit_code !== undefined) text += `, exit status ${info.exit_code}`;
  else if (info.signal) text += `, ended by ${info.signal}`;
  if (info.state === "failed" && info.reason && !/^exited with status/.test(info.reason)) text += ` (${info.reason})`;
  return text;
}
