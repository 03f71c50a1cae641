// Parameter and data checks shared by the chart types. Every failure throws a
// DataError whose message names the bad value and says what is accepted; the
// view shows it in the tab instead of letting it escape as an exception.

export class DataError extends Error {
  constructor(message) {
    super(message);
    this.name = "DataError";
  }
}

/**
 * Some parts of a message were malformed and left out; `applied` tells
 * whether the rest changed the chart (so it must be redrawn). The message
 * names each problem once.
 */
export class PartialDataError extends DataError {
  constructor(problems, applied) {
    const shown = problems.slice(0, 3).join("; ");
    const more = problems.length > 3 ? `; and ${problems.length - 3} more` : "";
    super(`${applied ? "drew the other series; " : ""}${shown}${more}`);
    this.name = "PartialDataError";
    this.problems = problems;
    this.applied = applied;
  }
}

/** A short, readable rendering of a value for error messages. */
export function describe(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** A number parameter that may be absent; 0 is a real value, not "absent". */
export function optionalNumber(parameters, name) {
  const value = parameters[name];
  if (value === undefined || value === null || value === "") return undefined;
  const number = typeof value === "string" ? Number(value) : value;
  if (typeof number !== "number" || !Number.isFinite(number)) {
    throw new DataError(`parameter ${name} is ${describe(value)}; expected a number`);
  }
  return number;
}

/** A positive integer parameter that may be absent. */
export function optionalCount(parameters, name) {
  const number = optionalNumber(parameters, name);
  if (number === undefined) return undefined;
  if (!Number.isInteger(number) || number < 1) {
    throw new DataError(`parameter ${name} is ${describe(number)}; expected a whole number of at least 1`);
  }
  return number;
}

/**
 * The series list: names (`["a", "b"]`) or objects (`[{name, color}]`).
 * Without `series` there is one unnamed series.
 */
export function seriesList(parameters) {
  const raw = parameters.series ?? [""];
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new DataError(`parameter series is ${describe(raw)}; expected a list of names or of {name, color}`);
  }
  return raw.map((entry, index) => {
    if (typeof entry === "string" || typeof entry === "number") {
      return { name: String(entry) || `series ${index + 1}`, color: undefined };
    }
    if (entry && typeof entry === "object") {
      const name = entry.name === undefined ? `series ${index + 1}` : String(entry.name);
      const color = typeof entry.color === "string" && entry.color ? entry.color : undefined;
      return { name, color };
    }
    throw new DataError(`series ${index} is ${describe(entry)}; expected a name or {name, color}`);
  });
}

/** A finite number from a data message (numeric strings accepted). */
export function toNumber(value, where) {
  const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof number !== "number" || !Number.isFinite(number)) {
    throw new DataError(`${where} is ${describe(value)}; expected a finite number`);
  }
  return number;
}

/** An x value: a number, or a string used as a category label. */
export function toX(value, where) {
  if (typeof value === "string" && value.trim() !== "" && !Number.isFinite(Number(value))) {
    return value;
  }
  return toNumber(value, where);
}

export function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
