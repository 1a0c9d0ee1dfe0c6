// Who is using the console and what they may do: the one place the role comes from.
//
// The console runs in the daemon's cookie session (users issue): GET /api/v1/session answers the
// user, role, permissions and the CSRF token that every change sends back. Without a session (or
// when it has ended: idle or absolute timeout, a password change, a user disabled) the browser goes
// to the daemon's sign-in page, which comes back to the page the operator was on.
import { reactive } from "vue";

export type Role = "admin" | "operator" | "maintenance" | "viewer";
export type Permission = "read" | "operate" | "maintain" | "administer";

interface SessionAnswer {
  user: string;
  role: Role;
  crew?: string | null;
  permissions: Permission[];
  csrf_header?: string | null;
  csrf_token?: string | null;
}

export const session = reactive({
  loaded: false,
  user: "",
  crew: null as string | null,
  role: "viewer" as Role,
  permissions: new Set<Permission>(),
  csrfHeader: null as string | null,
  csrfToken: null as string | null,
  /** The daemon said the session is over (401): the sign-in page is on its way. */
  ended(): void {
    toSignIn();
  },
});

/** The daemon's sign-in page, back to this page (its path and the console's route) afterwards. */
export function toSignIn(): void {
  const next = `${location.pathname}${location.hash}`;
  window.location.assign(`/login?next=${encodeURIComponent(next)}`);
}

export async function loadSession(): Promise<void> {
  let answer: Response | null = null;
  try {
    answer = await fetch("/api/v1/session", { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch {
    answer = null;
  }
  if (answer && answer.status === 401) {
    toSignIn();
    return;
  }
  if (answer && answer.ok) {
    const data = (await answer.json()) as SessionAnswer;
    session.user = data.user;
    session.crew = data.crew ?? null;
    session.role = data.role;
    session.permissions = new Set(data.permissions);
    session.csrfHeader = data.csrf_header ?? null;
    session.csrfToken = data.csrf_token ?? null;
  }
  session.loaded = true;
}

export async function signOut(): Promise<void> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (session.csrfHeader && session.csrfToken) headers[session.csrfHeader] = session.csrfToken;
  try {
    await fetch("/api/v1/session", { method: "DELETE", credentials: "same-origin", headers });
  } finally {
    window.location.assign("/login?next=%2F");
  }
}

export function can(permission: Permission): boolean {
  return session.permissions.has(permission);
}

/** The session and what it may do: every page asks this, never anything else. */
export function useSession(): { session: typeof session; can: typeof can } {
  return { session, can };
}
