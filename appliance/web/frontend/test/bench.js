/* global harness -- the chart harness page defines it (tests/chart_harness.py) */
// Benchmark helpers for bench/web_charts.py, loaded by the harness page.
// Four tabs of different types are fed JSON text messages (parsed here, as
// the app parses WebSocket frames) at a fixed rate; the page's frames per
// second and each view's counters tell whether it kept up.

const TABS = {
  line: {
    type: "base:graph:line",
    parameters: { xName: "n", series: ["a", "b"], xLimitNb: 300 },
    message: (i) => [{ x: i, y: Math.sin(i / 10) }, { x: i, y: Math.cos(i / 7) }],
  },
  polar: {
    type: "base:polar:area",
    parameters: { title: "direction", series: ["power"], numPoints: 72, rmin: 0, rmax: 2 },
    message: (i) => [{ replace: Array.from({ length: 72 }, (_, k) => 1 + Math.cos((k * 5 * Math.PI) / 180 - i / 20)) }],
  },
  heatmap: {
    type: "base:heatmap",
    parameters: { min: -1, max: 1 },
    message: (i) => Array.from({ length: 32 }, (_, r) => Array.from({ length: 32 }, (_, c) => Math.sin((r + i) / 5) * Math.cos(c / 6))),
  },
  spectrogram: {
    type: "base:spectrogram",
    parameters: { width: 200, height: 128, min: -1, max: 1, delta_freq: 62.5 },
    message: (i) => Array.from({ length: 128 }, (_, b) => Math.sin(b / 9 + i / 15)),
  },
};

const POOL = 64; // distinct messages per tab, cycled

window.bench = {
  tabs: Object.keys(TABS),

  /** Four visible 440x300 tabs, each given one message to start from. */
  setup() {
    document.body.style.cssText = "margin:0;display:flex;flex-wrap:wrap;";
    this.pool = {};
    for (const [id, tab] of Object.entries(TABS)) {
      harness.create(id, tab.type, tab.parameters, { width: 440, height: 300 });
      this.pool[id] = Array.from({ length: POOL }, (_, i) => JSON.stringify(tab.message(i)));
      harness.feed(id, [JSON.parse(this.pool[id][0])]);
    }
    return harness.frames(3);
  },

  /**
   * Feed `rate` messages per second to every tab for `seconds`.
   * mode "frames": through view.update (applied once per animation frame);
   * mode "each": the peer, drawing every message as it arrives.
   */
  async run(rate, seconds, mode) {
    const ids = this.tabs;
    const before = Object.fromEntries(ids.map((id) => [id, harness.stats(id)]));
    let frames = 0;
    let counting = true;
    const count = () => {
      frames++;
      if (counting) requestAnimationFrame(count);
    };
    requestAnimationFrame(count);
    const total = Math.round(rate * seconds);
    const start = performance.now();
    let sent = 0;
    await new Promise((resolve) => {
      const tick = () => {
        const elapsed = (performance.now() - start) / 1000;
        const due = Math.min(total, Math.floor(elapsed * rate));
        for (; sent < due; sent++) {
          for (const id of ids) {
            const data = JSON.parse(this.pool[id][sent % POOL]);
            const view = harness.view(id);
            if (mode === "each") {
              view.impl.ingest(data);
              view.impl.render();
            } else view.update(data);
          }
        }
        if (sent >= total) resolve();
        else setTimeout(tick, 2);
      };
      tick();
    });
    await harness.frames(2);
    const elapsed = (performance.now() - start) / 1000;
    counting = false;
    const after = Object.fromEntries(ids.map((id) => [id, harness.stats(id)]));
    const delta = (key) => Object.fromEntries(ids.map((id) => [id, after[id][key] - before[id][key]]));
    // The peer draws every message itself, outside the views' counters.
    const drawn = mode === "each" ? Object.fromEntries(ids.map((id) => [id, sent])) : delta("drawn");
    return { rate, seconds, elapsed, fps: frames / elapsed, sent, drawn, dropped: delta("dropped"), errors: delta("errors") };
  },
};
