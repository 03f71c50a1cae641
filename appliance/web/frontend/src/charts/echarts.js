// The one place that loads ECharts: only the charts and components the
// handler types use, with the canvas renderer, so the bundle stays small.
import * as echarts from "echarts/core";
import { BarChart, HeatmapChart, LineChart, ScatterChart } from "echarts/charts";
import {
  DataZoomInsideComponent,
  DataZoomSliderComponent,
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
  DataZoomInsideComponent,
  DataZoomSliderComponent,
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

// The page's own colours (style.css), so the charts follow the light and dark
// themes; the fallbacks are the light theme's, for pages without that sheet.
const PAGE_COLORS = { "--fg": "#1d2330", "--muted": "#6b7280", "--line": "#dde2ea", "--panel": "#fff", "--track": "#e8ebf0" };

function pageColor(name) {
  const root = document.documentElement;
  return (root && getComputedStyle(root).getPropertyValue(name).trim()) || PAGE_COLORS[name];
}

/** The ECharts theme made from the page's current colours: text, axes, grid lines, legend, colour bar. */
export function chartTheme() {
  const text = pageColor("--fg");
  const muted = pageColor("--muted");
  const grid = pageColor("--line");
  const axis = {
    axisLine: { lineStyle: { color: muted } },
    axisTick: { lineStyle: { color: muted } },
    axisLabel: { color: muted },
    nameTextStyle: { color: text },
    splitLine: { lineStyle: { color: [grid] } },
  };
  return {
    textStyle: { color: text },
    title: { textStyle: { color: text }, subtextStyle: { color: muted } },
    legend: { textStyle: { color: text }, inactiveColor: grid },
    visualMap: { textStyle: { color: text } },
    tooltip: { backgroundColor: pageColor("--panel"), borderColor: grid, textStyle: { color: text } },
    dataZoom: {
      textStyle: { color: muted },
      borderColor: grid,
      backgroundColor: "transparent",
      fillerColor: "rgba(91,141,239,0.2)",
      dataBackground: { lineStyle: { color: muted }, areaStyle: { color: pageColor("--track") } },
    },
    categoryAxis: axis,
    valueAxis: axis,
    logAxis: axis,
    timeAxis: axis,
  };
}

const liveCharts = new Set();

/** A chart on `element` in the page's theme; it follows theme switches until disposeChart. */
export function initChart(element) {
  const chart = echarts.init(element, chartTheme(), { renderer: "canvas" });
  liveCharts.add(chart);
  return chart;
}

export function disposeChart(chart) {
  liveCharts.delete(chart);
  chart.dispose();
}

// shell.js announces a theme switch once the page's colours have changed.
document.addEventListener("micarray:theme", () => {
  const theme = chartTheme();
  for (const chart of liveCharts) chart.setTheme(theme);
});

/**
 * Zoom and pan along x for the line, area and scatter charts: the wheel (or a
 * pinch) zooms, dragging pans, the slider under the plot shows where the view
 * is, and a double click shows everything again. Kept in percent of the data,
 * so a streaming chart's view slides with its newest points.
 */
export function zoomOption() {
  return [
    { type: "inside", xAxisIndex: 0, filterMode: "none" },
    { type: "slider", xAxisIndex: 0, filterMode: "none", height: 14, bottom: 4, showDetail: false, brushSelect: false },
  ];
}

/** Double click (or double tap) on a zoomable chart shows all of its data again. */
export function resetZoomOnDoubleClick(chart) {
  chart.getZr().on("dblclick", () => chart.dispatchAction({ type: "dataZoom", start: 0, end: 100 }));
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
