// The data model behind the x/y chart types: one list of [x, y] points per
// series, fed by every message format the handler API accepts, trimmed to the
// last xLimitNb distinct x values (over all series, as easy-dsp did) and to an
// xLimitDistance span. A message whose entry for one series is malformed
// still updates the other series. No DOM here, so node's test runner can check it.
import { DataError, PartialDataError, describe, isPlainObject, toNumber, toX } from "./params.js";

/** Points a series keeps when xLimitNb is not given, so a long run cannot exhaust the page. */
export const DEFAULT_MAX_POINTS = 100_000;

export class SeriesStore {
  #series;
  #unsettled = false;

  /**
   * @param {number} count number of series (fixed by the `series` parameter)
   * @param {{limitNb?: number, limitDistance?: number}} limits
   */
  constructor(count, limits = {}) {
    this.#series = Array.from({ length: count }, () => []);
    this.limitNb = limits.limitNb;
    this.limitDistance = limits.limitDistance;
    this.categorical = false;
    /** x values in the order last seen (oldest first) -> points kept with that x, for xLimitNb. */
    this.recentX = new Map();
  }

  /**
   * Apply one `send_data` message. A malformed message throws DataError and
   * changes nothing; a message with some malformed series entries applies the
   * others and then throws PartialDataError naming the bad ones.
   */
  ingest(data) {
    const problems = [];
    const plan = this.#plan(data, problems);
    const applied = plan.points.some((points) => points !== null);
    if (!applied && problems.length > 0) throw new PartialDataError(problems, false); // nothing usable: no change
    if (plan.replace) {
      for (const list of this.#series) list.length = 0;
      this.recentX.clear();
    }
    plan.points.forEach((points, index) => {
      if (points === null) return;
      const target = this.#series[index];
      for (const point of points) {
        target.push(point);
        this.#seen(point[0]);
      }
      this.#trim(target);
    });
    // xLimitNb is applied when the points are read, once for a batch of messages: applied
    // per message, it cut one point off the front of every series each time (a flood's
    // thousands a second). Past twice the limit it is applied at once, to bound memory.
    this.#unsettled = this.limitNb !== undefined;
    if (this.limitNb !== undefined && this.recentX.size > 2 * this.limitNb) this.#settle();
    if (problems.length > 0) throw new PartialDataError(problems, true);
  }

  /** One list of [x, y] points per series, oldest first, within the limits. */
  get series() {
    this.#settle();
    return this.#series;
  }

  #settle() {
    if (!this.#unsettled) return;
    this.#unsettled = false;
    this.#limitDistinct();
  }

  /** Number of points kept in each series. */
  sizes() {
    return this.series.map((list) => list.length);
  }

  // Parse the whole message before touching the store: a bad message changes
  // nothing, a bad series entry only its own series (`problems` collects it).
  #plan(data, problems) {
    if (Array.isArray(data)) return { replace: false, points: this.#perSeries(data, "data", problems) };
    if (!isPlainObject(data)) {
      throw new DataError(
        `data ${describe(data)} is not understood; send [{"x":..,"y":..}, ...] (one point per series), ` +
          `{"add":[...]}, {"replace":[...]} or {"x":[..],"y":[[..],..]}`,
      );
    }
    if ("add" in data) return { replace: false, points: this.#perSeries(data.add, "add", problems) };
    if ("replace" in data) {
      if (isPlainObject(data.replace) && "x" in data.replace) return this.#plan(data.replace, problems);
      return { replace: true, points: this.#perSeries(data.replace, "replace", problems) };
    }
    if ("x" in data && "y" in data) return this.#columns(data, problems);
    throw new DataError(
      `data object with keys ${describe(Object.keys(data))} is not understood; expected "add", "replace" or "x" and "y"`,
    );
  }

  #perSeries(list, where, problems) {
    if (!Array.isArray(list)) throw new DataError(`${where} is ${describe(list)}; expected a list with one entry per series`);
    if (list.length > this.#series.length) {
      throw new DataError(`${where} has ${list.length} entries but the chart has ${this.#series.length} series`);
    }
    return list.map((entry, index) => this.#oneSeries(() => pointList(entry, `${where}[${index}]`), problems));
  }

  // The points of one series entry, or null (and a problem noted) when it is malformed.
  #oneSeries(parse, problems) {
    try {
      const points = parse();
      this.#noteCategories(points);
      return points;
    } catch (error) {
      if (!(error instanceof DataError)) throw error;
      problems.push(error.message);
      return null;
    }
  }

  // {"x":[..],"y":[[..],[..]]} redraws every series; {"x":3,"y":4} appends to the first.
  #columns(data, problems) {
    if (!Array.isArray(data.x)) {
      return { replace: false, points: [[[toX(data.x, "x"), toNumber(data.y, "y")]]] };
    }
    const rows = Array.isArray(data.y) && data.y.length > 0 && !Array.isArray(data.y[0]) ? [data.y] : data.y;
    if (!Array.isArray(rows)) throw new DataError(`y is ${describe(data.y)}; expected a list of lists, one per series`);
    if (rows.length > this.#series.length) {
      throw new DataError(`y has ${rows.length} lists but the chart has ${this.#series.length} series`);
    }
    const xs = data.x.map((x, i) => toX(x, `x[${i}]`)); // a bad x spoils every series: the whole message is refused
    const points = rows.map((ys, index) => this.#oneSeries(() => pairs(xs, ys, `y[${index}]`), problems));
    return { replace: true, points };
  }

  #noteCategories(points) {
    if (!this.categorical && points.some((p) => typeof p[0] === "string")) this.categorical = true;
  }

  #trim(list) {
    if (this.limitDistance !== undefined && list.length > 0) {
      const last = list[list.length - 1][0];
      if (typeof last === "number") {
        let drop = 0;
        while (drop < list.length && typeof list[drop][0] === "number" && list[drop][0] < last - this.limitDistance) drop++;
        if (drop > 0) this.#forget(list.splice(0, drop));
      }
    }
    if (list.length > DEFAULT_MAX_POINTS) this.#forget(list.splice(0, list.length - DEFAULT_MAX_POINTS));
  }

  // Points removed by the distance or size limit no longer count for their x value
  // (the x stays among the recent ones, as before).
  #forget(points) {
    if (this.limitNb === undefined) return;
    for (const [x] of points) if (this.recentX.has(x)) this.recentX.set(x, this.recentX.get(x) - 1);
  }

  #seen(x) {
    if (this.limitNb === undefined) return;
    const points = this.recentX.get(x) ?? 0;
    this.recentX.delete(x);
    this.recentX.set(x, points + 1);
  }

  // xLimitNb: the points of the last N distinct x values, over all series.
  // Placeholder points sent once (x = 0) go as soon as N newer x values came.
  #limitDistinct() {
    if (this.limitNb === undefined || this.recentX.size <= this.limitNb) return;
    const gone = new Set();
    for (const x of this.recentX.keys()) {
      if (this.recentX.size - gone.size <= this.limitNb) break;
      gone.add(x);
    }
    // The gone x values are the oldest, so their points are usually at the front of
    // each series: cut those off, and filter the whole series only when the counts
    // say some are left further in (a streaming chart pays per point removed).
    let left = 0;
    for (const x of gone) {
      left += this.recentX.get(x);
      this.recentX.delete(x);
    }
    for (const list of this.#series) {
      let front = 0;
      while (front < list.length && gone.has(list[front][0])) front++;
      if (front > 0) list.splice(0, front);
      left -= front;
    }
    if (left <= 0) return;
    for (const list of this.#series) {
      let kept = 0;
      for (const point of list) if (!gone.has(point[0])) list[kept++] = point;
      list.length = kept;
    }
  }
}

// One series' entry: {"x":1,"y":2}, {"x":[..],"y":[..]}, [{"x","y"},...] or [y, y, ...].
function pointList(entry, where) {
  if (isPlainObject(entry)) {
    if (!("x" in entry) || !("y" in entry)) throw new DataError(`${where} is ${describe(entry)}; expected keys "x" and "y"`);
    if (Array.isArray(entry.x) || Array.isArray(entry.y)) return pairs(entry.x, entry.y, where);
    return [[toX(entry.x, `${where}.x`), toNumber(entry.y, `${where}.y`)]];
  }
  if (Array.isArray(entry)) {
    return entry.map((item, i) =>
      isPlainObject(item)
        ? [toX(item.x, `${where}[${i}].x`), toNumber(item.y, `${where}[${i}].y`)]
        : [i, toNumber(item, `${where}[${i}]`)],
    );
  }
  if (entry === null) return []; // a series left out of this message
  throw new DataError(`${where} is ${describe(entry)}; expected {"x":..,"y":..} or a list of points`);
}

function pairs(xs, ys, where) {
  if (!Array.isArray(xs) || !Array.isArray(ys)) {
    throw new DataError(`${where}: x and y must both be lists, got ${describe(xs)} and ${describe(ys)}`);
  }
  if (xs.length !== ys.length) {
    throw new DataError(`${where}: ${ys.length} y values for ${xs.length} x values; the lists must be the same length`);
  }
  return xs.map((x, i) => [toX(x, `${where}.x[${i}]`), toNumber(ys[i], `${where}.y[${i}]`)]);
}
