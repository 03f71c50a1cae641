// The code editor: CodeMirror 6 with Python, line numbers, brackets, undo and our keys.
// (The setup is assembled from the @codemirror/* packages directly.)
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter,
  drawSelection, highlightSpecialChars, dropCursor,
} from "@codemirror/view";
import { EditorState, Prec } from "@codemirror/state";
import {
  indentUnit, bracketMatching, indentOnInput, syntaxHighlighting, defaultHighlightStyle, foldGutter, foldKeymap,
} from "@codemirror/language";
import { history, historyKeymap, defaultKeymap, indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";

const setup = [
  lineNumbers(),
  highlightActiveLineGutter(),
  highlightSpecialChars(),
  history(),
  foldGutter(),
  drawSelection(),
  dropCursor(),
  EditorState.allowMultipleSelections.of(true),
  indentOnInput(),
  syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
  bracketMatching(),
  highlightActiveLine(),
  keymap.of([...defaultKeymap, ...historyKeymap, ...foldKeymap, indentWithTab]),
];

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
      setup,
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
