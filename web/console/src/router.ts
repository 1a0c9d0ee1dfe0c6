// Pages by the URL's hash (#/map): no server routes beyond "/", and a bookmark opens its page.
import { ref } from "vue";
import type { Permission } from "./session";

export type PageId = "dashboard" | "map" | "scenes" | "schedule" | "faults" | "reports" | "audit" | "users";

export interface PageInfo {
  id: PageId;
  /** What a caller needs to see the page at all. */
  needs: Permission;
  /** False until the API the page needs exists: the page then says "not yet available". */
  available: boolean;
}

export const PAGES: readonly PageInfo[] = [
  { id: "dashboard", needs: "read", available: true },
  { id: "map", needs: "read", available: true },
  { id: "scenes", needs: "read", available: true },
  { id: "schedule", needs: "read", available: true },
  { id: "faults", needs: "read", available: true },
  { id: "reports", needs: "read", available: true },
  { id: "audit", needs: "administer", available: true },
  { id: "users", needs: "administer", available: false },
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
