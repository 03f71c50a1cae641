// Saved scripts (list, open, save, rename, delete, download) and the examples menu.
// The editor's text is also kept in localStorage, so a reload keeps unsaved work.
import { api } from "./http.js";
import { h, byId, toast } from "./dom.js";
import { showTitle } from "./title.js";

const DRAFT_KEY = "micarray.draft";
const DEFAULT_NAME = "untitled.py";
const STARTER = `import browserinterface as bi

def handle(buffer):
    print("got", buffer.shape[0], "frames of", buffer.shape[1], "channels")

bi.register_handle_data(handle)
bi.start()
bi.loop_callbacks()
`;

export class Scripts {
  constructor(editor) {
    this.editor = editor;
    this.nameInput = byId("script-name");
    this.list = byId("script-list");
    this.examples = byId("examples");
    this.dirty = false;
    byId("btn-save").addEventListener("click", () => this.save());
    byId("btn-rename").addEventListener("click", () => this.rename());
    byId("btn-delete").addEventListener("click", () => this.remove());
    byId("btn-download").addEventListener("click", () => this.download());
    byId("btn-new").addEventListener("click", () => { if (this.mayDiscard("start a new script")) this.load(DEFAULT_NAME, STARTER); });
    this.list.addEventListener("change", () => { const name = this.list.value; this.list.value = ""; if (name) this.open(name); });
    this.examples.addEventListener("change", () => { const name = this.examples.value; this.examples.value = ""; if (name) this.openExample(name); });
    this.nameInput.addEventListener("change", () => { this.keepDraft(); showTitle({ script: this.name() }); });
  }

  async start() {
    let draft = null;
    try { draft = JSON.parse(localStorage.getItem(DRAFT_KEY) || "null"); } catch { draft = null; }
    if (draft && typeof draft.code === "string") {
      this.load(draft.name || DEFAULT_NAME, draft.code);
      this.setDirty(Boolean(draft.dirty));
    } else this.load(DEFAULT_NAME, STARTER);
    await Promise.all([this.refresh(), this.loadExamples()]);
  }

  /** True when the editor holds nothing unsaved, or the user agrees to lose it. */
  mayDiscard(what) {
    if (!this.dirty) return true;
    return window.confirm(`${this.name()} has changes that are not saved on the device. Discard them and ${what}?`);
  }

  /** Mark unsaved changes: a dot before the name, in the page title and the Save button. */
  setDirty(on) {
    this.dirty = on;
    this.nameInput.classList.toggle("dirty", on);
    byId("dirty-mark").hidden = !on;
    byId("btn-save").classList.toggle("attention", on);
    showTitle({ script: this.name(), dirty: on });
  }

  name() {
    let name = this.nameInput.value.trim() || DEFAULT_NAME;
    if (!name.endsWith(".py")) name += ".py";
    return name;
  }

  load(name, code) {
    this.nameInput.value = name;
    this.editor.setCode(code);
    this.setDirty(false);
    showTitle({ script: name });
    this.keepDraft();
  }

  changed() { if (!this.dirty) this.setDirty(true); this.keepDraft(); }

  keepDraft() {
    const draft = { name: this.nameInput.value, code: this.editor.getCode(), dirty: this.dirty };
    try { localStorage.setItem(DRAFT_KEY, JSON.stringify(draft)); } catch (err) { console.warn("cannot keep the draft", err); }
  }

  async refresh() {
    try {
      const scripts = await api("GET", "/api/v1/scripts");
      this.list.replaceChildren(h("option", { value: "" }, scripts.length ? "Open saved…" : "No saved scripts"),
        ...scripts.map((s) => h("option", { value: s.name }, s.name)));
    } catch (err) { toast(`Cannot list the scripts: ${err.message}`, "error"); }
  }

  async loadExamples() {
    try {
      const examples = await api("GET", "/api/v1/examples");
      this.examples.replaceChildren(h("option", { value: "" }, "Examples…"),
        ...examples.map((e) => h("option", { value: e.name }, e.title)));
    } catch (err) { toast(`Cannot list the examples: ${err.message}`, "error"); }
  }

  async open(name) {
    if (!this.mayDiscard(`open ${name}`)) return;
    try { const script = await api("GET", `/api/v1/scripts/${encodeURIComponent(name)}`); this.load(script.name, script.code); }
    catch (err) { toast(err.message, "error"); }
  }

  async openExample(name) {
    if (!this.mayDiscard(`open the example ${name}`)) return;
    try { const ex = await api("GET", `/api/v1/examples/${encodeURIComponent(name)}`); this.load(ex.name, ex.code); }
    catch (err) { toast(err.message, "error"); }
  }

  async save() {
    const name = this.name();
    try {
      await api("PUT", `/api/v1/scripts/${encodeURIComponent(name)}`, { code: this.editor.getCode() });
      this.nameInput.value = name;
      this.setDirty(false);
      this.keepDraft();
      toast(`Saved ${name}`);
      await this.refresh();
    } catch (err) { toast(`Not saved: ${err.message}`, "error"); }
  }

  async rename() {
    const old = this.name();
    let to = window.prompt(`New name for ${old}`, old);
    if (!to || to === old) return;
    if (!to.endsWith(".py")) to += ".py";
    try {
      await api("POST", `/api/v1/scripts/${encodeURIComponent(old)}/rename`, { to });
      this.nameInput.value = to;
      this.keepDraft();
      toast(`Renamed to ${to}`);
      await this.refresh();
    } catch (err) { toast(`Not renamed: ${err.message}`, "error"); }
  }

  async remove() {
    const name = this.name();
    if (!window.confirm(`Delete ${name} from the device?`)) return;
    try { await api("DELETE", `/api/v1/scripts/${encodeURIComponent(name)}`); toast(`Deleted ${name}`); await this.refresh(); }
    catch (err) { toast(`Not deleted: ${err.message}`, "error"); }
  }

  download() {
    // A saved script downloads from the device; the editor's text downloads as it is.
    const blob = new Blob([this.editor.getCode()], { type: "text/x-python" });
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: this.name() });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}
