// Who is using the console and what they may do: the one place the role comes from.
//
// With the users issue's sessions (GET /api/v1/session answers the user, role, permissions and the
// CSRF token), that answer is used as it is. Where the daemon has no sessions yet (404), the
// console is a viewer until an operator gives the API token (kept in this browser's storage), which
// today grants every change.
import { reactive } from "vue";

export type Role = "admin" | "operator" | "maintenance" | "viewer";
export type Permission = "read" | "operate" | "maintain" | "administer";

interface SessionAnswer {
  user: string;
  role: Role;
  permissions: Permission[];
  csrf_header?: string | null;
  csrf_token?: string | null;
}

const TOKEN_KEY = "lightctl.token";
const NAME_KEY = "lightctl.operator";

export const session = reactive({
  loaded: false,
  user: "",
  role: "viewer" as Role,
  permissions: new Set<Permission>(["read"]),
  /** "session" (the users issue), "token" (the API token), or "none". */
  via: "none" as "session" | "token" | "none",
  sessionsSupported: false,
  token: null as string | null,
  operatorName: null as string | null,
  csrfHeader: null as string | null,
  csrfToken: null as string | null,
  notice: "" as "" | "refused",
  refused(): void {
    if (this.via === "token") {
      signOut();
      this.notice = "refused";
    }
  },
});

function asViewer(): void {
  session.user = "";
  session.role = "viewer";
  session.permissions = new Set<Permission>(["read"]);
  session.via = "none";
}

function fromToken(token: string, name: string): void {
  session.token = token;
  session.operatorName = name || null;
  session.user = name || "operator";
  session.role = "operator";
  session.permissions = new Set<Permission>(["read", "operate", "maintain", "administer"]);
  session.via = "token";
}

export async function loadSession(): Promise<void> {
  let answer: Response | null = null;
  try {
    answer = await fetch("/api/v1/session", { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch {
    answer = null;
  }
  if (answer && answer.ok) {
    const data = (await answer.json()) as SessionAnswer;
    session.sessionsSupported = true;
    session.user = data.user;
    session.role = data.role;
    session.permissions = new Set(data.permissions);
    session.via = "session";
    session.csrfHeader = data.csrf_header ?? null;
    session.csrfToken = data.csrf_token ?? null;
  } else {
    session.sessionsSupported = answer !== null && answer.status !== 404;
    const token = localStorage.getItem(TOKEN_KEY);
    if (token) fromToken(token, localStorage.getItem(NAME_KEY) ?? "");
    else asViewer();
  }
  session.loaded = true;
}

export function signInWithToken(token: string, name: string): void {
  localStorage.setItem(TOKEN_KEY, token.trim());
  localStorage.setItem(NAME_KEY, name.trim());
  session.notice = "";
  fromToken(token.trim(), name.trim());
}

export function signOut(): void {
  localStorage.removeItem(TOKEN_KEY);
  session.token = null;
  session.operatorName = null;
  asViewer();
}

export function can(permission: Permission): boolean {
  return session.permissions.has(permission);
}

/** The session and what it may do: every page asks this, never anything else. */
export function useSession(): { session: typeof session; can: typeof can } {
  return { session, can };
}
