// The installation's places (GET /api/v1/sites), loaded once, and each site's state from the status.
import { shallowRef } from "vue";
import { api } from "./api";
import { currentLocale } from "./i18n";
import type { SiteInfo, Sites, Status } from "./types";

export type SiteState = "ok" | "fault" | "offline" | "unknown";

export const sites = shallowRef<Sites | null>(null);
let loading: Promise<void> | null = null;

export function loadSites(): Promise<void> {
  loading ??= api<Sites>("GET", "/api/v1/sites").then((data) => {
    sites.value = data;
  });
  return loading;
}

export function allSites(): SiteInfo[] {
  return sites.value?.districts.flatMap((d) => d.sites) ?? [];
}

export function siteName(site: { name: string; name_en: string }): string {
  return currentLocale() === "zh" ? site.name : site.name_en;
}

export function controllerState(status: Status | null, id: string): SiteState {
  const c = status?.controllers[id];
  if (!c) return "unknown";
  if (c.link === "offline") return "offline";
  if (c.faults.length) return "fault";
  return c.link === "online" ? "ok" : "unknown";
}

export function siteState(status: Status | null, site: SiteInfo): SiteState {
  let worst: SiteState = site.controllers.length ? "ok" : "unknown";
  for (const c of site.controllers) {
    const state = controllerState(status, c.id);
    if (state === "offline") return "offline";
    if (state === "fault") worst = "fault";
    else if (state === "unknown" && worst === "ok") worst = "unknown";
  }
  return worst;
}

/** How many controllers a selection of sites reaches (the results' expected count). */
export function controllersIn(siteIds: readonly string[]): number {
  const wanted = new Set(siteIds);
  return allSites().filter((s) => wanted.has(s.id)).reduce((n, s) => n + s.controllers.length, 0);
}

export const STATE_COLOURS: Record<SiteState, string> = { ok: "#3fb950", fault: "#d29922", offline: "#f85149", unknown: "#6e7681" };
