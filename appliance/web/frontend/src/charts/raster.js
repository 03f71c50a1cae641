// What the heatmap and the spectrogram share: values painted one pixel per
// cell into a small canvas, which ECharts draws scaled inside its own axes and
// beside its colour scale. Painting a few thousand pixels costs far less than
// one ECharts shape per cell, so these tabs keep up with fast updates.
import { EChartsView } from "./base.js";
import { COLOR_TABLE, colorIndex } from "./colormap.js";
import { BASE_OPTION, HEAT_COLORS } from "./echarts.js";
import { DataError, describe } from "./params.js";

/** Pixels around the plot area, fixed so the raster lines up with the axes. */
export const GRID = { left: 64, right: 96, top: 14, bottom: 40 };

/** The `unit` parameter: words shown with the colour scale's numbers ("dB"), or "". */
export function unitParameter(parameters) {
  const unit = parameters.unit;
  if (unit === undefined || unit === null) return "";
  if (typeof unit !== "string" || unit.length > 16) {
    throw new DataError(`parameter unit is ${describe(unit)}; expected a short text such as "dB" (at most 16 characters)`);
  }
  return unit;
}

export class RasterView extends EChartsView {
  constructor(element, min, max, unit = "") {
    super(element);
    this.min = min;
    this.max = max;
    this.unit = unit;
    // The values, one pixel each, off screen.
    this.canvas = document.createElement("canvas");
    this.context = this.canvas.getContext("2d");
    this.image = null;
    // The plot area on screen, under ECharts' transparent canvas: blitting the
    // raster here each frame avoids a full ECharts update per frame.
    this.screen = document.createElement("canvas");
    this.screen.className = "micarray-raster";
    this.screen.style.cssText = `position:absolute;left:${GRID.left}px;top:${GRID.top}px;`;
    this.range = null;
    this.axes = null;
    // The value under the pointer, in words (a DOM label: the page's policy allows no HTML tooltips).
    this.readout = document.createElement("div");
    this.readout.className = "micarray-raster-readout";
    this.readout.style.cssText =
      "position:absolute;z-index:1;display:none;pointer-events:none;padding:2px 6px;border-radius:3px;" +
      "background:rgba(0,0,0,0.75);color:#fff;font:12px system-ui,sans-serif;white-space:nowrap;";
    this.onPointer = (event) => this.#pointer(event);
    this.onLeave = () => {
      this.readout.style.display = "none";
    };
    element.addEventListener("mousemove", this.onPointer);
    element.addEventListener("mouseleave", this.onLeave);
  }

  /** Words for raster cell (column, row), or null; the subclass knows what a cell means. */
  describeCell(_column, _row) {
    return null;
  }

  #pointer(event) {
    const rect = this.screen.getBoundingClientRect();
    const fx = (event.clientX - rect.left) / rect.width;
    const fy = (event.clientY - rect.top) / rect.height;
    const text = this.image && fx >= 0 && fx < 1 && fy >= 0 && fy < 1
      ? this.describeCell(Math.floor(fx * this.image.width), Math.floor(fy * this.image.height))
      : null;
    if (text === null) {
      this.readout.style.display = "none";
      return;
    }
    this.readout.textContent = text;
    const box = this.element.getBoundingClientRect();
    this.readout.style.left = `${event.clientX - box.left + 12}px`;
    this.readout.style.top = `${event.clientY - box.top + 12}px`;
    this.readout.style.display = "block";
  }

  /** Make the raster `columns` x `rows` pixels (cleared); true when the shape changed. */
  shape(columns, rows) {
    if (this.image && this.image.width === columns && this.image.height === rows) return false;
    this.canvas.width = columns;
    this.canvas.height = rows;
    this.image = this.context.createImageData(columns, rows);
    return true;
  }

  /** The colour range: the min/max parameters, else the data's own extent. */
  rangeFor(low, high) {
    const min = this.min ?? (Number.isFinite(low) ? low : 0);
    let max = this.max ?? (Number.isFinite(high) ? high : min + 1);
    if (!(max > min)) max = min + 1;
    return { min, max };
  }

  /** Colour pixel (x, y) of the raster with `value` on `range`. */
  paint(x, y, value, range) {
    const p = (y * this.image.width + x) * 4;
    const c = colorIndex(value, range.min, range.max) * 4;
    const pixels = this.image.data;
    pixels[p] = COLOR_TABLE[c];
    pixels[p + 1] = COLOR_TABLE[c + 1];
    pixels[p + 2] = COLOR_TABLE[c + 2];
    pixels[p + 3] = 255;
  }

  /** Put the painted raster on screen; `axes` ({xAxis, yAxis}) when they changed. */
  show(range, axes) {
    const { chart, fresh } = this.ensureChart();
    // ECharts empties its container when it starts, so the raster goes in after, below its canvas.
    if (!this.screen.isConnected) {
      this.element.prepend(this.screen);
      this.element.append(this.readout);
    }
    this.context.putImageData(this.image, 0, 0);
    this.#blit();
    if (axes) this.axes = axes;
    if (fresh || axes) chart.setOption(this.#fullOption(range), { notMerge: true });
    else if (this.range.min !== range.min || this.range.max !== range.max) chart.setOption({ visualMap: this.#scale(range) });
    this.range = range;
  }

  resize() {
    super.resize();
    this.#blit();
  }

  destroy() {
    this.element.removeEventListener("mousemove", this.onPointer);
    this.element.removeEventListener("mouseleave", this.onLeave);
    super.destroy();
    this.screen.remove();
    this.readout.remove();
  }

  #blit() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, this.element.clientWidth - GRID.left - GRID.right);
    const height = Math.max(1, this.element.clientHeight - GRID.top - GRID.bottom);
    if (this.screen.width !== Math.round(width * ratio) || this.screen.height !== Math.round(height * ratio)) {
      this.screen.width = Math.round(width * ratio);
      this.screen.height = Math.round(height * ratio);
      this.screen.style.width = `${width}px`;
      this.screen.style.height = `${height}px`;
    }
    if (!this.image) return;
    const screen = this.screen.getContext("2d");
    screen.imageSmoothingEnabled = false;
    screen.clearRect(0, 0, this.screen.width, this.screen.height);
    screen.drawImage(this.canvas, 0, 0, this.screen.width, this.screen.height);
  }

  // The colour scale with its numbers: the top and bottom values, in the chart's unit.
  #scale(range) {
    const label = (value) => `${scaleNumber(value)}${this.unit ? ` ${this.unit}` : ""}`;
    return { ...range, text: [label(range.max), label(range.min)] };
  }

  #fullOption(range) {
    return {
      ...BASE_OPTION,
      grid: { ...GRID, outerBoundsMode: "none" },
      ...this.axes,
      visualMap: {
        ...this.#scale(range),
        calculable: false,
        right: 8,
        top: "middle",
        itemHeight: 160,
        seriesIndex: 0,
        inRange: { color: HEAT_COLORS },
      },
      // An empty series: the axes and the colour scale need one to attach to.
      series: [{ type: "scatter", data: [] }],
    };
  }
}

/** A colour-scale number: at most 4 significant digits, no trailing zeros. */
export function scaleNumber(value) {
  return String(Number(value.toPrecision(4)));
}
