// The window title: unsaved mark, script name and device name, so several devices
// (or several windows of one) can be told apart in the browser's tab strip.
const parts = { dirty: false, script: "", device: "" };

/** Update some of the title's parts and redraw it. */
export function showTitle(change) {
  Object.assign(parts, change);
  const device = parts.device || "Microphone array";
  document.title = parts.script ? `${parts.dirty ? "● " : ""}${parts.script} — ${device}` : device;
}
