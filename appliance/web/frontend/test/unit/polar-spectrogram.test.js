// The polar and spectrogram data models.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PolarStore } from "../../src/charts/polar-data.js";
import { ColumnRing } from "../../src/charts/spectrogram-data.js";

test("legend gives the angles; append rolls, replace sets", () => {
  const store = new PolarStore(1, { legend: { from: 0, to: 360, step: 90 } });
  assert.equal(store.size(), 4);
  store.ingest([{ append: [1, 2, 3, 4, 5] }]);
  assert.deepEqual(store.values[0], [2, 3, 4, 5]);
  assert.deepEqual(store.points(0), [[2, 0], [3, 90], [4, 180], [5, 270], [2, 360]]);
  store.ingest([{ replace: [9, 8] }]);
  assert.deepEqual(store.values[0], [9, 8]);
});

test("from..to is one full turn, so a half range closes too", () => {
  const store = new PolarStore(1, { legend: { from: 0, to: 180, step: 60 } });
  store.ingest([{ replace: [1, 2, 3] }]);
  assert.deepEqual(store.points(0), [[1, 0], [2, 60], [3, 120], [1, 180]]);
});

test("numPoints spreads over a full turn; without either the data sets the count", () => {
  assert.equal(new PolarStore(1, { numPoints: 8 }).angle(2), 90);
  const free = new PolarStore(1, {});
  free.ingest([{ replace: [1, 2, 3] }]);
  assert.equal(free.size(), 3);
  assert.equal(free.angle(1), 120);
});

test("bad polar input is named; a bad series leaves the others drawn", () => {
  assert.throws(() => new PolarStore(1, { legend: { from: 10, to: 0, step: 5 } }), /does not give angles/);
  const store = new PolarStore(2, { numPoints: 2 });
  assert.throws(() => store.ingest([{ append: 1 }, { push: 2 }]), {
    name: "PartialDataError",
    message: 'drew the other series; data[1] has keys ["push"]; expected "append" or "replace"',
  });
  assert.deepEqual(store.values, [[1], []]);
  assert.throws(() => store.ingest([{ replace: [1, 2, 3, 4] }]), {
    message: "data[0].replace has 4 values but the chart has 2 angles (3 closes the circle: the last value is at one full turn)",
  });
  assert.throws(() => store.ingest("x"), { name: "DataError" });
});

test("N+1 values close the circle: the last is drawn at one full turn", () => {
  const store = new PolarStore(1, { numPoints: 4 });
  store.ingest([{ replace: [1, 2, 3, 4, 1] }]);
  assert.deepEqual(store.values[0], [1, 2, 3, 4]);
  assert.deepEqual(store.points(0), [[1, 0], [2, 90], [3, 180], [4, 270], [1, 360]]);
  store.ingest([{ replace: [5, 6, 7, 8, 9] }]);
  assert.deepEqual(store.points(0).at(-1), [9, 360]);
  store.ingest([{ replace: [5, 6, 7, 8] }]);
  assert.deepEqual(store.points(0).at(-1), [5, 360]);
  const legend = new PolarStore(1, { legend: { from: 0, to: 360, step: 10 } });
  legend.ingest([{ replace: Array.from({ length: 37 }, (_, k) => k) }]);
  assert.equal(legend.values[0].length, 36);
});

test("the spectrogram ring keeps the last width columns, oldest first", () => {
  const ring = new ColumnRing(3, 2);
  for (let i = 0; i < 5; i++) ring.ingest([i, -i]);
  ring.ingest([[5, -5], [6, -6]]);
  const seen = [];
  ring.forEach((column, x) => seen.push([x, ...column]));
  assert.deepEqual(seen, [[0, 4, -4], [1, 5, -5], [2, 6, -6]]);
  assert.equal(ring.total, 7);
  assert.throws(() => ring.ingest([1, 2, 3]), { message: "data has 3 values; this spectrogram's height is 2 bins" });
});
