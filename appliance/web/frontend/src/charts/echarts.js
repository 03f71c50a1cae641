// The one place that loads ECharts: only the charts and components the
// handler types use, with the canvas renderer, so the bundle stays small.
import * as echarts from "echarts/core";
import { BarChart, HeatmapChart, LineChart, ScatterChart } from "echarts/charts";
import {
  DatasetComponent,
  GraphicComponent,
  GridComponent,
  LegendComponent,
  PolarComponent,
  TitleComponent,
  TooltipComponent,
  VisualMapComponent,
} from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([
  BarChart,
  HeatmapChart,
  LineChart,
  ScatterChart,
  DatasetComponent,
  GraphicComponent,
  GridComponent,
  LegendComponent,
  PolarComponent,
  TitleComponent,
  TooltipComponent,
  VisualMapComponent,
  CanvasRenderer,
]);

/** Colours of series without their own, and of the heatmap/spectrogram scale (low to high). */
export const PALETTE = ["#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc"];
export const HEAT_COLORS = ["#000004", "#3b0f70", "#8c2981", "#de4968", "#fe9f6d", "#fcfdbf"];

/** A chart on `element` with the options every handler type shares (no animation: data streams in). */
export function initChart(element) {
  return echarts.init(element, null, { renderer: "canvas" });
}

export const BASE_OPTION = {
  animation: false,
  color: PALETTE,
  textStyle: { fontFamily: "system-ui, sans-serif" },
};

export { echarts };

/**
 * Tooltip options. Drawn on the canvas ("richText"): the HTML tooltip sets
 * inline styles, which the device's Content-Security-Policy forbids.
 */
export function tooltip(trigger) {
  return { trigger, renderMode: "richText", confine: true };
}
