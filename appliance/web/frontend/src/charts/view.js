// The wrapper every tab's chart lives in: it queues data messages, applies
// them once per animation frame, counts what was coalesced or dropped, and
// turns any failure (bad data, a broken custom type) into a readable message
// in the tab instead of an uncaught exception.
import { DataError, PartialDataError } from "./params.js";
import { schedule, totals, unschedule } from "./scheduler.js";

/** Messages kept while the page cannot draw (hidden tab); older ones are dropped first. */
export const MAX_PENDING = 5000;

/**
 * A hidden built-in chart takes in its data this often, on a timer: asking for an
 * animation frame per message made the page draw a frame (style, layout, paint)
 * 30 times a second for a chart nobody sees, which took the user's keys' time. Often
 * enough that one intake stays a short task (a flood's 500 ms of messages took 20 ms).
 */
export const HIDDEN_INGEST_MS = 100;

const ROOT_STYLE = "position:relative;width:100%;height:100%;min-height:240px;";
const PLOT_STYLE = "position:absolute;inset:0;";
const BANNER_STYLE =
  "position:absolute;left:8px;right:8px;top:8px;z-index:2;display:none;padding:6px 28px 6px 10px;" +
  "background:#fdecea;color:#611a15;border:1px solid #f5c2c0;border-radius:4px;font:13px system-ui,sans-serif;";

export class HandlerView {
  /**
   * `factory` null means the type is not registered yet: the view keeps the
   * data, says so, and starts when `waitForType(type, callback)` calls back.
   */
  constructor(container, handlerType, parameters, factory, waitForType) {
    this.type = handlerType;
    this.parameters = parameters ?? {};
    this.counts = { received: 0, drawn: 0, coalesced: 0, dropped: 0, errors: 0, lastError: null };
    this.pending = [];
    this.needsResize = false;
    this.stale = false;
    this.destroyed = false;
    this.hiddenTimer = 0;
    this.root = document.createElement("div");
    this.root.className = "micarray-handler";
    this.root.style.cssText = ROOT_STYLE;
    this.plot = document.createElement("div");
    this.plot.className = "micarray-handler-plot";
    this.plot.style.cssText = PLOT_STYLE;
    this.banner = makeBanner();
    this.root.append(this.plot, this.banner);
    container.append(this.root);
    this.impl = null;
    this.waiting = factory === null;
    this.stopWaiting = null;
    if (this.waiting) {
      this.#fail(new Error(waitForType.message), "waiting for this type");
      this.stopWaiting = waitForType(handlerType, (registered) => this.#start(registered));
    } else this.#start(factory);
    // Whether the plot has a size, kept from the observer: reading clientWidth in
    // every frame would force a layout of the page in the middle of the frame.
    this.visible = false;
    this.observer = new ResizeObserver((entries) => {
      const box = entries[entries.length - 1].contentRect;
      this.visible = box.width > 0 && box.height > 0;
      this.resize();
    });
    this.observer.observe(this.root);
  }

  #start(factory) {
    if (this.destroyed) return;
    this.stopWaiting?.();
    this.stopWaiting = null;
    if (this.waiting) {
      this.waiting = false;
      this.banner.style.display = "none";
      this.counts.errors = 0;
      this.counts.lastError = null;
    }
    try {
      this.impl = factory(this.plot, this.parameters);
      if (!this.impl || typeof this.impl !== "object") throw new DataError(`the factory of ${this.type} returned no view`);
    } catch (error) {
      this.impl = null;
      this.pending = [];
      this.#fail(error, "cannot create this chart");
      return;
    }
    this.stale = true;
    this.needsResize = true;
    schedule(this);
  }

  /** Queue one `send_data` message; it is drawn in the next animation frame. */
  update(data) {
    if (this.destroyed) return;
    this.counts.received++;
    totals.received++;
    if (!this.impl && !this.waiting) return;
    this.pending.push(data);
    if (this.pending.length > MAX_PENDING) {
      this.pending.shift();
      this.counts.dropped++;
      totals.dropped++;
    }
    if (this.visible || typeof this.impl?.ingest !== "function") schedule(this);
    else if (!this.hiddenTimer) {
      this.hiddenTimer = setTimeout(() => {
        this.hiddenTimer = 0;
        this.flush();
      }, HIDDEN_INGEST_MS);
    }
  }

  /** Redraw at the container's new size (also done automatically when it changes). */
  resize() {
    if (this.destroyed) return;
    this.needsResize = true;
    schedule(this);
  }

  /** Counters for this view: messages received, frames drawn, messages coalesced/dropped, bad messages. */
  stats() {
    return { ...this.counts, pending: this.pending.length };
  }

  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    unschedule(this);
    clearTimeout(this.hiddenTimer);
    this.stopWaiting?.();
    this.observer.disconnect();
    this.pending = [];
    try {
      this.impl?.destroy?.();
    } finally {
      this.root.remove();
    }
  }

  /** Show an unexpected failure in the tab (the scheduler calls this). */
  reportError(error) {
    this.#fail(error, "cannot draw");
  }

  /** Called by the scheduler once per animation frame. */
  flush() {
    if (this.destroyed || !this.impl) return;
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 1) {
      this.counts.coalesced += batch.length - 1;
      totals.coalesced += batch.length - 1;
    }
    if (typeof this.impl.ingest === "function") this.#flushBuiltin(batch);
    else this.#flushCustom(batch);
  }

  #flushBuiltin(batch) {
    for (const data of batch) {
      try {
        this.impl.ingest(data);
        this.stale = true;
      } catch (error) {
        // Some series were malformed: the rest changed and is drawn; the problem is shown once.
        if (error instanceof PartialDataError && error.applied) this.stale = true;
        this.#fail(error, "bad data");
      }
    }
    const visible = this.visible;
    if (this.needsResize && visible) {
      this.needsResize = false;
      this.#guard(() => this.impl.resize(), "cannot resize");
    }
    if (this.stale && visible) {
      this.stale = false;
      if (this.#guard(() => this.impl.render(), "cannot draw")) {
        this.counts.drawn++;
        totals.drawn++;
      }
    }
  }

  // Types registered by users only have update(data) (or newData(data), the older name).
  #flushCustom(batch) {
    const apply = this.impl.update ?? this.impl.newData;
    for (const data of batch) this.#guard(() => apply.call(this.impl, data), "bad data");
    if (batch.length > 0) {
      this.counts.drawn++;
      totals.drawn++;
    }
    if (this.needsResize) {
      this.needsResize = false;
      if (typeof this.impl.resize === "function") this.#guard(() => this.impl.resize(), "cannot resize");
    }
  }

  #guard(action, what) {
    try {
      action();
      return true;
    } catch (error) {
      this.#fail(error, what);
      return false;
    }
  }

  #fail(error, what) {
    this.counts.errors++;
    totals.errors++;
    const reason = error instanceof Error ? error.message : String(error);
    this.counts.lastError = `${what} (${this.type}): ${reason}`;
    const repeats = this.counts.errors > 1 ? ` [${this.counts.errors} problems so far]` : "";
    this.banner.firstChild.textContent = this.counts.lastError + repeats;
    this.banner.style.display = "block";
  }
}

function makeBanner() {
  const banner = document.createElement("div");
  banner.className = "micarray-handler-error";
  banner.setAttribute("role", "alert");
  banner.style.cssText = BANNER_STYLE;
  const text = document.createElement("span");
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "\u00d7";
  close.title = "Dismiss";
  close.style.cssText = "position:absolute;right:4px;top:2px;border:0;background:none;font-size:16px;cursor:pointer;";
  close.addEventListener("click", () => {
    banner.style.display = "none";
  });
  banner.append(text, close);
  return banner;
}
