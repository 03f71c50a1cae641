// A run's own source, read-only, opened at a traceback's line: the editor may hold
// other code by now, and a run from a terminal never was in the editor.
import { EditorView, lineNumbers, highlightActiveLine } from "@codemirror/view";
import { EditorState } from "@codemirror/state";
import { syntaxHighlighting, defaultHighlightStyle } from "@codemirror/language";
import { python } from "@codemirror/lang-python";
import { byId } from "./dom.js";

let view = null;

/** Show ``source`` ({name, code, origin}) with line ``line`` selected. */
export function showSource(source, line, label) {
  const dialog = byId("source-dialog");
  byId("source-title").textContent = `${label} — read-only, line ${line}`;
  const state = EditorState.create({
    doc: source.code,
    extensions: [lineNumbers(), highlightActiveLine(), python(), syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
      EditorState.readOnly.of(true), EditorView.editable.of(false)],
  });
  if (view) view.setState(state);
  else view = new EditorView({ state, parent: byId("source-view") });
  if (!dialog.open) dialog.showModal();
  const doc = view.state.doc;
  const target = doc.line(Math.max(1, Math.min(line, doc.lines)));
  view.dispatch({ selection: { anchor: target.from, head: target.to }, effects: EditorView.scrollIntoView(target.from, { y: "center" }) });
}
