// Every action the console offers is one of these calls: the same API the CLI uses.
import { session } from "./session";

export class ApiError extends Error {
  constructor(
    public readonly status: number,
    public readonly body: Record<string, unknown>,
    message: string,
  ) {
    super(message);
  }
}

const TIMEOUT_MS = 60_000;

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (session.csrfHeader && session.csrfToken && method !== "GET") headers[session.csrfHeader] = session.csrfToken;
  const abort = new AbortController();
  const timer = window.setTimeout(() => abort.abort(), TIMEOUT_MS);
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal: abort.signal,
    });
  } catch (exc) {
    throw new ApiError(0, {}, exc instanceof Error ? exc.message : String(exc));
  } finally {
    window.clearTimeout(timer);
  }
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text.slice(0, 200) };
  }
  if (!response.ok) {
    const obj = (data && typeof data === "object" ? data : {}) as Record<string, unknown>;
    const message = typeof obj["error"] === "string" ? (obj["error"] as string) : `HTTP ${response.status}`;
    if (response.status === 401) session.ended();
    throw new ApiError(response.status, obj, message);
  }
  return data as T;
}

export function errorText(exc: unknown): string {
  return exc instanceof Error ? exc.message : String(exc);
}
