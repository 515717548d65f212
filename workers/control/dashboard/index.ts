/**
 * The dashboard (issue 14): read-only pages served by the control worker (overview,
 * topology, a page per service, the data plane's freshness and the audit log, a live tap),
 * behind a login that exchanges an admin or read-only token for a session cookie.
 */
export { dashboardRoutes, sessionCaller, SESSION_COOKIE } from "./routes.ts";
