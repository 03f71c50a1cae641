// base:spectrogram: the newest column at the right, scrolling left. The
// raster is painted into a canvas of width x height pixels (one per value)
// that ECharts draws, scaled, inside its own axes and colour scale.
import { EChartsView } from "./base.js";
import { BASE_OPTION, HEAT_COLORS } from "./echarts.js";
import { COLOR_TABLE, colorIndex } from "./colormap.js";
import { ColumnRing } from "./spectrogram-data.js";
import { DataError, optionalCount, optionalNumber } from "./params.js";

/** Pixels around the plot area, fixed so the raster lines up with the axes. */
const GRID = { left: 64, right: 96, top: 14, bottom: 40 };

class SpectrogramView extends EChartsView {
  constructor(element, parameters) {
    super(element);
    const width = optionalCount(parameters, "width") ?? 200;
    const height = optionalCount(parameters, "height");
    if (height === undefined) throw new DataError("parameter height (frequency bins per column) is missing");
    if (width * height > 4_000_000) {
      throw new DataError(`width ${width} x height ${height} is too large; keep it under 4 million values`);
    }
    this.ring = new ColumnRing(width, height);
    this.min = optionalNumber(parameters, "min");
    this.max = optionalNumber(parameters, "max");
    this.deltaFreq = optionalNumber(parameters, "delta_freq");
    this.raster = document.createElement("canvas");
    this.raster.width = width;
    this.raster.height = height;
    this.context = this.raster.getContext("2d");
    this.image = this.context.createImageData(width, height);
  }

  ingest(data) {
    this.ring.ingest(data);
  }

  render() {
    const { chart, fresh } = this.ensureChart();
    const range = this.#paint();
    const graphic = this.#graphic();
    if (fresh) chart.setOption(this.#fullOption(range, graphic), { notMerge: true });
    else chart.setOption({ visualMap: range, graphic });
  }

  resize() {
    super.resize();
    this.chart?.setOption({ graphic: this.#graphic() });
  }

  // Paint the raster: low bins at the bottom, empty columns transparent.
  #paint() {
    const { width, height } = this.ring;
    let low = this.min;
    let high = this.max;
    if (low === undefined || high === undefined) {
      let lo = Infinity;
      let hi = -Infinity;
      this.ring.forEach((column) => {
        for (const v of column) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      });
      low ??= Number.isFinite(lo) ? lo : 0;
      high ??= hi > low ? hi : low + 1;
    }
    const pixels = this.image.data;
    pixels.fill(0);
    const offset = width - this.ring.filled;
    this.ring.forEach((column, x) => {
      for (let bin = 0; bin < height; bin++) {
        const p = ((height - 1 - bin) * width + offset + x) * 4;
        const c = colorIndex(column[bin], low, high) * 4;
        pixels[p] = COLOR_TABLE[c];
        pixels[p + 1] = COLOR_TABLE[c + 1];
        pixels[p + 2] = COLOR_TABLE[c + 2];
        pixels[p + 3] = 255;
      }
    });
    this.context.putImageData(this.image, 0, 0);
    return { min: low, max: high };
  }

  #graphic() {
    const w = Math.max(1, this.element.clientWidth - GRID.left - GRID.right);
    const h = Math.max(1, this.element.clientHeight - GRID.top - GRID.bottom);
    return [
      {
        id: "raster",
        type: "image",
        left: GRID.left,
        top: GRID.top,
        silent: true,
        z: -1,
        // A new style object each frame makes ECharts repaint the same canvas.
        style: { image: this.raster, width: w, height: h },
      },
    ];
  }

  #fullOption(range, graphic) {
    const { width, height } = this.ring;
    const top = this.deltaFreq === undefined ? height : height * this.deltaFreq;
    return {
      ...BASE_OPTION,
      grid: { ...GRID, containLabel: false },
      xAxis: { type: "value", min: -width, max: 0, name: "columns", nameLocation: "middle", nameGap: 24, splitLine: { show: false } },
      yAxis: {
        type: "value",
        min: 0,
        max: top,
        name: this.deltaFreq === undefined ? "bin" : "Hz",
        splitLine: { show: false },
      },
      visualMap: {
        ...range,
        calculable: false,
        right: 8,
        top: "middle",
        itemHeight: 160,
        seriesIndex: 0,
        inRange: { color: HEAT_COLORS },
      },
      graphic,
      // An empty series: the axes and the colour scale need one to attach to.
      series: [{ type: "scatter", data: [] }],
    };
  }
}

export function spectrogramType() {
  return (element, parameters) => new SpectrogramView(element, parameters);
}
