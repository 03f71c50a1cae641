// base:polar:line and base:polar:area.
import { EChartsView } from "./base.js";
import { BASE_OPTION, tooltip } from "./echarts.js";
import { PolarStore } from "./polar-data.js";
import { DataError, describe, optionalNumber, seriesList } from "./params.js";

class PolarView extends EChartsView {
  constructor(element, parameters, kind) {
    super(element);
    this.kind = kind;
    this.series = seriesList(parameters);
    this.store = new PolarStore(this.series.length, parameters);
    this.title = parameters.title === undefined ? "" : String(parameters.title);
    this.rmin = optionalNumber(parameters, "rmin");
    this.rmax = optionalNumber(parameters, "rmax");
    const { startAngle, clockwise } = orientation(parameters);
    this.startAngle = startAngle;
    this.clockwise = clockwise;
  }

  ingest(data) {
    this.store.ingest(data);
  }

  render() {
    const { chart, fresh } = this.ensureChart();
    const series = this.series.map((_, i) => ({ data: this.store.points(i) }));
    if (fresh) chart.setOption(this.#fullOption(series), { notMerge: true });
    else chart.setOption({ series });
  }

  #fullOption(data) {
    const named = this.series.length > 1;
    return {
      ...BASE_OPTION,
      title: this.title ? { text: this.title, left: "center", textStyle: { fontSize: 14 } } : { show: false },
      legend: named ? { left: 4, top: 4, orient: "vertical" } : { show: false },
      tooltip: tooltip("item"),
      polar: { radius: "66%", center: ["50%", this.title ? "56%" : "50%"] },
      angleAxis: {
        type: "value",
        min: this.store.from,
        max: this.store.to,
        startAngle: this.startAngle,
        clockwise: this.clockwise,
        interval: (this.store.to - this.store.from) / 8,
        axisLabel: { showMaxLabel: false },
      },
      radiusAxis: { type: "value", min: this.rmin, max: this.rmax, scale: this.rmin === undefined },
      series: this.series.map((s, i) => ({
        type: "line",
        coordinateSystem: "polar",
        name: s.name,
        showSymbol: false,
        ...(this.kind === "area" ? { areaStyle: { opacity: 0.4, ...(s.color ? { color: s.color } : {}) } } : {}),
        ...(s.color ? { itemStyle: { color: s.color }, lineStyle: { color: s.color } } : {}),
        data: data[i].data,
      })),
    };
  }
}

// `orientation`: the screen angle in degrees (counter-clockwise from 3 o'clock)
// where `from` is drawn, default 90 (top); or "clockwise"/"counterclockwise".
// `clockwise` (default true) is the direction the angles grow in.
function orientation(parameters) {
  let startAngle = 90;
  let clockwise = parameters.clockwise === undefined ? true : Boolean(parameters.clockwise);
  const value = parameters.orientation;
  if (value === "clockwise" || value === "counterclockwise") clockwise = value === "clockwise";
  else if (value !== undefined && value !== null) {
    startAngle = optionalNumber(parameters, "orientation");
    if (startAngle === undefined) throw new DataError(`parameter orientation is ${describe(value)}; expected degrees`);
  }
  return { startAngle, clockwise };
}

/** The factory for "line" or "area". */
export function polarType(kind) {
  return (element, parameters) => new PolarView(element, parameters, kind);
}
