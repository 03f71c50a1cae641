// base:heatmap: a 2-D list of rows, the first row drawn at the top.
import { EChartsView } from "./base.js";
import { BASE_OPTION, HEAT_COLORS } from "./echarts.js";
import { DataError, describe, isPlainObject, optionalNumber, toNumber } from "./params.js";

/** Rows of numbers -> ECharts cells [column, row, value]; throws DataError on anything else. */
export function heatmapCells(data) {
  const rows = isPlainObject(data) && Array.isArray(data.replace ?? data.data) ? (data.replace ?? data.data) : data;
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every(Array.isArray)) {
    throw new DataError(`data ${describe(data)} is not a 2-D list; send a list of rows, each a list of numbers`);
  }
  const width = rows[0].length;
  const cells = [];
  let low = Infinity;
  let high = -Infinity;
  rows.forEach((row, r) => {
    if (row.length !== width) throw new DataError(`row ${r} has ${row.length} values but row 0 has ${width}; rows must be the same length`);
    row.forEach((value, c) => {
      const v = toNumber(value, `data[${r}][${c}]`);
      if (v < low) low = v;
      if (v > high) high = v;
      cells.push([c, r, v]);
    });
  });
  return { cells, rows: rows.length, columns: width, low, high };
}

class HeatmapView extends EChartsView {
  constructor(element, parameters) {
    super(element);
    this.min = optionalNumber(parameters, "min");
    this.max = optionalNumber(parameters, "max");
    this.grid = null;
    this.shape = "";
  }

  ingest(data) {
    this.grid = heatmapCells(data);
  }

  render() {
    if (!this.grid) return;
    const { chart, fresh } = this.ensureChart();
    const { cells, rows, columns, low, high } = this.grid;
    const shape = `${rows}x${columns}`;
    const range = { min: this.min ?? low, max: this.max ?? (high > low ? high : low + 1) };
    if (fresh || shape !== this.shape) {
      this.shape = shape;
      chart.setOption(this.#fullOption(rows, columns, range, cells), { notMerge: true });
    } else {
      chart.setOption({ visualMap: range, series: [{ data: cells }] });
    }
  }

  #fullOption(rows, columns, range, cells) {
    const labels = (n) => Array.from({ length: n }, (_, i) => i);
    return {
      ...BASE_OPTION,
      tooltip: { position: "top" },
      grid: { left: 16, right: 90, top: 12, bottom: 24 },
      xAxis: { type: "category", data: labels(columns), splitArea: { show: false } },
      yAxis: { type: "category", data: labels(rows), inverse: true },
      visualMap: {
        ...range,
        calculable: false,
        orient: "vertical",
        right: 8,
        top: "middle",
        itemHeight: 160,
        inRange: { color: HEAT_COLORS },
      },
      series: [{ type: "heatmap", data: cells, progressive: 0 }],
    };
  }
}

export function heatmapType() {
  return (element, parameters) => new HeatmapView(element, parameters);
}
