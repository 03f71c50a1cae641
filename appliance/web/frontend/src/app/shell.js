// The page around the panes: light/dark theme, the keyboard shortcut list, page-wide
// keys, and the draggable split between the editor and the tabs.
import { byId } from "./dom.js";

const THEME_KEY = "micarray.theme";
const SPLIT_KEY = "micarray.split";
const MIN_SIDE_PX = 280;

/** The theme in use: the saved choice, else what the system prefers. */
export function currentTheme() {
  const saved = localStorage.getItem(THEME_KEY);
  if (saved === "light" || saved === "dark") return saved;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const button = byId("btn-theme");
  button.setAttribute("aria-pressed", String(theme === "dark"));
  button.textContent = theme === "dark" ? "☀ Light" : "☾ Dark";
  document.dispatchEvent(new CustomEvent("micarray:theme", { detail: theme }));
}

export function setupTheme() {
  applyTheme(currentTheme());
  byId("btn-theme").addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
  });
  // Follow the system while the user has not chosen.
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    if (!localStorage.getItem(THEME_KEY)) applyTheme(currentTheme());
  });
}

/** Ctrl+S, Ctrl+Enter, Ctrl+Shift+Enter, Ctrl+. anywhere; ? opens the shortcut list. */
export function setupKeys({ save, execute, another, stop }) {
  const dialog = byId("keys-dialog");
  byId("btn-keys").addEventListener("click", () => dialog.showModal());
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented) return;
    const mod = event.ctrlKey || event.metaKey;
    const typing = event.target.closest?.("input, textarea, select, .cm-editor");
    if (!mod) {
      if (event.key === "?" && !typing && !dialog.open) { event.preventDefault(); dialog.showModal(); }
      return;
    }
    if (event.key === "s") { event.preventDefault(); save(); }
    else if (event.key === "Enter" && event.shiftKey) { event.preventDefault(); another(); }
    else if (event.key === "Enter") { event.preventDefault(); execute(); }
    else if (event.key === ".") { event.preventDefault(); stop(); }
  });
}

/** Drag (or arrow keys on) the bar between the editor and the tabs; the split is remembered. */
export function setupSplitter(onResize) {
  const bar = byId("splitter");
  const space = byId("workspace");
  const apply = (fraction) => {
    const f = Math.max(0.15, Math.min(0.85, fraction));
    space.style.setProperty("--split", `${(f * 100).toFixed(1)}%`);
    localStorage.setItem(SPLIT_KEY, String(f));
    onResize();
  };
  const saved = Number(localStorage.getItem(SPLIT_KEY));
  if (saved > 0 && saved < 1) space.style.setProperty("--split", `${(saved * 100).toFixed(1)}%`);
  bar.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    bar.setPointerCapture(event.pointerId);
    const move = (e) => {
      const box = space.getBoundingClientRect();
      const x = Math.max(MIN_SIDE_PX, Math.min(box.width - MIN_SIDE_PX, e.clientX - box.left));
      apply(x / box.width);
    };
    const up = () => { bar.removeEventListener("pointermove", move); bar.removeEventListener("pointerup", up); };
    bar.addEventListener("pointermove", move);
    bar.addEventListener("pointerup", up);
  });
  bar.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const box = space.getBoundingClientRect();
    const left = byId("left").getBoundingClientRect().width;
    apply((left + (event.key === "ArrowLeft" ? -40 : 40)) / box.width);
  });
}
