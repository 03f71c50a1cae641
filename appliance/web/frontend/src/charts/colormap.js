// A 256-entry colour table built from the shared heat colours, and the
// mapping of a value to it, for the rasters drawn into an ImageData.
import { HEAT_COLORS } from "./echarts.js";

function rgb(hex) {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Uint8ClampedArray of 256 RGBA entries interpolated through HEAT_COLORS. */
export const COLOR_TABLE = (() => {
  const stops = HEAT_COLORS.map(rgb);
  const table = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const position = (i / 255) * (stops.length - 1);
    const k = Math.min(Math.floor(position), stops.length - 2);
    const t = position - k;
    for (let c = 0; c < 3; c++) table[i * 4 + c] = stops[k][c] + (stops[k + 1][c] - stops[k][c]) * t;
    table[i * 4 + 3] = 255;
  }
  return table;
})();

/** Index 0..255 of `value` on the scale [low, high] (clamped). */
export function colorIndex(value, low, high) {
  if (!(high > low)) return 128;
  const index = Math.round(((value - low) / (high - low)) * 255);
  return index < 0 ? 0 : index > 255 ? 255 : index;
}
