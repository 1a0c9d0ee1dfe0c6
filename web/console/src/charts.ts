// ECharts, only the parts the console draws (tree-shaken: the JavaScript budget is 500 KB gzipped),
// and the rivers' schematic registered once as a map.
import { ScatterChart } from "echarts/charts";
import { BrushComponent, GeoComponent, TooltipComponent } from "echarts/components";
import * as echarts from "echarts/core";
import { LabelLayout } from "echarts/features";
import { CanvasRenderer } from "echarts/renderers";
import rivers from "./geo/rivers.json";

echarts.use([ScatterChart, GeoComponent, TooltipComponent, BrushComponent, LabelLayout, CanvasRenderer]);
// The schematic of the Yangtze and the Jialing through the core area (src/geo/rivers.json).
echarts.registerMap("two-rivers", rivers as unknown as Parameters<typeof echarts.registerMap>[1]);

export { echarts };
export const RIVERS_BOUNDS = (() => {
  let [minLon, minLat, maxLon, maxLat] = [180, 90, -180, -90];
  for (const feature of rivers.features) {
    for (const ring of feature.geometry.coordinates) {
      for (const [lon, lat] of ring as number[][]) {
        minLon = Math.min(minLon, lon ?? 180); maxLon = Math.max(maxLon, lon ?? -180);
        minLat = Math.min(minLat, lat ?? 90); maxLat = Math.max(maxLat, lat ?? -90);
      }
    }
  }
  return { minLon, minLat, maxLon, maxLat };
})();
