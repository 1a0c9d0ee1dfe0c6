// The daemon's state as it changes: the status (from the WebSocket's hello and GET /api/v1/status),
// kept up to date by link events, and every event handed to the pages that listen. A dropped socket
// reconnects by itself (capped backoff with jitter) and the state is marked stale meanwhile.
import { computed, reactive, shallowRef, triggerRef } from "vue";
import { api } from "./api";
import type { LiveEvent, Status } from "./types";

export const live = reactive({
  connected: false,
  stale: true,
  retryIn: 0,
  lastMessageAt: 0,
  reconnects: 0,
  /** Bumped when controllers' states change (the map redraws on it, at most once a frame). */
  version: 0,
});

/** The status: a shallow ref (5,000 controllers are not made deeply reactive); pages watch
 * ``live.version`` or this ref. */
export const status = shallowRef<Status | null>(null);

/** Whether the console is a city daemon's: its status names the districts it federates. */
export const isCity = computed(() => status.value?.districts !== undefined);

type Listener = (event: LiveEvent) => void;
const listeners = new Set<Listener>();

export function onLiveEvent(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const BACKOFF_MS = [500, 1000, 2000, 4000, 5000];
let socket: WebSocket | null = null;
let attempt = 0;
let statusTimer: number | null = null;
let bumpScheduled = false;

function bump(): void {
  if (bumpScheduled) return;
  bumpScheduled = true;
  requestAnimationFrame(() => {
    bumpScheduled = false;
    live.version++;
    triggerRef(status);
  });
}

export async function refreshStatus(): Promise<void> {
  status.value = await api<Status>("GET", "/api/v1/status");
  bump();
}

/** Fetch the status again soon (after a command: overrides, pending channels), at most once a second. */
function refreshSoon(): void {
  if (statusTimer !== null) return;
  statusTimer = window.setTimeout(() => {
    statusTimer = null;
    refreshStatus().catch(() => undefined);
  }, 300);
}

function apply(event: LiveEvent): void {
  const current = status.value;
  switch (event.type) {
    case "hello":
      status.value = event.status;
      live.stale = false;
      bump();
      break;
    case "link":
      if (current) {
        const controller = current.controllers[event.controller];
        if (controller) {
          const was = controller.link;
          controller.link = event.state;
          controller.last_error = event.error;
          if (was !== event.state) current.controllers_online += (event.state === "online" ? 1 : 0) - (was === "online" ? 1 : 0);
          bump();
        }
      }
      break;
    case "command":
    case "converged":
    case "district":
      refreshSoon();
      break;
    case "overflow":
      refreshStatus().catch(() => undefined);
      break;
    default:
      break;
  }
}

function connect(): void {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
  socket = ws;
  ws.onopen = () => {
    attempt = 0;
    live.connected = true;
    live.retryIn = 0;
  };
  ws.onmessage = (message: MessageEvent<string>) => {
    live.lastMessageAt = Date.now();
    let events: LiveEvent[];
    try {
      const parsed: unknown = JSON.parse(message.data);
      events = (Array.isArray(parsed) ? parsed : [parsed]) as LiveEvent[];
    } catch {
      return;
    }
    for (const event of events) {
      apply(event);
      for (const listener of listeners) listener(event);
    }
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    live.connected = false;
    live.stale = true;
    const delay = (BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)] ?? 5000) * (0.8 + Math.random() * 0.4);
    attempt++;
    live.reconnects++;
    live.retryIn = Math.ceil(delay / 1000);
    window.setTimeout(connect, delay);
  };
}

export function startLive(): void {
  if (socket === null) connect();
}

/** Close the socket as a network failure would (the browser tests use it to see the stale state). */
export function dropSocket(): void {
  socket?.close();
}
