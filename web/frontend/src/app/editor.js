// The code editor: CodeMirror 6 with Python, line numbers, brackets, undo and our keys.
import { EditorView, basicSetup } from "codemirror";
import { keymap } from "@codemirror/view";
import { Prec } from "@codemirror/state";
import { indentUnit } from "@codemirror/language";
import { python } from "@codemirror/lang-python";

export function createEditor(parent, { onExecute, onSave, onChange }) {
  const keys = Prec.highest(keymap.of([
    { key: "Mod-Enter", run: () => { onExecute(); return true; }, preventDefault: true },
    { key: "Mod-s", run: () => { onSave(); return true; }, preventDefault: true },
  ]));
  const view = new EditorView({
    parent,
    doc: "",
    extensions: [
      keys,
      basicSetup,
      python(),
      indentUnit.of("    "),
      EditorView.updateListener.of((update) => { if (update.docChanged) onChange(); }),
    ],
  });
  return {
    view,
    getCode: () => view.state.doc.toString(),
    setCode(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text }, selection: { anchor: 0 } });
    },
    /** Put the cursor at the start of line n (1-based) and show it. */
    gotoLine(n) {
      const doc = view.state.doc;
      const line = doc.line(Math.max(1, Math.min(n, doc.lines)));
      view.dispatch({ selection: { anchor: line.from, head: line.to }, scrollIntoView: true });
      view.focus();
    },
    cursorLine: () => view.state.doc.lineAt(view.state.selection.main.head).number,
    focus: () => view.focus(),
  };
}
