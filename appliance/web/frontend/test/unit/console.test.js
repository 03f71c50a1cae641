// The console's terminal rendering and the chart CSV rows (pure functions of src/app/).
import test from "node:test";
import assert from "node:assert/strict";
import { ansiRuns, overwriteCR, plainText } from "../../src/app/ansi.js";
import { csvRows } from "../../src/app/chart-export.js";

test("SGR colours become classes and reset ends them", () => {
  assert.deepEqual(ansiRuns("\x1b[31mred\x1b[0m plain"), [
    { text: "red", cls: "ansi-red", style: "" },
    { text: " plain", cls: "", style: "" },
  ]);
  assert.equal(ansiRuns("\x1b[1;92mx")[0].cls, "ansi-bright-green ansi-bold");
  assert.equal(ansiRuns("\x1b[38;2;1;2;3my")[0].style, "color:rgb(1,2,3)");
  assert.equal(ansiRuns("\x1b[38;5;196mz")[0].style, "color:rgb(255,0,0)");
});

test("a carriage return overwrites the line; plain text drops the codes", () => {
  assert.equal(overwriteCR(" 10%\r 50%\r100%"), "100%");
  assert.equal(plainText("\x1b[32mok\x1b[0m\rdone \x1b[2Kx"), "done x");
});

test("CSV rows follow the documented data formats", () => {
  assert.deepEqual(csvRows("base:graph:line", [{ x: 1, y: 2 }, { x: 1, y: 3 }], 0, ["a", "b"]), [[0, "a", 1, 2], [0, "b", 1, 3]]);
  assert.deepEqual(csvRows("base:graph:bar", { replace: [{ x: [0, 1], y: [5, 6] }] }, 2, ["v"]), [[2, "v", 0, 5], [2, "v", 1, 6]]);
  assert.deepEqual(csvRows("base:graph:line", { x: [0, 1], y: [[1, 2]] }, 1, []), [[1, "series 0", 0, 1], [1, "series 0", 1, 2]]);
  assert.deepEqual(csvRows("base:heatmap", [[1, 2], [3, 4]], 0, []), [[0, 0, 1, 2], [0, 1, 3, 4]]);
});
