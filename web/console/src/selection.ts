// Sites selected on the map: the selector a scene or a curtailment is applied to, on any page.
import { computed, reactive } from "vue";

export const selection = reactive({ sites: [] as string[] });

export const selector = computed(() => selection.sites.map((id) => `site:${id}`).join(", "));

export function toggleSite(id: string): void {
  const at = selection.sites.indexOf(id);
  if (at >= 0) selection.sites.splice(at, 1);
  else selection.sites.push(id);
}

export function clearSelection(): void {
  selection.sites.splice(0);
}

export function addSites(ids: readonly string[]): void {
  for (const id of ids) if (!selection.sites.includes(id)) selection.sites.push(id);
}
