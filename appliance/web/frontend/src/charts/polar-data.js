// The data model behind base:polar:line and base:polar:area: one value per
// angle per series. The angles come from `legend: {from, to, step}` (from and
// to are the values at the start and the end of one full turn, usually 0 and
// 360 degrees), or `numPoints` spread over a full turn, or else follow the
// data's length. A replace may carry one value more than there are angles:
// the value at `to`, one full turn on, which closes the circle (easy-dsp's
// scripts send N+1 values, the last repeating the first).
import { DataError, PartialDataError, describe, isPlainObject, optionalCount, optionalNumber, toNumber } from "./params.js";

export class PolarStore {
  constructor(count, parameters) {
    this.values = Array.from({ length: count }, () => []);
    this.closing = Array.from({ length: count }, () => undefined);
    const legend = parameters.legend;
    if (legend !== undefined && legend !== null) {
      if (!isPlainObject(legend)) throw new DataError(`parameter legend is ${describe(legend)}; expected {from, to, step}`);
      const from = optionalNumber(legend, "from") ?? 0;
      const to = optionalNumber(legend, "to") ?? 360;
      const step = optionalNumber(legend, "step");
      if (step === undefined || step <= 0 || to <= from || (to - from) / step > 100000) {
        throw new DataError(
          `legend ${describe(legend)} does not give angles; expected from < to and a step above 0 (degrees)`,
        );
      }
      this.from = from;
      this.to = to;
      this.fixed = Math.max(1, Math.ceil((to - from) / step - 1e-9));
      this.step = step;
    } else {
      this.from = 0;
      this.to = 360;
      this.fixed = optionalCount(parameters, "numPoints");
      this.step = undefined;
    }
  }

  /** The number of angles: fixed by the parameters, else the longest series. */
  size() {
    return this.fixed ?? Math.max(1, ...this.values.map((v) => v.length));
  }

  /** Angle in degrees of position `index`. */
  angle(index) {
    return this.step !== undefined ? this.from + index * this.step : this.from + (index * (this.to - this.from)) / this.size();
  }

  /** Apply one message: `[{"append": v}, ...]` or `[{"replace": [..]}, ...]`, one entry per series. */
  ingest(data) {
    if (!Array.isArray(data)) {
      throw new DataError(`data ${describe(data)} is not understood; send [{"append": v}, ...] or [{"replace": [..]}, ...], one per series`);
    }
    if (data.length > this.values.length) {
      throw new DataError(`data has ${data.length} entries but the chart has ${this.values.length} series`);
    }
    // A malformed entry leaves its own series as it was; the others are drawn.
    const problems = [];
    const plan = data.map((entry, i) => {
      try {
        return parseEntry(entry, i, this.fixed);
      } catch (error) {
        if (!(error instanceof DataError)) throw error;
        problems.push(error.message);
        return null;
      }
    });
    plan.forEach((change, i) => {
      if (change === null) return;
      const list = this.values[i];
      this.closing[i] = undefined;
      if (change.replace) {
        const values = change.replace;
        if (this.fixed !== undefined && values.length === this.fixed + 1) this.closing[i] = values.pop();
        list.splice(0, list.length, ...values);
      } else list.push(...change.append);
      const keep = this.fixed ?? Infinity;
      if (list.length > keep) list.splice(0, list.length - keep);
    });
    if (problems.length > 0) throw new PartialDataError(problems, plan.some((change) => change !== null));
  }

  /**
   * ECharts points [r, angle] for series `i`. `from` to `to` is one full turn
   * (as in the original handler), so a series with a value at every angle is
   * closed into a loop.
   */
  points(i) {
    const points = this.values[i].map((r, k) => [r, this.angle(k)]);
    if (points.length === this.size() && points.length > 1) points.push([this.closing[i] ?? points[0][0], this.to]);
    return points;
  }
}

function parseEntry(entry, i, fixed) {
  if (entry === null) return null;
  if (!isPlainObject(entry)) {
    throw new DataError(`data[${i}] is ${describe(entry)}; expected {"append": value} or {"replace": [values]}`);
  }
  if ("replace" in entry) {
    if (!Array.isArray(entry.replace)) throw new DataError(`data[${i}].replace is ${describe(entry.replace)}; expected a list of numbers`);
    if (fixed !== undefined && entry.replace.length > fixed + 1) {
      throw new DataError(
        `data[${i}].replace has ${entry.replace.length} values but the chart has ${fixed} angles ` +
          `(${fixed + 1} closes the circle: the last value is at one full turn)`,
      );
    }
    return { replace: entry.replace.map((v, k) => toNumber(v, `data[${i}].replace[${k}]`)) };
  }
  if ("append" in entry) {
    const values = Array.isArray(entry.append) ? entry.append : [entry.append];
    return { append: values.map((v, k) => toNumber(v, `data[${i}].append${Array.isArray(entry.append) ? `[${k}]` : ""}`)) };
  }
  throw new DataError(`data[${i}] has keys ${describe(Object.keys(entry))}; expected "append" or "replace"`);
}
