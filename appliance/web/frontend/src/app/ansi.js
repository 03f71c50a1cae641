// Terminal output for the console: ANSI colour codes (SGR) become styled spans and
// a carriage return overwrites the line, so coloured logs and tqdm bars read right.

// Escape codes are control characters by definition.
// eslint-disable-next-line no-control-regex
const ESC_SEQ = /\x1b\[([0-9;]*)([A-Za-z])/g;
const BASIC = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];

/** What a line shows after its carriage returns: the text after the last one. */
export function overwriteCR(text) {
  const i = text.lastIndexOf("\r");
  return i < 0 ? text : text.slice(i + 1);
}

/** Split a line into [{text, cls, style}] runs following its SGR codes; other codes are dropped. */
export function ansiRuns(text) {
  const runs = [];
  const state = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
  let last = 0;
  const push = (piece) => { if (piece) runs.push({ text: piece, ...describe(state) }); };
  for (const match of text.matchAll(ESC_SEQ)) {
    push(text.slice(last, match.index));
    last = match.index + match[0].length;
    if (match[2] === "m") applySgr(state, match[1]);
  }
  push(text.slice(last));
  return runs;
}

function applySgr(state, params) {
  const codes = params === "" ? [0] : params.split(";").map(Number);
  for (let i = 0; i < codes.length; i += 1) {
    const c = codes[i];
    if (c === 0) Object.assign(state, { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false });
    else if (c === 1) state.bold = true;
    else if (c === 2) state.dim = true;
    else if (c === 3) state.italic = true;
    else if (c === 4) state.underline = true;
    else if (c === 22) { state.bold = false; state.dim = false; }
    else if (c === 23) state.italic = false;
    else if (c === 24) state.underline = false;
    else if (c >= 30 && c <= 37) state.fg = `ansi-${BASIC[c - 30]}`;
    else if (c >= 90 && c <= 97) state.fg = `ansi-bright-${BASIC[c - 90]}`;
    else if (c === 39) state.fg = null;
    else if (c >= 40 && c <= 47) state.bg = `ansi-bg-${BASIC[c - 40]}`;
    else if (c >= 100 && c <= 107) state.bg = `ansi-bg-${BASIC[c - 100]}`;
    else if (c === 49) state.bg = null;
    else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
      state[c === 38 ? "fg" : "bg"] = { css: color256(codes[i + 2] ?? 0) };
      i += 2;
    } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
      const [r, g, b] = codes.slice(i + 2, i + 5).map((v) => Math.max(0, Math.min(255, v || 0)));
      state[c === 38 ? "fg" : "bg"] = { css: `rgb(${r},${g},${b})` };
      i += 4;
    }
  }
}

function describe(state) {
  const cls = [];
  const style = [];
  for (const [key, prop] of [["fg", "color"], ["bg", "background-color"]]) {
    const v = state[key];
    if (typeof v === "string") cls.push(v);
    else if (v) style.push(`${prop}:${v.css}`);
  }
  if (state.bold) cls.push("ansi-bold");
  if (state.dim) cls.push("ansi-dim");
  if (state.italic) cls.push("ansi-italic");
  if (state.underline) cls.push("ansi-underline");
  return { cls: cls.join(" "), style: style.join(";") };
}

function color256(n) {
  if (n < 16) {
    const base = [[0, 0, 0], [205, 49, 49], [13, 188, 121], [229, 229, 16], [36, 114, 200], [188, 63, 188], [17, 168, 205], [229, 229, 229]];
    const [r, g, b] = base[n % 8].map((v) => (n >= 8 ? Math.min(255, v + 40) : v));
    return `rgb(${r},${g},${b})`;
  }
  if (n < 232) {
    const k = n - 16;
    const steps = [0, 95, 135, 175, 215, 255];
    return `rgb(${steps[Math.floor(k / 36)]},${steps[Math.floor(k / 6) % 6]},${steps[k % 6]})`;
  }
  const grey = 8 + 10 * (n - 232);
  return `rgb(${grey},${grey},${grey})`;
}

/** The line without any escape codes (for search, copy and download). */
export function plainText(text) {
  return overwriteCR(text).replace(ESC_SEQ, "");
}
