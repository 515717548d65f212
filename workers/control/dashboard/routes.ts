/**
 * The dashboard's routes. Pages are server-rendered shells (Hono's `html` helper) that a
 * script fills from the control API's own read routes, which accept the session cookie as a
 * credential of the session's kind. Login is a form POST of a token (admin or read-only);
 * the cookie is `HttpOnly`, `SameSite=Strict`, and `Secure` unless the dashboard is served on
 * loopback; a POST is accepted only from the dashboard's own origin, and a state-changing API
 * call made with the cookie (a tap started from the page) must carry the session's CSRF token.
 */
import type { Hono } from "hono";
import { getCookie, setCookie, deleteCookie } from "hono/cookie";
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import { MeshError } from "../../../src/core/errors.ts";
import type { ControlDeps, ControlHono, RouteKit } from "../app.ts";
import type { Caller } from "../auth.ts";
import { SESSION_TTL_MS } from "../stats/sessions.ts";
import appCss from "./app.client.css" with { type: "text" };
import appJs from "./app.client.js" with { type: "text" };
import { loginPage, page, type PageName } from "./pages.ts";

/** The session cookie's name. */
export const SESSION_COOKIE = "weft_session";
/** The header a cookie-authenticated write must carry, with the session's CSRF token. */
export const CSRF_HEADER = "weft-csrf";

const SESSION_ID = /^[0-9a-f]{64}$/;
const SERVICE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

// The pages load nothing from elsewhere and run no inline script (esbuild-free: the script is a file of its own).
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on the login form, which the origin check refuses.
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
};

const ASSETS: Record<string, { type: string; body: string }> = {
  "uplot.js": { type: "text/javascript; charset=utf-8", body: uplotJs },
  "uplot.css": { type: "text/css; charset=utf-8", body: uplotCss },
  "app.js": { type: "text/javascript; charset=utf-8", body: appJs },
  "app.css": { type: "text/css; charset=utf-8", body: appCss },
};

/** Whether `request` reached us on a loopback host, where a cookie cannot be `Secure` over plain HTTP. */
function onLoopback(request: Request): boolean {
  const host = new URL(request.url).hostname;
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]";
}

/** Whether a POST comes from the dashboard's own origin (`Origin`, else `Referer`; neither: refused). */
function sameOrigin(request: Request): boolean {
  const own = new URL(request.url).origin;
  const origin = request.headers.get("origin");
  if (origin !== null) return origin === own;
  const referer = request.headers.get("referer");
  if (referer === null) return false;
  try {
    return new URL(referer).origin === own;
  } catch {
    return false;
  }
}

/**
 * The caller a session cookie stands for, or undefined. A request that is not a GET or HEAD
 * counts only with the session's CSRF token in `weft-csrf` and from the dashboard's origin.
 */
export async function sessionCaller(request: Request, deps: ControlDeps): Promise<Caller | undefined> {
  const id = cookieOf(request);
  if (id === undefined) return undefined;
  const session = await deps.stats().sessionGet(id);
  if (!session) return undefined;
  if (request.method !== "GET" && request.method !== "HEAD") {
    if (request.headers.get(CSRF_HEADER) !== session.csrf || !sameOrigin(request)) return undefined;
  }
  return { id: `dashboard:${session.kind}`, admin: session.kind === "admin", kind: session.kind };
}

function cookieOf(request: Request): string | undefined {
  const header = request.headers.get("cookie");
  if (header === null) return undefined;
  for (const part of header.split(";")) {
    const [name, value] = part.trim().split("=", 2);
    if (name === SESSION_COOKIE && value !== undefined && SESSION_ID.test(value)) return value;
  }
  return undefined;
}

/** Mounts the dashboard under `/dashboard`, and `/` as a redirect to it. */
export function dashboardRoutes(app: Hono<ControlHono>, kit: RouteKit): void {
  const { deps } = kit;

  const respond = (body: string, status = 200, extra: Record<string, string> = {}) =>
    new Response(body, { status, headers: { "content-type": "text/html; charset=utf-8", ...SECURITY_HEADERS, ...extra } });

  app.get("/", (c) => c.redirect("/dashboard", 302));

  app.get("/dashboard/assets/:name", (c) => {
    const name = c.req.param("name");
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) throw new MeshError("unknown-service", "no such dashboard asset");
    return new Response(asset.body, { headers: { "content-type": asset.type, "x-content-type-options": "nosniff", "cache-control": "public, max-age=300" } });
  });

  app.get("/dashboard/login", async (c) => respond(await loginPage({})));

  app.post("/dashboard/login", async (c) => {
    if (!sameOrigin(c.req.raw)) return respond(await loginPage({ error: "The login form must be sent from this dashboard." }), 403);
    let token = "";
    try {
      const form = await c.req.formData();
      const value = form.get("token");
      if (typeof value === "string") token = value.trim();
    } catch {
      // A body that is not a form is a failed login like any other.
    }
    // The token is checked as the API checks a bearer credential, and never echoed or logged.
    const probe = new Request(c.req.url, { headers: { authorization: `Bearer ${token}` } });
    const caller = token && token.length <= 8192 ? await deps.authenticate(probe) : undefined;
    if (!caller || (caller.kind !== "admin" && caller.kind !== "read-only")) {
      return respond(await loginPage({ error: "That token is not an admin or read-only token of this control plane." }), 401);
    }
    const { id } = await deps.stats().sessionStart(caller.kind);
    setCookie(c, SESSION_COOKIE, id, { path: "/", httpOnly: true, sameSite: "Strict", secure: !onLoopback(c.req.raw), maxAge: SESSION_TTL_MS / 1000 });
    c.header("cache-control", "no-store");
    return c.redirect("/dashboard", 303);
  });

  app.post("/dashboard/logout", async (c) => {
    if (!sameOrigin(c.req.raw)) throw new MeshError("forbidden", "the logout form must be sent from this dashboard");
    const id = getCookie(c, SESSION_COOKIE);
    if (id !== undefined && SESSION_ID.test(id)) await deps.stats().sessionEnd(id);
    deleteCookie(c, SESSION_COOKIE, { path: "/" });
    return c.redirect("/dashboard/login", 303);
  });

  const pageRoute = (path: string, name: PageName) => {
    app.get(path, async (c) => {
      const id = cookieOf(c.req.raw);
      const session = id === undefined ? undefined : await deps.stats().sessionGet(id);
      // Logged out: the login page, with 401, whatever the page.
      if (!session) return respond(await loginPage({}), 401);
      const service = c.req.param("name");
      if (service !== undefined && !SERVICE.test(service)) throw new MeshError("bad-request", "a service name is a DNS label");
      return respond(await page(name, { kind: session.kind, csrf: session.csrf, ...(service !== undefined && { service }) }));
    });
  };
  pageRoute("/dashboard", "overview");
  pageRoute("/dashboard/topology", "topology");
  pageRoute("/dashboard/services/:name", "service");
  pageRoute("/dashboard/status", "status");
  pageRoute("/dashboard/tap", "tap");
}
