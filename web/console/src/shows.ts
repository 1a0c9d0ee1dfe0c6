// The configured shows and the running (or last) one, followed through ``show`` events.
import { reactive } from "vue";
import { api } from "./api";
import { onLiveEvent } from "./live";
import type { ShowInfo, ShowRun } from "./types";

export const shows = reactive({ list: [] as ShowInfo[], run: null as ShowRun | null, loaded: false });

let listening = false;

export async function loadShows(): Promise<void> {
  const [list, state] = await Promise.all([
    api<ShowInfo[]>("GET", "/api/v1/shows"),
    api<{ run: ShowRun | null }>("GET", "/api/v1/shows/status"),
  ]);
  shows.list = list;
  shows.run = state.run;
  shows.loaded = true;
  if (!listening) {
    listening = true;
    onLiveEvent((event) => {
      if (event.type !== "show") return;
      const { type: _type, ...run } = event;
      shows.run = { ...(shows.run && shows.run.run_id === run.run_id ? shows.run : {}), ...run };
    });
  }
}

export function isRunning(run: ShowRun | null): boolean {
  return run !== null && (run.status === "starting" || run.status === "running" || run.status === "holding");
}
