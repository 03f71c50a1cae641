// base:heatmap: a 2-D list of rows, the first row drawn at the top. The x axis
// is in cell units, or in the script's own units (`xRange`, linear or `xLog`),
// such as Hz for frequency bands.
import { RasterView, unitParameter } from "./raster.js";
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

/** The x axis a heatmap's parameters ask for: {name, range: [left, right] | null, log}; DataError when unusable. */
export function heatmapXAxis(parameters) {
  const name = parameters.xName === undefined ? "" : String(parameters.xName);
  const log = parameters.xLog === true;
  const raw = parameters.xRange;
  if (raw === undefined || raw === null) return { name, range: null, log: false };
  const ok = Array.isArray(raw) && raw.length === 2 && raw.every((v) => typeof v === "number" && Number.isFinite(v));
  if (!ok || !(raw[1] > raw[0]) || (log && !(raw[0] > 0))) {
    throw new DataError(
      `parameter xRange is ${describe(raw)}; expected [left, right] with left < right, ` +
        `the x of the first column's left edge and of the last column's right edge${log ? " (above 0 for xLog)" : ""}`,
    );
  }
  return { name, range: raw, log };
}

/** The x of a column edge (0 .. columns) on the axis `axis` from heatmapXAxis. */
export function columnEdge(axis, edge, columns) {
  if (!axis.range) return edge;
  const [left, right] = axis.range;
  const t = edge / columns;
  return axis.log ? left * (right / left) ** t : left + (right - left) * t;
}

class HeatmapView extends RasterView {
  constructor(element, parameters) {
    super(element, optionalNumber(parameters, "min"), optionalNumber(parameters, "max"), unitParameter(parameters));
    this.grid = null;
    this.xAxis = heatmapXAxis(parameters);
    this.yName = parameters.yName === undefined ? "" : String(parameters.yName);
  }

  ingest(data) {
    this.grid = heatmapGrid(data);
  }

  describeCell(column, row) {
    if (!this.grid || row >= this.grid.rows || column >= this.grid.columns) return null;
    const { columns } = this.grid;
    const where = this.xAxis.range
      ? `${formatValue(columnEdge(this.xAxis, column, columns))} to ${formatValue(columnEdge(this.xAxis, column + 1, columns))}` +
        `${this.xAxis.name ? ` ${this.xAxis.name}` : ""}`
      : `column ${column}`;
    const value = formatValue(this.grid.values[row * columns + column]);
    return `${this.yName || "row"} ${row}, ${where}: ${value}${this.unit ? ` ${this.unit}` : ""}`;
  }

  render() {
    if (!this.grid) return;
    const { rows, columns, values, low, high } = this.grid;
    const reshaped = this.shape(columns, rows);
    const range = this.rangeFor(low, high);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++) this.paint(c, r, values[r * columns + c], range);
    }
    // Rows as bands, row 0 at the top; x as the parameters say.
    const axes = reshaped ? this.#axes(columns, rows) : null;
    this.show(range, axes);
  }

  #axes(columns, rows) {
    const { name, range, log } = this.xAxis;
    const named = { nameLocation: "middle", nameGap: 24 };
    const x = range
      ? { type: log ? "log" : "value", min: range[0], max: range[1], ...(log ? { logBase: 10 } : {}) }
      : { type: "value", min: 0, max: columns };
    return {
      xAxis: { ...x, name, ...named, axisLine: { onZero: false }, splitLine: { show: false } },
      // One band per row, labelled at its middle (row 0 at the top), as the raster is painted.
      yAxis: {
        type: "category",
        data: Array.from({ length: rows }, (_, r) => String(r)),
        boundaryGap: true,
        inverse: true,
        name: this.yName,
        ...named,
        nameGap: 36,
        axisTick: { alignWithLabel: true },
        splitLine: { show: false },
      },
    };
  }
}

/** A value for a readout: 4 significant digits. */
export function formatValue(value) {
  return Number.isInteger(value) ? String(value) : value.toPrecision(4);
}

export function heatmapType() {
  return (element, parameters) => new HeatmapView(element, parameters);
}
