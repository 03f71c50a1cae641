// base:spectrogram: the newest column at the right, scrolling left, low
// frequencies at the bottom; one raster pixel per value.
import { formatValue } from "./heatmap.js";
import { RasterView, unitParameter } from "./raster.js";
import { ColumnRing } from "./spectrogram-data.js";
import { DataError, optionalCount, optionalNumber } from "./params.js";

class SpectrogramView extends RasterView {
  constructor(element, parameters) {
    super(element, optionalNumber(parameters, "min"), optionalNumber(parameters, "max"), unitParameter(parameters));
    const width = optionalCount(parameters, "width") ?? 200;
    const height = optionalCount(parameters, "height");
    if (height === undefined) throw new DataError("parameter height (frequency bins per column) is missing");
    if (width * height > 4_000_000) {
      throw new DataError(`width ${width} x height ${height} is too large; keep it under 4 million values`);
    }
    this.ring = new ColumnRing(width, height);
    this.deltaFreq = optionalNumber(parameters, "delta_freq");
  }

  ingest(data) {
    this.ring.ingest(data);
  }

  render() {
    const { width, height } = this.ring;
    const fresh = this.shape(width, height);
    const range = this.#range();
    this.image.data.fill(0);
    const offset = width - this.ring.filled;
    this.ring.forEach((column, x) => {
      for (let bin = 0; bin < height; bin++) this.paint(offset + x, height - 1 - bin, column[bin], range);
    });
    this.show(range, fresh ? this.#axes() : null);
  }

  describeCell(x, y) {
    const { width, height } = this.ring;
    const age = width - 1 - x; // columns before the newest
    if (age >= this.ring.filled) return null;
    const bin = height - 1 - y;
    const value = this.ring.at(this.ring.filled - 1 - age)[bin];
    const where = this.deltaFreq === undefined ? `bin ${bin}` : `${formatValue(bin * this.deltaFreq)} Hz`;
    const when = age === 0 ? "newest column" : `${age} column${age === 1 ? "" : "s"} ago`;
    return `${where}, ${when}: ${formatValue(value)}${this.unit ? ` ${this.unit}` : ""}`;
  }

  #range() {
    if (this.min !== undefined && this.max !== undefined) return this.rangeFor(this.min, this.max);
    let low = Infinity;
    let high = -Infinity;
    this.ring.forEach((column) => {
      for (const v of column) {
        if (v < low) low = v;
        if (v > high) high = v;
      }
    });
    return this.rangeFor(low, high);
  }

  #axes() {
    const { width, height } = this.ring;
    const hz = this.deltaFreq !== undefined;
    return {
      xAxis: { type: "value", min: -width, max: 0, name: "columns", nameLocation: "middle", nameGap: 24, splitLine: { show: false } },
      yAxis: { type: "value", min: 0, max: hz ? height * this.deltaFreq : height, name: hz ? "Hz" : "bin", splitLine: { show: false } },
    };
  }
}

export function spectrogramType() {
  return (element, parameters) => new SpectrogramView(element, parameters);
}
