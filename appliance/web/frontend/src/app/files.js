// The project's files (the Files tab) and the selected run's kept outputs (under the console).
//
// A script NAME.py lives in project NAME: its helpers, packages and data files sit
// beside it, and a run started from the editor works in that folder. Files are
// uploaded by drag and drop or the pickers (several files and whole folders at once),
// each streamed with its own progress bar after the device said it fits its quota.
import { api } from "./http.js";
import { h, byId, formatBytes, toast } from "./dom.js";
import "./workspace.css";

const enc = (path) => path.split("/").map(encodeURIComponent).join("/");

function xsrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** PUT one file with progress; resolves to the JSON answer, rejects with the device's words. */
function putFile(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.setRequestHeader("X-XSRFToken", xsrfToken());
    xhr.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = null; }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new Error(body?.error || `upload failed: ${xhr.status}`));
    };
    xhr.onerror = () => reject(new Error("the connection broke during the upload"));
    xhr.send(file);
  });
}

/** Every file in a dropped folder (DataTransfer entries), with its path inside the drop. */
async function entryFiles(entry, prefix = "") {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    return [{ path: prefix + entry.name, file }];
  }
  const reader = entry.createReader();
  const children = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    children.push(...batch);
  }
  const nested = await Promise.all(children.map((child) => entryFiles(child, `${prefix}${entry.name}/`)));
  return nested.flat();
}

export class Files {
  constructor(conn, scripts, runs) {
    this.conn = conn;
    this.scripts = scripts;
    this.runs = runs;
    this.pane = byId("pane-files");
    this.outputsEl = byId("run-outputs");
    this.build();
    byId("script-name").addEventListener("change", () => this.refresh());
    byId("script-list").addEventListener("change", () => setTimeout(() => this.refresh(), 300));
    byId("btn-save").addEventListener("click", () => setTimeout(() => this.refresh(), 300));
    document.querySelector('[data-tab="files"]')?.addEventListener("click", () => this.refresh());
    byId("run-select").addEventListener("change", () => this.showOutputs());
    // run_kept: the run's record and output files are in its history now.
    for (const kind of ["welcome", "run_started", "run_kept"]) {
      conn.on(kind, () => setTimeout(() => this.showOutputs(), 0));
    }
  }

  /** The project of the editor's script: NAME for NAME.py. */
  project() {
    return this.scripts.name().replace(/\.py$/, "");
  }

  /** The project a run from the editor works in: the script's, once it exists on the device. */
  async runProject() {
    const project = this.project();
    try {
      const projects = await api("GET", "/api/v1/projects");
      return projects.some((p) => p.name === project) ? project : null;
    } catch {
      return null; // the run starts in its own directory, as an unsaved script does
    }
  }

  build() {
    this.title = h("b", {}, "");
    this.zip = h("a", { id: "files-zip", class: "button" }, "Download project (.zip)");
    this.fileInput = h("input", { type: "file", multiple: true, id: "files-pick", hidden: true });
    this.dirInput = h("input", { type: "file", multiple: true, webkitdirectory: true, id: "files-pick-folder", hidden: true });
    this.fileInput.addEventListener("change", () => this.uploadList([...this.fileInput.files].map((file) => ({ path: file.name, file }))));
    this.dirInput.addEventListener("change", () => this.uploadList([...this.dirInput.files].map((file) => ({ path: file.webkitRelativePath || file.name, file }))));
    this.table = h("table", { class: "files", id: "files-table" });
    this.progress = h("div", { id: "upload-progress", class: "upload-progress" });
    this.drop = h("div", { id: "files-drop", class: "drop-zone" }, "Drop files or folders here to upload them into the project");
    this.drop.addEventListener("dragover", (event) => { event.preventDefault(); this.drop.classList.add("over"); });
    this.drop.addEventListener("dragleave", () => this.drop.classList.remove("over"));
    this.drop.addEventListener("drop", (event) => this.dropped(event));
    this.pane.append(
      h("h3", {}, "Project ", this.title),
      h("p", { class: "muted" }, "A run started from the editor works in this folder: import its modules, open its files by name. Write what you want kept to os.environ[\"BI_OUTPUT_DIR\"]."),
      h("div", { class: "toolbar" },
        h("button", { id: "btn-file-new", onclick: () => this.newFile() }, "New file"),
        h("button", { id: "btn-folder-new", onclick: () => this.newFolder() }, "New folder"),
        h("button", { id: "btn-upload", onclick: () => this.fileInput.click() }, "Upload files…"),
        h("button", { id: "btn-upload-folder", onclick: () => this.dirInput.click() }, "Upload a folder…"),
        this.zip, this.fileInput, this.dirInput),
      this.drop, this.progress, this.table);
  }

  base() {
    return `/api/v1/projects/${encodeURIComponent(this.project())}`;
  }

  async refresh() {
    const project = this.project();
    this.title.textContent = project;
    this.zip.href = `${this.base()}/zip`;
    let files = [];
    try {
      const projects = await api("GET", "/api/v1/projects");
      if (projects.some((p) => p.name === project)) files = await api("GET", `${this.base()}/files`);
    } catch (err) {
      toast(`Could not list the project's files: ${err.message}`, "error");
    }
    if (!files.length) {
      this.table.replaceChildren(h("tr", {}, h("td", { class: "muted" }, "No files yet: save the script or upload files to make its project.")));
      return;
    }
    const rows = files.map((f) => h("tr", { dataset: { path: f.path } },
      h("td", { class: "file-path" }, f.path),
      h("td", { class: "num" }, formatBytes(f.size)),
      h("td", { class: "muted" }, new Date(f.modified * 1000).toLocaleString()),
      h("td", {},
        h("a", { href: `${this.base()}/files/${enc(f.path)}`, download: f.path.split("/").pop(), class: "file-download" }, "Download"), " ",
        h("button", { class: "file-rename", onclick: () => this.rename(f.path) }, "Rename"), " ",
        h("button", { class: "file-delete", onclick: () => this.remove(f.path) }, "Delete"))));
    this.table.replaceChildren(h("tr", {}, h("th", {}, "File"), h("th", {}, "Size"), h("th", {}, "Changed"), h("th", {}, "")), ...rows);
  }

  async dropped(event) {
    event.preventDefault();
    this.drop.classList.remove("over");
    const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
    const list = entries.length
      ? (await Promise.all(entries.map((entry) => entryFiles(entry)))).flat()
      : [...event.dataTransfer.files].map((file) => ({ path: file.name, file }));
    await this.uploadList(list);
  }

  /** Upload [{path, file}] one after another, each with its bar; refusals are shown and skipped. */
  async uploadList(list) {
    let done = 0;
    // The bars of an earlier batch that all went in are cleared; refusals stay until then too.
    this.progress.replaceChildren();
    for (const { path, file } of list) {
      const bar = h("progress", { max: 1, value: 0 });
      const note = h("span", { class: "muted" }, "checking…");
      const row = h("div", { class: "upload", dataset: { path } }, h("span", {}, path), " ", bar, " ", note);
      this.progress.append(row);
      try {
        await api("POST", `${this.base()}/check`, { path, size: file.size, create: true });
        note.textContent = formatBytes(file.size);
        await putFile(`${this.base()}/files/${enc(path)}?create=1`, file, (fraction) => { bar.value = fraction; });
        bar.value = 1;
        row.classList.add("done");
        note.textContent = `${formatBytes(file.size)} uploaded`;
        done += 1;
      } catch (err) {
        row.classList.add("refused");
        note.textContent = err.message;
        toast(`${path}: ${err.message}`, "error");
      }
    }
    this.fileInput.value = "";
    this.dirInput.value = "";
    if (done) toast(`${done} of ${list.length} files uploaded`);
    await this.refresh();
  }

  async newFile() {
    const path = prompt("New file (a path inside the project, e.g. helpers/filters.py):");
    if (!path) return;
    try { await putFile(`${this.base()}/files/${enc(path)}?create=1`, new Blob([]), () => {}); } catch (err) { toast(err.message, "error"); }
    await this.refresh();
  }

  async newFolder() {
    const path = prompt("New folder:");
    if (!path) return;
    try { await api("POST", `${this.base()}/mkdir`, { path }); } catch (err) { toast(err.message, "error"); }
    await this.refresh();
  }

  async rename(path) {
    const to = prompt(`Rename or move ${path} to:`, path);
    if (!to || to === path) return;
    try { await api("POST", `${this.base()}/rename`, { from: path, to }); } catch (err) { toast(err.message, "error"); }
    await this.refresh();
  }

  async remove(path) {
    if (!confirm(`Delete ${path} from the project?`)) return;
    try { await api("DELETE", `${this.base()}/files/${enc(path)}`); } catch (err) { toast(err.message, "error"); }
    await this.refresh();
  }

  /** The kept outputs and console log of the run selected in the console, under it. */
  async showOutputs() {
    const id = this.runs.selected;
    if (!id || id.startsWith("remote-")) { this.outputsEl.replaceChildren(); return; }
    let kept = [];
    try { kept = await api("GET", "/api/v1/runs"); } catch { return; }
    const run = kept.find((r) => r.id === id);
    if (!run || run.state === "running" || this.runs.selected !== id) { this.outputsEl.replaceChildren(); return; }
    const links = run.files.map((f) => h("li", {},
      h("a", { href: `/api/v1/runs/${id}/files/${enc(f.path)}`, download: f.path.split("/").pop(), class: "output-file" }, f.path),
      ` ${formatBytes(f.size)}`));
    this.outputsEl.replaceChildren(
      h("b", {}, "Kept from this run: "),
      h("a", { href: `/api/v1/runs/${id}/console.log`, download: `${id}-console.log` }, "console log"),
      " ",
      h("button", { class: "run-forget", onclick: () => this.forget(id) }, "Delete run"),
      links.length ? h("ul", { class: "outputs" }, links) : h("span", { class: "muted" }, " · no output files"));
  }

  async forget(id) {
    if (!confirm("Delete this run's console log and output files?")) return;
    try { await api("DELETE", `/api/v1/runs/${id}`); } catch (err) { toast(err.message, "error"); }
    await this.showOutputs();
  }
}
