// The data model behind the x/y chart types: one list of [x, y] points per
// series, fed by every message format the handler API accepts, trimmed to
// xLimitNb points and to an xLimitDistance span. No DOM here, so node's test
// runner can check it.
import { DataError, describe, isPlainObject, toNumber, toX } from "./params.js";

/** Points a series keeps when xLimitNb is not given, so a long run cannot exhaust the page. */
export const DEFAULT_MAX_POINTS = 100_000;

export class SeriesStore {
  /**
   * @param {number} count number of series (fixed by the `series` parameter)
   * @param {{limitNb?: number, limitDistance?: number}} limits
   */
  constructor(count, limits = {}) {
    this.series = Array.from({ length: count }, () => []);
    this.limitNb = limits.limitNb ?? DEFAULT_MAX_POINTS;
    this.limitDistance = limits.limitDistance;
    this.categorical = false;
  }

  /** Apply one `send_data` message; throws DataError (and changes nothing) when it is malformed. */
  ingest(data) {
    const plan = this.#plan(data);
    if (plan.replace) {
      for (const list of this.series) list.length = 0;
    }
    plan.points.forEach((points, index) => {
      const target = this.series[index];
      for (const point of points) target.push(point);
      this.#trim(target);
    });
  }

  /** Number of points kept in each series. */
  sizes() {
    return this.series.map((list) => list.length);
  }

  // Parse the whole message before touching the store so a bad message is all-or-nothing.
  #plan(data) {
    if (Array.isArray(data)) return { replace: false, points: this.#perSeries(data, "data", pointList) };
    if (!isPlainObject(data)) {
      throw new DataError(
        `data ${describe(data)} is not understood; send [{"x":..,"y":..}, ...] (one point per series), ` +
          `{"add":[...]}, {"replace":[...]} or {"x":[..],"y":[[..],..]}`,
      );
    }
    if ("add" in data) return { replace: false, points: this.#perSeries(data.add, "add", pointList) };
    if ("replace" in data) {
      if (isPlainObject(data.replace) && "x" in data.replace) return this.#plan(data.replace);
      return { replace: true, points: this.#perSeries(data.replace, "replace", pointList) };
    }
    if ("x" in data && "y" in data) return this.#columns(data);
    throw new DataError(
      `data object with keys ${describe(Object.keys(data))} is not understood; expected "add", "replace" or "x" and "y"`,
    );
  }

  #perSeries(list, where, parse) {
    if (!Array.isArray(list)) throw new DataError(`${where} is ${describe(list)}; expected a list with one entry per series`);
    if (list.length > this.series.length) {
      throw new DataError(`${where} has ${list.length} entries but the chart has ${this.series.length} series`);
    }
    return list.map((entry, index) => {
      const points = parse(entry, `${where}[${index}]`);
      this.#noteCategories(points);
      return points;
    });
  }

  // {"x":[..],"y":[[..],[..]]} redraws every series; {"x":3,"y":4} appends to the first.
  #columns(data) {
    if (!Array.isArray(data.x)) {
      return { replace: false, points: [[[toX(data.x, "x"), toNumber(data.y, "y")]]] };
    }
    const rows = Array.isArray(data.y) && data.y.length > 0 && !Array.isArray(data.y[0]) ? [data.y] : data.y;
    if (!Array.isArray(rows)) throw new DataError(`y is ${describe(data.y)}; expected a list of lists, one per series`);
    if (rows.length > this.series.length) {
      throw new DataError(`y has ${rows.length} lists but the chart has ${this.series.length} series`);
    }
    const points = rows.map((ys, index) => pairs(data.x, ys, `y[${index}]`));
    points.forEach((p) => this.#noteCategories(p));
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
        if (drop > 0) list.splice(0, drop);
      }
    }
    if (list.length > this.limitNb) list.splice(0, list.length - this.limitNb);
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
