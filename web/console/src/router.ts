// Pages by the URL's hash (#/map): no server routes beyond "/", and a bookmark opens its page.
import { ref } from "vue";
import type { Permission } from "./session";

export type PageId = "dashboard" | "map" | "scenes" | "schedule" | "faults" | "reports" | "audit" | "users";

export interface PageInfo {
  id: PageId;
  /** What a caller needs to see the page at all. */
  needs: Permission;
}

export const PAGES: readonly PageInfo[] = [
  { id: "dashboard", needs: "read" },
  { id: "map", needs: "read" },
  { id: "scenes", needs: "read" },
  { id: "schedule", needs: "read" },
  { id: "faults", needs: "read" },
  { id: "reports", needs: "read" },
  { id: "audit", needs: "administer" },
  { id: "users", needs: "administer" },
];

function fromHash(): PageId {
  const wanted = location.hash.replace(/^#\/?/, "").split("?")[0] ?? "";
  return (PAGES.find((p) => p.id === wanted)?.id ?? "dashboard") as PageId;
}

export const currentPage = ref<PageId>(fromHash());

window.addEventListener("hashchange", () => {
  currentPage.value = fromHash();
});

export function go(page: PageId): void {
  location.hash = `#/${page}`;
}
