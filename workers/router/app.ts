/**
 * The router worker's logic, free of `cloudflare:*` imports so tests can build it with fakes:
 * one isolate's data plane (`createProxy`) for the service this router fronts, its config
 * from KV (or the control worker), its identity from the control worker, and its metrics
 * flushed to the control worker off the request path.
 */
import type { Snapshot } from "../../src/core/config/index.ts";
import { SnapshotSchema, validate } from "../../src/core/config/index.ts";
import { deadline } from "../../src/core/deadline/index.ts";
import { MeshError, errorResponse } from "../../src/core/errors.ts";
import { withMeta, type Fetch, type MeshResponse } from "../../src/core/fetch.ts";
import { createRegistry } from "../../src/core/metrics/index.ts";
import { systemClock } from "../../src/core/clock.ts";
import { createTracing, readTracingEnv, type Tracing } from "../../src/core/trace/index.ts";
import { createTapper } from "../../src/core/tap/index.ts";
import type { MetricsDelta, Registry } from "../../src/core/metrics/index.ts";
import { createTrustBundle, createVerifier, workerId } from "../../src/identity/index.ts";
import type { Verifier } from "../../src/identity/index.ts";
import { CONTROL_AUDIENCE, createControlClient, createProxy, serviceOf, toOrigin, toWebRequest, toWebResponse } from "../../src/proxy/index.ts";
import type { ControlClient, Proxy } from "../../src/proxy/index.ts";
import { parseEnv } from "./env.ts";
import { bindingLimiter } from "./rate-limit.ts";
import type { RouterEnv } from "./env.ts";

/** What the router needs of the Workers `ExecutionContext`. */
export interface WaitUntil {
  waitUntil(task: Promise<unknown>): void;
}

/** The router's two sides, as the entrypoints in `index.ts` call them. */
export interface RouterApp {
  /** The default `fetch` handler: calls from other routers and the internet to this service. */
  inbound(request: Request, ctx: WaitUntil): Promise<Response>;
  /** The `Outbound` entrypoint: the app's calls to other services (`http://<service>/...`). */
  outbound(request: Request, ctx: WaitUntil): Promise<Response>;
}

/** Options of `createRouterApp`, beyond the env; tests set them. */
export interface RouterDeps {
  /** The raw `env`: validated here, and searched for `binding:NAME` endpoints. */
  env: Record<string, unknown>;
  /** Wall-clock epoch ms. */
  now?: () => number;
  /** Where log lines go (never with a token or secret in them). */
  log?: (line: string) => void;
}

// The control worker is reached through its service binding; the host part is not used.
const CONTROL_URL = "http://weft-control";
// After a failed config refresh, wait this long before trying again (stale-if-error).
const REFRESH_RETRY_MS = 1_000;
// Tap events wait this long for others to join them in one push: well inside the 1 s a tap's reader expects them in.
const TAP_FLUSH_MS = 200;
// A call to a service the snapshot in hand does not name asks the control plane at most this often.
const MISS_COOLDOWN_MS = 1_000;

/** A router app that answers every request with `misconfigured` (500), naming the problem. */
function misconfiguredApp(message: string, log: (line: string) => void): RouterApp {
  log(message);
  const answer = async (request: Request) => errorResponse(new MeshError("misconfigured", message), request);
  return { inbound: answer, outbound: answer };
}

/**
 * Builds the router for one isolate. Config: the snapshot is read from KV (`snapshot`), or
 * from the control worker while KV has none, then used for `WEFT_CONFIG_TTL_MS`; when a
 * refresh fails the snapshot in hand is kept (stale-if-error). Identity: the bootstrap secret
 * is exchanged for tokens at the control worker, cached and renewed in the background.
 */
export function createRouterApp(deps: RouterDeps): RouterApp {
  const log = deps.log ?? ((line: string) => console.error(line));
  const parsed = parseEnv(deps.env);
  if (!parsed.ok) return misconfiguredApp(parsed.message, log);
  // Tracing from the OTEL_* vars and secrets (docs/tracing.md), names only in a problem.
  const tracingEnv = readTracingEnv(deps.env);
  if (!tracingEnv.ok) return misconfiguredApp(`the router is misconfigured: ${tracingEnv.problems.join("; ")}`, log);
  const env: RouterEnv = parsed.env;
  const now = deps.now ?? Date.now;
  const self = env.WEFT_SERVICE;
  const identity = workerId(env.WEFT_TRUST_DOMAIN, self);

  // Background work (token renewals, refreshes, metric pushes) handed to the next request's ctx.
  const pending = new Set<Promise<unknown>>();
  const background = (task: Promise<unknown>) => {
    const tracked = task.catch(() => {}).finally(() => pending.delete(tracked));
    pending.add(tracked);
  };

  const control: ControlClient = createControlClient({
    fetch: (request) => env.CONTROL.fetch(request),
    url: CONTROL_URL,
    credential: { kind: "worker", service: self, secret: env.WEFT_BOOTSTRAP_SECRET },
    now,
    background,
  });

  const registry: Registry = createRegistry();
  // Spans leave in batches after responses (`waitUntil`), never on the request path.
  const tracing: Tracing | undefined = tracingEnv.config
    ? createTracing(tracingEnv.config, { service: self, host: "router", background, clock: systemClock, timer: false })
    : undefined;
  // Tap (issue 14): sampled events leave the isolate a moment after the first of a batch, in
  // the background of the request that made it (Workers keep no timers between requests).
  const tapper = createTapper({
    service: self,
    identity,
    now,
    clock: systemClock,
    dstIdentity: (service) => workerId(env.WEFT_TRUST_DOMAIN, service),
    onEvents: () =>
      background(
        new Promise((resolve) => setTimeout(resolve, TAP_FLUSH_MS)).then(async () => {
          const batch = tapper.take();
          if (batch) await control.pushTapEvents(batch);
        }),
      ),
  });
  let snapshot: Snapshot | undefined;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let loading: Promise<void> | undefined;

  const readKv = async (): Promise<Snapshot | undefined> => {
    if (!env.WEFT_CONFIG) return undefined;
    const text = await env.WEFT_CONFIG.get("snapshot", "text");
    if (text === null) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new MeshError("misconfigured", "the snapshot in WEFT_CONFIG is not JSON");
    }
    // The version in force, read again: nothing changed, and it was validated when it came.
    if (snapshot && (value as { version?: unknown } | null)?.version === snapshot.version) return snapshot;
    // Values read back from KV outlive deploys: validate them like any input.
    const checked = validate(SnapshotSchema, value);
    if (!checked.ok) throw new MeshError("misconfigured", `the snapshot in WEFT_CONFIG is invalid (${checked.issues.length} problems)`);
    return checked.value;
  };

  // A miss (a service or a signing key the snapshot in hand does not have) is answered by the
  // control plane itself, not by KV again: KV can lag a write by up to 60 s, and a service
  // just added must not answer 404, nor a key just rotated in 401, until it catches up.
  let missAt = Number.NEGATIVE_INFINITY;
  let asking: Promise<"newer" | "current" | "unavailable"> | undefined;
  const askControl = (): Promise<"newer" | "current" | "unavailable"> => {
    missAt = now();
    asking ??= (async () => {
      const before = snapshot?.version;
      try {
        const next = await control.snapshot(snapshot ? { version: snapshot.version } : {});
        if (next) apply(next);
        fetchedAt = now();
        return snapshot?.version !== before ? "newer" : "current";
      } catch (error) {
        log(`config read from the control plane failed: ${error instanceof Error ? error.message : String(error)}`);
        return "unavailable";
      } finally {
        asking = undefined;
      }
    })();
    return asking;
  };

  const bundle = createTrustBundle({
    now,
    background,
    // An unknown key id (the bundle limits these to one per cooldown): the control plane's
    // config carries the bundle; KV's copy is the fallback while the control plane is away.
    fetchJwks: async () => {
      if ((await askControl()) === "unavailable") await refresh(true);
      return snapshot?.jwks ?? { keys: [] };
    },
  });

  const apply = (next: Snapshot) => {
    // KV is eventually consistent: never step back to an older version than the one in force.
    if (snapshot && next.version < snapshot.version) return;
    const changed = !snapshot || next.version !== snapshot.version;
    snapshot = next;
    if (changed) {
      proxy.update(next);
      // Mesh-wide tracing (issue 13): the Tracing resource sets the sampler of new requests.
      tracing?.follow(next.tracing);
      background(bundle.set(next.jwks));
    }
  };

  const refresh = (force = false): Promise<void> => {
    if (!force && snapshot && now() - fetchedAt < env.WEFT_CONFIG_TTL_MS) return Promise.resolve();
    loading ??= (async () => {
      try {
        const next = (await readKv()) ?? (await control.snapshot());
        if (next) apply(next);
        fetchedAt = now();
      } catch (error) {
        if (!snapshot) {
          if (error instanceof MeshError && error.code === "misconfigured") throw error;
          throw new MeshError("no-endpoints", "the router has no config yet and the control plane is unreachable", { cause: error });
        }
        log(`config refresh failed, keeping version ${snapshot.version}: ${error instanceof Error ? error.message : String(error)}`);
        fetchedAt = now() - env.WEFT_CONFIG_TTL_MS + REFRESH_RETRY_MS;
      } finally {
        loading = undefined;
      }
    })();
    return loading;
  };

  let verifier: Verifier | undefined;
  const verifierNow = async (): Promise<Verifier> => {
    if (verifier) return verifier;
    // The issuer is the control plane's URL as its tokens name it: configured, or learned
    // from this router's own first token, which came over the CONTROL binding.
    let issuer = env.WEFT_ISSUER_URL ?? control.issuer();
    if (issuer === undefined) {
      await control.tokens.token(CONTROL_AUDIENCE);
      issuer = control.issuer();
    }
    if (issuer === undefined) throw new MeshError("unauthenticated", "the control plane's issuer is not known yet");
    verifier = createVerifier({ bundle, issuer, audience: self, trustDomain: env.WEFT_TRUST_DOMAIN, now });
    return verifier;
  };

  const bindingFetch = (name: string): Fetch => {
    const target = deps.env[name] as Fetcher | undefined;
    if (typeof target?.fetch !== "function") {
      return async () => {
        throw new MeshError("misconfigured", `endpoint binding:${name} names no service binding of this router (add it to wrangler.toml)`);
      };
    }
    return (request) => target.fetch(toWebRequest(request));
  };

  const app: Fetch = env.APP ? (request) => env.APP!.fetch(toWebRequest(request)) : (request) => fetch(toOrigin(request, env.APP_ORIGIN!));

  const proxy: Proxy = createProxy({
    service: self,
    identity,
    registry,
    tokens: control.tokens,
    verifier: { verify: async (token) => (await verifierNow()).verify(token) },
    app,
    tracer: tracing?.tracer,
    peer: (request) => request.headers.get("cf-connecting-ip") ?? undefined,
    tapper,
    // Limits that hold across isolates: the Rate Limiting bindings, when the router has them.
    ...((env.WEFT_RATE_LIMIT || env.WEFT_RATE_LIMIT_TOTAL) && {
      rateLimiter: (scope, limit, local) => bindingLimiter(scope, limit, local, { perKey: env.WEFT_RATE_LIMIT, total: env.WEFT_RATE_LIMIT_TOTAL, period: env.WEFT_RATE_LIMIT_PERIOD, now }),
    }),
    connect: (endpoint) =>
      endpoint.address.startsWith("binding:") ? bindingFetch(endpoint.address.slice("binding:".length)) : (request) => fetch(toOrigin(request, endpoint.address)),
  });

  let lastFlush = now();
  let trailing = false;
  const flush = async () => {
    const delta: MetricsDelta = registry.takeDelta();
    if (delta.requests.length === 0 && delta.responses.length === 0) return;
    if (env.WEFT_ANALYTICS) {
      for (const response of delta.responses) {
        const l = response.labels;
        env.WEFT_ANALYTICS.writeDataPoint({
          indexes: [l.dst_service],
          blobs: [l.direction, l.src, l.dst_service, l.route, String(l.status_code), l.classification, l.error],
          doubles: [response.count, response.sumMs],
        });
      }
    }
    await control.pushStats(delta, self);
  };

  // The caller's budget runs from the request's arrival, as in the sidecar: the config read
  // and everything else before the stack spend it too. A budget that runs out is answered with
  // `deadline-exceeded` (504) at once, whatever is still pending; what is left travels on.
  const fromArrival = deadline();

  const handle = async (request: Request, ctx: WaitUntil, side: Fetch): Promise<Response> => {
    let response: Response;
    let work: Promise<MeshResponse> | undefined;
    let settled = false;
    const run = fromArrival((arrived) => {
      work = (async () => {
        await refresh();
        // Work that outlives the response (a mirrored call) runs under this request's waitUntil.
        return side(withMeta(arrived, { background: (task) => ctx.waitUntil(task.catch(() => {})) }));
      })();
      work.then(
        () => (settled = true),
        () => (settled = true),
      );
      return work;
    });
    try {
      // The stack's answer as the runtime needs it: a Web Response as it is, a light one made one here.
      response = toWebResponse(await run(request));
    } catch (error) {
      response = errorResponse(error, request);
    }
    // Answered before the work under it ended (the budget ran out): a config read or token
    // fetch it started is shared with later requests, and Workers cancel a request's I/O once
    // it has answered, unless the request waits for it.
    if (work && !settled) background(work);
    // Metrics leave the isolate in batches, after the response, never on the request path.
    if (now() - lastFlush >= env.WEFT_STATS_INTERVAL_MS) {
      lastFlush = now();
      background(flush());
    } else if (!trailing) {
      // And the last batch of a burst leaves one interval later, in the background of the
      // request that started it, rather than waiting for a request that may never come.
      trailing = true;
      const wait = lastFlush + env.WEFT_STATS_INTERVAL_MS - now();
      background(
        new Promise((resolve) => setTimeout(resolve, wait)).then(() => {
          trailing = false;
          if (now() - lastFlush < env.WEFT_STATS_INTERVAL_MS) return;
          lastFlush = now();
          return flush();
        }),
      );
    }
    // A batch of spans, when one is due (full, or the schedule delay passed).
    tracing?.exporter.due();
    if (pending.size) ctx.waitUntil(Promise.allSettled([...pending]));
    return response;
  };

  // A service this snapshot does not name may be newer than it: ask once, then route again.
  // A host that is no service's name at all (a Worker lives in no namespace, so only the bare
  // `orders` is one: createProxy's default naming rule) is no reason to ask.
  const outbound: Fetch = async (request) => {
    try {
      return await proxy.outbound(request);
    } catch (error) {
      const miss = error instanceof MeshError && error.code === "unknown-service" && !(request.body instanceof ReadableStream && request.body.locked) && serviceOf(request) !== undefined;
      if (!miss || asking === undefined && now() - missAt < MISS_COOLDOWN_MS) throw error;
      if ((await askControl()) !== "newer") throw error;
      return proxy.outbound(request);
    }
  };

  return {
    inbound: (request, ctx) => handle(request, ctx, proxy.inbound),
    outbound: (request, ctx) => handle(request, ctx, outbound),
  };
}
