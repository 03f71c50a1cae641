// base:graph:line, base:graph:area, base:graph:bar and base:graph:plot (scatter).
import { EChartsView } from "./base.js";
import { BASE_OPTION, resetZoomOnDoubleClick, tooltip, zoomOption } from "./echarts.js";
import { SeriesStore } from "./graph-data.js";
import { optionalCount, optionalNumber, seriesList } from "./params.js";

// Lines are thinned to the screen's resolution (largest-triangle sampling) when long.
const KINDS = {
  line: { type: "line", sampling: "lttb" },
  area: { type: "line", sampling: "lttb", areaStyle: { opacity: 0.35 } },
  bar: { type: "bar" },
  plot: { type: "scatter", symbolSize: 6 },
};

class GraphView extends EChartsView {
  constructor(element, parameters, kind) {
    super(element);
    this.kind = kind;
    this.series = seriesList(parameters);
    this.xName = parameters.xName === undefined ? "" : String(parameters.xName);
    this.min = optionalNumber(parameters, "min");
    this.max = optionalNumber(parameters, "max");
    this.store = new SeriesStore(this.series.length, {
      limitNb: optionalCount(parameters, "xLimitNb"),
      limitDistance: optionalNumber(parameters, "xLimitDistance"),
    });
    this.axisType = null;
  }

  ingest(data) {
    this.store.ingest(data);
  }

  render() {
    const { chart, fresh } = this.ensureChart();
    const axisType = this.store.categorical || this.kind === "bar" ? "category" : "value";
    // Lines draw no symbols (cheaper), except for a series of one point, which would be invisible.
    const line = KINDS[this.kind].type === "line";
    const data = this.store.series.map((points) => (line ? { data: points, showSymbol: points.length === 1 } : { data: points }));
    if (fresh && this.#zoomable()) resetZoomOnDoubleClick(chart);
    if (fresh || axisType !== this.axisType) {
      this.axisType = axisType;
      chart.setOption(this.#fullOption(axisType, data), { notMerge: true });
    } else {
      chart.setOption({ series: data }, { lazyUpdate: false });
    }
  }

  #fullOption(axisType, data) {
    const style = KINDS[this.kind];
    const line = style.type === "line";
    const named = this.series.some((s) => s.name);
    const xAxis =
      axisType === "category"
        ? { type: "category", name: this.xName, nameLocation: "middle", nameGap: 26 }
        : { type: "value", name: this.xName, nameLocation: "middle", nameGap: 26, min: "dataMin", max: "dataMax" };
    return {
      ...BASE_OPTION,
      legend: named && this.series.length > 1 ? { top: 0 } : { show: false },
      tooltip: tooltip(this.kind === "plot" ? "item" : "axis"),
      grid: { left: 16, right: 24, top: named && this.series.length > 1 ? 32 : 16, bottom: this.#zoomable() ? 58 : 36 },
      xAxis,
      yAxis: {
        type: "value",
        min: this.min,
        max: this.max,
        scale: this.kind !== "bar" && this.min === undefined,
        ...(this.kind === "bar" ? { startValue: barBase(this.min, this.max) } : {}),
      },
      ...(this.#zoomable() ? { dataZoom: zoomOption() } : {}),
      series: this.series.map((s, i) => ({
        ...style,
        name: s.name,
        ...(line ? { showSymbol: data[i].showSymbol } : {}),
        ...(s.color ? { itemStyle: { color: s.color }, lineStyle: { color: s.color } } : {}),
        ...(s.color && style.areaStyle ? { areaStyle: { ...style.areaStyle, color: s.color } } : {}),
        data: data[i].data,
      })),
    };
  }

  // Zoom and pan suit a line or a scatter of many points; bars are few categories.
  #zoomable() {
    return this.kind !== "bar";
  }

  /** Points kept per series (for tests and the app). */
  sizes() {
    return this.store.sizes();
  }
}

/**
 * Where bars start: at 0 when 0 lies inside the y range (values above and
 * below it), else at the bottom of the range, so that a level meter from
 * -90 to 0 dBFS grows up from the floor (louder = taller) instead of hanging
 * down from 0.
 */
export function barBase(min, max) {
  if (min === undefined || (max !== undefined && min < 0 && max > 0)) return 0;
  return min;
}

/** The factory for one of "line", "area", "bar", "plot". */
export function graphType(kind) {
  return (element, parameters) => new GraphView(element, parameters, kind);
}
