// The x/y data model: every message form, the limits, and all-or-nothing errors.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_MAX_POINTS, SeriesStore } from "../../src/charts/graph-data.js";

test("one point per series is appended", () => {
  const store = new SeriesStore(2);
  store.ingest([{ x: 1, y: 2 }, { x: 1, y: 3 }]);
  store.ingest([{ x: 2, y: 4 }]);
  assert.deepEqual(store.series, [[[1, 2], [2, 4]], [[1, 3]]]);
});

test("add appends lists or single points per series", () => {
  const store = new SeriesStore(2);
  store.ingest({ add: [{ x: [1, 2], y: [5, 6] }, { x: 7, y: 8 }] });
  assert.deepEqual(store.series, [[[1, 5], [2, 6]], [[7, 8]]]);
});

test("replace accepts x/y lists, point lists and bare y lists", () => {
  const store = new SeriesStore(3);
  store.ingest([{ x: 9, y: 9 }, { x: 9, y: 9 }, { x: 9, y: 9 }]);
  store.ingest({ replace: [{ x: [0, 1], y: [1, 2] }, [{ x: 5, y: 6 }], [7, 8]] });
  assert.deepEqual(store.series, [[[0, 1], [1, 2]], [[5, 6]], [[0, 7], [1, 8]]]);
});

test("x with y lists redraws every series; a flat y is the first series", () => {
  const store = new SeriesStore(2);
  store.ingest({ x: [0, 1], y: [[1, 2], [3, 4]] });
  assert.deepEqual(store.series, [[[0, 1], [1, 2]], [[0, 3], [1, 4]]]);
  store.ingest({ x: [5], y: [6] });
  assert.deepEqual(store.series, [[[5, 6]], []]);
});

test("xLimitNb keeps the last points and xLimitDistance an x span", () => {
  const store = new SeriesStore(1, { limitNb: 3 });
  for (let i = 0; i < 10; i++) store.ingest([{ x: i, y: i }]);
  assert.deepEqual(store.series[0].map((p) => p[0]), [7, 8, 9]);
  const span = new SeriesStore(1, { limitDistance: 2 });
  span.ingest({ add: [{ x: [0, 1, 2, 3, 4], y: [0, 0, 0, 0, 0] }] });
  assert.deepEqual(span.series[0].map((p) => p[0]), [2, 3, 4]);
});

test("xLimitNb keeps the last N distinct x values over all series, as easy-dsp did", () => {
  const store = new SeriesStore(2, { limitNb: 3 });
  store.ingest([{ x: 0, y: 0 }, { x: 0, y: 0 }]); // placeholders sent once at start
  for (let i = 1; i <= 6; i++) store.ingest([{ x: i, y: i }]); // only the first series goes on
  assert.deepEqual(store.series.map((s) => s.map((p) => p[0])), [[4, 5, 6], []]);
  const blocks = new SeriesStore(1, { limitNb: 4 });
  blocks.ingest({ add: [{ x: [0, 1, 2], y: [0, 0, 0] }] });
  blocks.ingest({ add: [{ x: [3, 4, 5], y: [0, 0, 0] }] });
  assert.deepEqual(blocks.series[0].map((p) => p[0]), [2, 3, 4, 5]);
  blocks.ingest({ replace: [{ x: [9], y: [1] }] });
  assert.deepEqual(blocks.series[0], [[9, 1]]);
});

test("a malformed series is left out and the others are applied", () => {
  const store = new SeriesStore(3);
  assert.throws(() => store.ingest([{ x: 1, y: 1 }, { x: 1, y: "high" }, { x: 1, y: 3 }]), {
    name: "PartialDataError",
    message: 'drew the other series; data[1].y is "high"; expected a finite number',
  });
  assert.deepEqual(store.sizes(), [1, 0, 1]);
  assert.throws(() => store.ingest({ x: [1, 2], y: [[1, 2], [1], [5, 6]] }), /drew the other series; y\[1\]: 1 y values for 2 x values/);
  assert.deepEqual(store.sizes(), [2, 0, 2]);
});

test("without xLimitNb a series still stops growing at DEFAULT_MAX_POINTS", () => {
  const store = new SeriesStore(1);
  const n = DEFAULT_MAX_POINTS + 10;
  store.ingest({ add: [{ x: Array.from({ length: n }, (_, i) => i), y: new Array(n).fill(0) }] });
  assert.equal(store.series[0].length, DEFAULT_MAX_POINTS);
  assert.equal(store.series[0][0][0], 10);
});

test("string x values make the axis categorical", () => {
  const store = new SeriesStore(1);
  store.ingest([{ x: "mon", y: 1 }]);
  assert.equal(store.categorical, true);
});

test("a bad message changes nothing and names the bad value", () => {
  const store = new SeriesStore(2);
  store.ingest([{ x: 1, y: 1 }, { x: 1, y: 1 }]);
  assert.throws(() => store.ingest([{ x: 2, y: null }, { x: 2, y: null }]), {
    message: "data[0].y is null; expected a finite number; data[1].y is null; expected a finite number",
  });
  assert.throws(() => store.ingest({ x: [1, 2], y: [[1]] }), { message: "y[0]: 1 y values for 2 x values; the lists must be the same length" });
  assert.throws(() => store.ingest([{}, {}, {}]), { message: "data has 3 entries but the chart has 2 series" });
  assert.throws(() => store.ingest(42), /data 42 is not understood/);
  assert.deepEqual(store.sizes(), [1, 1]);
});

test("xLimitNb drops an old x value that sits behind a newer one too", () => {
  const store = new SeriesStore(1, { limitNb: 2 });
  for (const x of [5, 1, 5, 7]) store.ingest([{ x, y: x }]);
  // 5 was seen again after 1, so 1 is the oldest x and goes, though a 5 is before it.
  assert.deepEqual(store.series[0], [[5, 5], [5, 5], [7, 7]]);
  store.ingest([{ x: 8, y: 8 }]);
  assert.deepEqual(store.series[0], [[7, 7], [8, 8]]);
});

test("xLimitNb keeps counting right after xLimitDistance removed points", () => {
  const store = new SeriesStore(1, { limitNb: 3, limitDistance: 2 });
  for (let x = 0; x < 10; x++) store.ingest([{ x, y: x }]);
  assert.deepEqual(store.series[0].map((p) => p[0]), [7, 8, 9]);
});

test("xLimitNb gives the same points read once after many messages as read after each", () => {
  const messages = [];
  for (let i = 0; i < 400; i++) {
    const x = i % 7 === 0 ? i - 3 : i; // some x values come again, out of order
    messages.push(i % 5 === 0 ? { add: [{ x: [x, x + 1], y: [i, i] }, { x, y: -i }] } : [{ x, y: i }, null]);
  }
  const eager = new SeriesStore(2, { limitNb: 25, limitDistance: 300 });
  const lazy = new SeriesStore(2, { limitNb: 25, limitDistance: 300 });
  for (const message of messages) {
    eager.ingest(message);
    eager.sizes(); // reading applies the limit after each message
    lazy.ingest(message);
    assert.ok(lazy.recentX.size <= 2 * 25 + 2, "the x values kept stay bounded between reads");
  }
  assert.deepEqual(lazy.series, eager.series);
});
