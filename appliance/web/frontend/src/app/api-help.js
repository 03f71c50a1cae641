// Completion and hover help for `browserinterface` names in the editor. The names and
// their docstrings come from the device (/api/v1/help/names, read from the module
// itself), so the help always matches the module the scripts run against.
import { hoverTooltip } from "@codemirror/view";
import { api } from "./http.js";
import { h } from "./dom.js";

let names = [];
const loaded = api("GET", "/api/v1/help/names").then((list) => { names = list; }).catch((err) => console.warn("no browserinterface help", err));

/** The aliases the script imports the module as: `import browserinterface as bi` gives `bi`. */
function aliases(doc) {
  const found = new Set(["browserinterface"]);
  for (const m of doc.matchAll(/^\s*import\s+browserinterface\s+as\s+(\w+)/gm)) found.add(m[1]);
  return found;
}

function infoNode(entry) {
  return h("div", { class: "bi-doc" },
    h("code", { class: "bi-sig" }, `${entry.name}${entry.signature || ""}`),
    h("div", { class: "bi-text" }, entry.doc || "(no documentation)"));
}

/** A completion source: after `bi.` (any alias of the module), its public names. */
export async function completeBrowserinterface(context) {
  await loaded;
  const word = context.matchBefore(/[A-Za-z_]\w*\.\w*/);
  if (!word) return null;
  const [prefix] = word.text.split(".");
  if (!aliases(context.state.doc.toString()).has(prefix)) return null;
  return {
    from: word.from + prefix.length + 1,
    options: names.map((e) => ({
      label: e.name,
      type: e.kind === "variable" ? "variable" : e.kind === "class" ? "class" : "function",
      detail: e.signature || "",
      info: () => infoNode(e),
    })),
    validFor: /^\w*$/,
  };
}

/** Hovering over `bi.name` shows that name's signature and docstring. */
export const browserinterfaceHover = hoverTooltip((view, pos) => {
  const line = view.state.doc.lineAt(pos);
  const text = line.text;
  let start = pos - line.from;
  let end = start;
  while (start > 0 && /\w/.test(text[start - 1])) start -= 1;
  while (end < text.length && /\w/.test(text[end])) end += 1;
  const name = text.slice(start, end);
  const entry = names.find((e) => e.name === name);
  if (!entry || text[start - 1] !== ".") return null;
  const before = text.slice(0, start - 1).match(/(\w+)$/);
  if (!before || !aliases(view.state.doc.toString()).has(before[1])) return null;
  return { pos: line.from + start, end: line.from + end, above: true, create: () => ({ dom: infoNode(entry) }) };
});
