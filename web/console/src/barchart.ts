// A column chart for the reports (energy by day, the forecast): ECharts' bar series, in the same
// lazily loaded chunk as the map's (charts.ts), so the first page does not carry it.
import { BarChart } from "echarts/charts";
import { GridComponent, LegendComponent } from "echarts/components";
import { echarts } from "./charts";

echarts.use([BarChart, GridComponent, LegendComponent]);

export function drawColumns(element: HTMLElement, categories: string[], series: { name: string; values: number[] }[]): () => void {
  const chart = echarts.init(element);
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 48, right: 16, top: 32, bottom: 48 },
    xAxis: { type: "category", data: categories, axisLabel: { rotate: 30 } },
    yAxis: { type: "value" },
    series: series.map((s) => ({ type: "bar", name: s.name, data: s.values, stack: "total" })),
  });
  const resize = () => chart.resize();
  window.addEventListener("resize", resize);
  return () => {
    window.removeEventListener("resize", resize);
    chart.dispose();
  };
}
