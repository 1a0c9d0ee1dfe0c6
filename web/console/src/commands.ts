// One operator command followed live: the controllers' results as the WebSocket brings them
// (each ``result`` event of the command this console started), then the answer's full report
// (which also fills in anything the socket missed). Results are kept outside Vue's reactivity and
// the view is told once per animation frame: 5,000 results arriving never cost 5,000 renders.
import { markRaw, reactive } from "vue";
import { errorText } from "./api";
import { onLiveEvent } from "./live";
import type { CommandReport, ControllerResult, ResultStatus } from "./types";

export interface Tracked {
  title: string;
  target: string;
  expected: number | null;
  commandId: number | null;
  results: Map<string, ControllerResult>;
  order: string[];
  counts: Record<ResultStatus, number>;
  startedAt: number;
  summaryAt: number | null;
  elapsedS: number | null;
  error: string | null;
}

export const tracker = reactive({ current: null as Tracked | null, tick: 0 });

let frameScheduled = false;
function touch(): void {
  if (frameScheduled) return;
  frameScheduled = true;
  requestAnimationFrame(() => {
    frameScheduled = false;
    tracker.tick++;
  });
}

function record(tracked: Tracked, controller: string, result: ControllerResult): void {
  const before = tracked.results.get(controller);
  if (before) tracked.counts[before.status]--;
  else tracked.order.push(controller);
  tracked.results.set(controller, result);
  tracked.counts[result.status]++;
}

export async function runCommand(
  title: string,
  target: string,
  expected: number | null,
  call: () => Promise<CommandReport>,
): Promise<CommandReport | null> {
  const tracked: Tracked = markRaw({
    title, target, expected, commandId: null, results: new Map(), order: [],
    counts: { confirmed: 0, unconfirmed: 0, failed: 0, sent: 0 },
    startedAt: performance.now(), summaryAt: null, elapsedS: null, error: null,
  });
  tracker.current = tracked;
  touch();
  const stop = onLiveEvent((event) => {
    if (event.type === "command_started" && tracked.commandId === null && event.source === "operator" && event.target === target) {
      tracked.commandId = event.command_id;
    } else if (event.type === "result" && tracked.commandId !== null && event.command_id === tracked.commandId) {
      const { type: _type, command_id: _id, controller, ...result } = event;
      record(tracked, controller, result);
      touch();
    }
  });
  try {
    const report = await call();
    tracked.commandId = report.command_id;
    for (const [controller, result] of Object.entries(report.controllers)) {
      const seen = tracked.results.get(controller);
      if (!seen || seen.status !== result.status) record(tracked, controller, result);
    }
    tracked.expected = Object.keys(report.controllers).length;
    tracked.elapsedS = report.elapsed_s;
    tracked.summaryAt = performance.now();
    performance.mark("lightctl:command-summary");
    return report;
  } catch (exc) {
    tracked.error = errorText(exc);
    return null;
  } finally {
    stop();
    touch();
  }
}

export function clearCommand(): void {
  tracker.current = null;
}
