// Draws at most once per animation frame: views mark themselves dirty when
// data arrives and one requestAnimationFrame callback flushes them all, so a
// flood of messages costs one redraw per frame per tab, not one per message.

const dirty = new Set();
let scheduled = false;

/** Totals over every view since the page loaded (for the app's "data dropped" notice). */
export const totals = { received: 0, drawn: 0, coalesced: 0, dropped: 0, errors: 0 };

/** Ask for `view.flush()` in the next animation frame. */
export function schedule(view) {
  dirty.add(view);
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(runFrame);
  }
}

/** Forget a destroyed view. */
export function unschedule(view) {
  dirty.delete(view);
}

function runFrame() {
  scheduled = false;
  const views = [...dirty];
  dirty.clear();
  for (const view of views) {
    // One view's failure must neither escape nor stop the others from drawing.
    try {
      view.flush();
    } catch (error) {
      view.reportError(error);
    }
  }
}
