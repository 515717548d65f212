/**
 * Dashboard sessions: a login exchanges an admin or read-only token for a random session id
 * (the cookie) and a CSRF token. In memory, per Durable Object instance: a restart logs
 * everyone out, which costs a login.
 */

/** How long a session lasts: 12 hours, as Grafana's default `login_maximum_lifetime_duration` is of the same order (a working day). */
export const SESSION_TTL_MS = 12 * 60 * 60_000;
/** Sessions at once; the oldest goes past it. */
export const MAX_SESSIONS = 10_000;

/** One dashboard session. */
export interface Session {
  kind: "admin" | "read-only";
  csrf: string;
  /** Epoch ms. */
  expiresAt: number;
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let text = "";
  for (const b of bytes) text += b.toString(16).padStart(2, "0");
  return text;
}

/** The sessions' state. */
export interface Sessions {
  start(kind: Session["kind"], nowMs: number): { id: string; session: Session };
  get(id: string, nowMs: number): Session | undefined;
  end(id: string): void;
}

/** A new, empty session table. */
export function createSessions(): Sessions {
  const table = new Map<string, Session>();
  return {
    start(kind, nowMs) {
      if (table.size >= MAX_SESSIONS) table.delete(table.keys().next().value!);
      const id = randomId();
      const session = { kind, csrf: randomId(), expiresAt: nowMs + SESSION_TTL_MS };
      table.set(id, session);
      return { id, session };
    },
    get(id, nowMs) {
      const session = table.get(id);
      if (!session) return undefined;
      if (session.expiresAt <= nowMs) {
        table.delete(id);
        return undefined;
      }
      return session;
    },
    end(id) {
      table.delete(id);
    },
  };
}
