// What every ECharts-backed type shares: the chart is created on first draw
// (a hidden tab has no size yet), resized and disposed with the view.
import { disposeChart, initChart } from "./echarts.js";

export class EChartsView {
  constructor(element) {
    this.element = element;
    this.chart = null;
  }

  /** The chart, created on first use; `fresh` tells the caller to send the full option. */
  ensureChart() {
    if (this.chart) return { chart: this.chart, fresh: false };
    this.chart = initChart(this.element);
    return { chart: this.chart, fresh: true };
  }

  resize() {
    this.chart?.resize();
  }

  destroy() {
    if (this.chart) disposeChart(this.chart);
    this.chart = null;
  }
}
