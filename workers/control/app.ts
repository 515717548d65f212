/**
 * The control API as a Hono app (SPEC.md section 6): routes per resource family, one access
 * rule per route (public, any verified caller, admin), 404 and 405 as JSON errors, and
 * `onError` as the one place an error becomes a response.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { MeshError, errorResponse } from "../../src/core/errors.ts";
import type { Authenticate, Caller } from "./auth.ts";
import { dashboardRoutes, sessionCaller } from "./dashboard/index.ts";
import { declaredLength, drainBody } from "./http.ts";
import {
  DEFAULT_LEASE_TTL_MS,
  DEFAULT_MAX_APPLY_RESOURCES,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_JSON_DEPTH,
  DEFAULT_MAX_WAIT_SECONDS,
} from "./limits.ts";
import { applyRoutes } from "./routes/apply.ts";
import { auditRoutes } from "./routes/audit.ts";
import { identityRoutes } from "./routes/identity.ts";
import { externalServiceRoutes } from "./routes/external-services.ts";
import { tracingRoutes } from "./routes/tracing.ts";
import { policyRoutes } from "./routes/policies.ts";
import { routeRoutes } from "./routes/routes.ts";
import { serviceRoutes } from "./routes/services.ts";
import { snapshotRoutes } from "./routes/snapshot.ts";
import { statsRoutes } from "./routes/stats.ts";
import { tapRoutes } from "./routes/taps.ts";
import type { Stats } from "./stats/index.ts";
import type { Failure, Outcome, Store } from "./store/index.ts";

/** The store's RPC surface as the app uses it (the Durable Object stub, or a fake in tests). */
export type StoreApi = Pick<
  Store,
  | "get"
  | "list"
  | "write"
  | "endpoints"
  | "register"
  | "deregister"
  | "snapshot"
  | "audit"
  | "jwks"
  | "issueToken"
  | "rotateKeys"
  | "issueCertificate"
  | "trustAnchors"
  | "caStatus"
  | "rotateCa"
  | "maintainKeys"
  | "setWorkerSecret"
  | "deleteWorkerSecret"
  | "workerSecrets"
  | "putCluster"
  | "deleteCluster"
  | "clusters"
  | "startTap"
  | "stopTap"
  | "taps"
>;

/** The metrics aggregator's RPC surface (also the home of tap fan-out and dashboard sessions). */
export type StatsApi = Pick<Stats, "push" | "stats" | "expose" | "history" | "tapPush" | "tapRead" | "tapClose" | "sessionStart" | "sessionGet" | "sessionEnd">;

/** The limits the API enforces at its edge. */
export interface ControlLimits {
  maxBodyBytes: number;
  maxJsonDepth: number;
  maxApplyResources: number;
  maxWaitSeconds: number;
  defaultLeaseTtlMs: number;
}

/** What the app needs; `store` and `stats` are called per request (stubs belong to one request). */
export interface ControlDeps {
  store: () => StoreApi;
  stats: () => StatsApi;
  authenticate: Authenticate;
  trustDomain: string;
  /** Called after the admin rotates keys, so this isolate's verifier drops revoked keys at once. */
  onKeysRotated?: () => Promise<void>;
  limits?: Partial<ControlLimits>;
}

/** Hono's typing of the app: the verified caller travels in `c.var.caller`. */
export type ControlHono = { Variables: { caller: Caller } };

/** A request's context inside a route. */
export type ControlContext = Context<ControlHono>;

/**
 * Who may call a route: anyone; a data plane or the admin (`caller`); anyone who may read
 * (`read`: admin, read-only); that and data planes (`config`); whoever may tap (`tap`: admin,
 * tap token); or the admin only. Dashboard sessions (a cookie) count as their credential's
 * kind for `read`, `config` and `tap` routes only.
 */
export type Access = "public" | "caller" | "read" | "config" | "tap" | "admin";

/** The caller kinds each access admits. */
const ADMITS: Record<Exclude<Access, "public">, readonly Caller["kind"][]> = {
  caller: ["admin", "workload"],
  read: ["admin", "read-only"],
  config: ["admin", "read-only", "workload"],
  tap: ["admin", "tap"],
  admin: ["admin"],
};

/** One method of a route. */
export interface Handler {
  access: Access;
  handle: (c: ControlContext) => Promise<Response> | Response;
}

/** Registers a path with its methods; other methods on it answer 405. */
export type Mount = (path: string, methods: Partial<Record<"GET" | "PUT" | "POST" | "DELETE", Handler>>) => void;

/** A route file's view of the app: the mount function, the deps and the resolved limits. */
export interface RouteKit {
  mount: Mount;
  deps: ControlDeps;
  limits: ControlLimits;
}

/** A 405: the path exists, the method does not. Answered with `bad-request` (SPEC.md has no 405 code) and `allow`. */
export class MethodNotAllowed extends MeshError {
  readonly allow: string;

  constructor(method: string, allow: string[]) {
    super("bad-request", `method ${method.slice(0, 16)} is not allowed here; use ${allow.join(", ")}`);
    this.allow = allow.join(", ");
  }
}

/** Turns a store failure into the error it stands for. */
export function raise(failure: Failure): never {
  const options: { issues?: Failure["issues"]; retryAfter?: number } = {};
  if (failure.issues) options.issues = failure.issues;
  if (failure.retryAfter !== undefined) options.retryAfter = failure.retryAfter;
  throw new MeshError(failure.code, failure.message, options);
}

/** The value of an outcome, or its failure raised. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) raise(outcome);
  return outcome.value;
}

/** The caller of an authenticated route (always set by the time a non-public handler runs). */
export function callerOf(c: ControlContext): Caller {
  return c.get("caller");
}

/** Creates the control API. The app is stateless; create it once per isolate. */
export function createControlApp(deps: ControlDeps): Hono<ControlHono> {
  const limits: ControlLimits = {
    maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
    maxJsonDepth: DEFAULT_MAX_JSON_DEPTH,
    maxApplyResources: DEFAULT_MAX_APPLY_RESOURCES,
    maxWaitSeconds: DEFAULT_MAX_WAIT_SECONDS,
    defaultLeaseTtlMs: DEFAULT_LEASE_TTL_MS,
    ...deps.limits,
  };
  const app = new Hono<ControlHono>();

  // Bodies at the edge, before routing and credentials (as nginx checks client_max_body_size
  // before access): one declared over the limit is refused 413 at once, and after any answer
  // a body the route did not read (a 405, 404 or 401) is drained, so a client that is still
  // sending reads the answer instead of a broken pipe.
  app.use(async (c, next) => {
    if (declaredLength(c.req.raw) > limits.maxBodyBytes) {
      await drainBody(c.req.raw);
      throw new MeshError("payload-too-large", `the body is larger than ${limits.maxBodyBytes} bytes`);
    }
    await next();
    await drainBody(c.req.raw);
  });

  const mount: Mount = (path, methods) => {
    const allow = Object.keys(methods);
    if (allow.includes("GET")) allow.push("HEAD");
    for (const [method, handler] of Object.entries(methods)) {
      app.on(method, path, async (c) => {
        if (handler.access !== "public") {
          let caller = await deps.authenticate(c.req.raw);
          // The dashboard's session cookie, where no bearer credential came (issue 14).
          if (!caller && handler.access !== "caller" && handler.access !== "admin") caller = await sessionCaller(c.req.raw, deps);
          // One answer for a missing, malformed, expired or unknown credential: no hint of what exists.
          if (!caller) throw new MeshError("unauthenticated", "a valid credential is required (authorization: Bearer ...)");
          if (!ADMITS[handler.access].includes(caller.kind)) {
            throw new MeshError("forbidden", handler.access === "admin" ? "this needs the admin credential" : `this needs a credential that may ${handler.access === "tap" ? "tap" : "read"} (${ADMITS[handler.access].join(", ")})`);
          }
          c.set("caller", caller);
        }
        return handler.handle(c);
      });
    }
    app.all(path, (c) => {
      throw new MethodNotAllowed(c.req.method, allow);
    });
  };

  const kit: RouteKit = { mount, deps, limits };
  snapshotRoutes(kit);
  serviceRoutes(kit);
  routeRoutes(kit);
  policyRoutes(kit);
  externalServiceRoutes(kit);
  tracingRoutes(kit);
  applyRoutes(kit);
  auditRoutes(kit);
  identityRoutes(kit);
  statsRoutes(kit);
  tapRoutes(kit);
  dashboardRoutes(app, kit);

  app.all("*", (c) => {
    throw new MeshError("unknown-service", `no control API at ${c.req.method.slice(0, 16)} ${new URL(c.req.url).pathname.slice(0, 200)}`);
  });

  app.onError((error, c) => {
    if (!(error instanceof MeshError)) console.error(`weft-control: unexpected ${error.name}: ${error.message}`);
    const response = errorResponse(error, c.req.raw);
    if (error instanceof MethodNotAllowed) {
      const headers = new Headers(response.headers);
      headers.set("allow", error.allow);
      return new Response(response.body, { status: 405, headers });
    }
    if (error instanceof MeshError && error.code === "unauthenticated") response.headers.set("www-authenticate", 'Bearer realm="weft-control"');
    return response;
  });

  return app;
}
