// The scrolling store behind base:spectrogram: the last `width` columns of
// `height` values each, in a ring so a new column costs O(height).
import { DataError, describe, toNumber } from "./params.js";

export class ColumnRing {
  constructor(width, height) {
    this.width = width;
    this.height = height;
    this.values = new Float32Array(width * height);
    this.next = 0; // slot of the next column
    this.filled = 0; // columns held, up to width
    this.total = 0; // columns received since the start
  }

  /** One column of `height` numbers, or a list of such columns (oldest first). */
  ingest(data) {
    if (!Array.isArray(data) || data.length === 0) {
      throw new DataError(`data ${describe(data)} is not a column; send a list of ${this.height} numbers`);
    }
    const columns = Array.isArray(data[0]) ? data : [data];
    const parsed = columns.map((column, c) => this.#column(column, columns.length > 1 ? `data[${c}]` : "data"));
    for (const column of parsed) this.#push(column);
  }

  /** Calls visit(columnValues, x) from the oldest kept column (x = 0) to the newest. */
  forEach(visit) {
    const start = (this.next - this.filled + this.width) % this.width;
    for (let x = 0; x < this.filled; x++) {
      const slot = (start + x) % this.width;
      visit(this.values.subarray(slot * this.height, (slot + 1) * this.height), x);
    }
  }

  /** The column `index` places after the oldest kept one (0 = oldest). */
  at(index) {
    const slot = (this.next - this.filled + index + this.width) % this.width;
    return this.values.subarray(slot * this.height, (slot + 1) * this.height);
  }

  #column(column, where) {
    if (!Array.isArray(column) || column.length !== this.height) {
      const got = Array.isArray(column) ? `${column.length} values` : describe(column);
      throw new DataError(`${where} has ${got}; this spectrogram's height is ${this.height} bins`);
    }
    return column.map((v, i) => toNumber(v, `${where}[${i}]`));
  }

  #push(column) {
    this.values.set(column, this.next * this.height);
    this.next = (this.next + 1) % this.width;
    this.filled = Math.min(this.filled + 1, this.width);
    this.total++;
  }
}
