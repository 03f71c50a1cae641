// The console's tools: find (highlights matching lines, Enter jumps to the next),
// copy and download of the selected run's whole log.
import { h, byId, toast } from "./dom.js";

export class ConsoleTools {
  constructor(runs) {
    this.runs = runs;
    this.input = byId("console-search");
    this.count = byId("console-matches");
    this.current = -1;
    this.input.addEventListener("input", () => { this.current = -1; this.mark(); });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); this.next(event.shiftKey ? -1 : 1); }
      if (event.key === "Escape") { this.input.value = ""; this.mark(); }
    });
    byId("btn-copy-log").addEventListener("click", () => this.copy());
    byId("btn-download-log").addEventListener("click", () => this.download());
  }

  /** New lines were drawn: mark them too while a search is on. */
  linesAdded() { if (this.input.value) this.mark(); }

  mark() {
    const needle = this.input.value.toLowerCase();
    let n = 0;
    for (const line of this.runs.consoleEl.children) {
      const hit = needle !== "" && line.textContent.toLowerCase().includes(needle);
      line.classList.toggle("match", hit);
      if (hit) n += 1;
    }
    this.count.textContent = needle ? `${n} ${n === 1 ? "line" : "lines"}` : "";
  }

  next(step) {
    const hits = [...this.runs.consoleEl.querySelectorAll(".line.match")];
    if (!hits.length) return;
    for (const el of hits) el.classList.remove("current");
    this.current = (this.current + step + hits.length) % hits.length;
    hits[this.current].classList.add("current");
    hits[this.current].scrollIntoView({ block: "center" });
  }

  async copy() {
    const text = this.runs.text();
    if (!text) { toast("No run selected"); return; }
    try {
      await navigator.clipboard.writeText(text);
      toast("Console copied");
    } catch (err) {
      toast(`Cannot copy: ${err.message}; use Download instead`, "error");
    }
  }

  download() {
    const run = this.runs.selectedRun();
    if (!run) { toast("No run selected"); return; }
    const blob = new Blob([this.runs.text()], { type: "text/plain" });
    const url = URL.createObjectURL(blob);
    const stem = run.info.name.replace(/\.py$/, "");
    const a = h("a", { href: url, download: `${stem}-${run.info.id}.log` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}
