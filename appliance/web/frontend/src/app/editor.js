// The code editor: CodeMirror 6 with Python, line numbers, brackets (matched and closed),
// undo, search and replace, completion and hover help for browserinterface, and our keys.
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
import { search, searchKeymap, highlightSelectionMatches } from "@codemirror/search";
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from "@codemirror/autocomplete";
import { python, pythonLanguage } from "@codemirror/lang-python";
import { browserinterfaceHover, completeBrowserinterface } from "./api-help.js";

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
  closeBrackets(),
  autocompletion(),
  search({ top: true }),
  highlightSelectionMatches(),
  highlightActiveLine(),
  keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...foldKeymap, ...completionKeymap, indentWithTab]),
];

export function createEditor(parent, { execute, another, stop, save, onChange }) {
  const keys = Prec.highest(keymap.of([
    { key: "Shift-Mod-Enter", run: () => { another(); return true; }, preventDefault: true },
    { key: "Mod-Enter", run: () => { execute(); return true; }, preventDefault: true },
    { key: "Mod-.", run: () => { stop(); return true; }, preventDefault: true },
    { key: "Mod-s", run: () => { save(); return true; }, preventDefault: true },
  ]));
  const view = new EditorView({
    parent,
    doc: "",
    extensions: [
      keys,
      setup,
      python(),
      pythonLanguage.data.of({ autocomplete: completeBrowserinterface }),
      browserinterfaceHover,
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
