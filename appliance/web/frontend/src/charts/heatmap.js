// base:heatmap: a 2-D list of rows, the first row drawn at the top.
import { RasterView } from "./raster.js";
import { DataError, describe, isPlainObject, optionalNumber, toNumber } from "./params.js";

/** Rows of numbers -> {rows, columns, values (row-major Float64Array), low, high}; DataError otherwise. */
export function heatmapGrid(data) {
  const rows = isPlainObject(data) && Array.isArray(data.replace ?? data.data) ? (data.replace ?? data.data) : data;
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every(Array.isArray) || rows[0].length === 0) {
    throw new DataError(`data ${describe(data)} is not a 2-D list; send a list of rows, each a list of numbers`);
  }
  const columns = rows[0].length;
  const values = new Float64Array(rows.length * columns);
  let low = Infinity;
  let high = -Infinity;
  rows.forEach((row, r) => {
    if (row.length !== columns) throw new DataError(`row ${r} has ${row.length} values but row 0 has ${columns}; rows must be the same length`);
    row.forEach((value, c) => {
      const v = toNumber(value, `data[${r}][${c}]`);
      if (v < low) low = v;
      if (v > high) high = v;
      values[r * columns + c] = v;
    });
  });
  return { rows: rows.length, columns, values, low, high };
}

class HeatmapView extends RasterView {
  constructor(element, parameters) {
    super(element, optionalNumber(parameters, "min"), optionalNumber(parameters, "max"));
    this.grid = null;
  }

  ingest(data) {
    this.grid = heatmapGrid(data);
  }

  describeCell(column, row) {
    if (!this.grid || row >= this.grid.rows || column >= this.grid.columns) return null;
    return `row ${row}, column ${column}: ${formatValue(this.grid.values[row * this.grid.columns + column])}`;
  }

  render() {
    if (!this.grid) return;
    const { rows, columns, values, low, high } = this.grid;
    const reshaped = this.shape(columns, rows);
    const range = this.rangeFor(low, high);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++) this.paint(c, r, values[r * columns + c], range);
    }
    // Axes in cell units; the rows count down so row 0 is at the top.
    const axes = reshaped
      ? {
          xAxis: { type: "value", min: 0, max: columns, axisLine: { onZero: false }, splitLine: { show: false } },
          yAxis: { type: "value", min: 0, max: rows, inverse: true, splitLine: { show: false } },
        }
      : null;
    this.show(range, axes);
  }
}

/** A value for a readout: 4 significant digits. */
export function formatValue(value) {
  return Number.isInteger(value) ? String(value) : value.toPrecision(4);
}

export function heatmapType() {
  return (element, parameters) => new HeatmapView(element, parameters);
}
