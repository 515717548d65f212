/**
 * The data plane's side of `weft tap`. The control plane lists the live tap sessions in the
 * snapshot (`taps`); a host's `Tapper` wraps its outbound and inbound `Fetch` and, for a call
 * a session wants, records a `start` and an `end` event into a buffer the host pushes to the
 * control plane. With no session in force the wrapper is one array-length check per call.
 */
import type { Clock } from "../clock.ts";
import { MeshError, toMeshError } from "../errors.ts";
import { own, type Fetch, type MeshHeaders, type MeshRequest } from "../fetch.ts";

/** One tap session as the snapshot carries it (SPEC departure: `Snapshot.taps`, docs/spec-departures.md). */
export interface TapSession {
  /** The session's id, from the control plane. */
  id: string;
  /** The service whose traffic is tapped: its inbound calls, its outbound calls, and calls to it. */
  service: string;
  /** Only the service's outbound calls to this service. */
  to?: string | undefined;
  /** Only calls that matched this route. */
  route?: string | undefined;
  /** Only this method (upper case). */
  method?: string | undefined;
  /** Only paths that start with this. */
  pathPrefix?: string | undefined;
  /** Calls sampled per second per host (a token bucket of one second's worth). */
  maxRps: number;
  /** When the session ends by itself (ISO 8601). */
  expiresAt: string;
}

/** One event of a tapped call. Header values of `REDACTED_HEADERS` and the service's `tapIgnoreHeaders` are null. */
export interface TapEvent {
  tap: string;
  kind: "start" | "end";
  /** Epoch ms. */
  at: number;
  /** A number the host gives the call, shared by its start and end events. */
  call: number;
  direction: "inbound" | "outbound";
  /** The service of the host that saw the call. */
  host: string;
  method: string;
  authority: string;
  path: string;
  /** The caller's identity: verified (inbound) or this workload's own (outbound); "" when none. */
  src: string;
  /** The destination service. */
  dst: string;
  /** The destination's identity, when the host knows it (outbound: its audience). */
  dstIdentity: string;
  route: string;
  /** From `traceparent`, when the call carries one. */
  trace_id: string | null;
  /** `weft-attempt` of the call as it arrived (inbound), or null. */
  attempt: number | null;
  /** The endpoint the call went to, when the host knows it. */
  endpoint: string | null;
  requestHeaders: [name: string, value: string | null][];
  /** End events only. */
  status?: number;
  error?: string | null;
  latencyMs?: number;
  responseHeaders?: [name: string, value: string | null][];
}

/** What a host pushes: events, and per session the calls it matched but did not sample. */
export interface TapBatch {
  events: TapEvent[];
  dropped: Record<string, number>;
}

/** Headers whose values a tap never shows, whatever the config says. */
export const REDACTED_HEADERS: readonly string[] = ["authorization", "cookie", "set-cookie", "weft-identity", "proxy-authorization"];

/** Linkerd's `viz tap` samples at 100 requests per second by default (`--max-rps`). */
export const DEFAULT_TAP_MAX_RPS = 100;

/** Events a host holds between pushes; past it, matched calls count as dropped. Our number: two seconds at the default rate, start and end. */
export const MAX_TAP_EVENTS_PER_PUSH = 4 * DEFAULT_TAP_MAX_RPS;

/** Options of `createTapper`. */
export interface TapperOptions {
  /** The service this host fronts. */
  service: string;
  /** This workload's SPIFFE ID (outbound `src`). */
  identity?: string | undefined;
  /** Trust domain, to name a destination's identity (`spiffe://<td>/...`); optional. */
  dstIdentity?: (service: string) => string;
  /** Epoch ms. */
  now: () => number;
  /** The clock latency is measured on. */
  clock: Clock;
  /** Called when the first event or drop since the last `take` is recorded, so the host schedules a push. */
  onEvents?: () => void;
}

/** A host's tap state: the sessions in force and the events waiting to be pushed. */
export interface Tapper {
  /** Puts the snapshot's sessions and the services' `tapIgnoreHeaders` in force. */
  update(sessions: readonly TapSession[], ignore: ReadonlyMap<string, readonly string[]>): void;
  /** `fetch` wrapped for one direction: records calls sessions want, else passes them on. */
  wrap(direction: "inbound" | "outbound", fetch: Fetch, destinationOf: (request: MeshRequest) => string | undefined): Fetch;
  /** Takes what is buffered (events and drop counts), or undefined when there is nothing. */
  take(): TapBatch | undefined;
  /** Whether any session is in force. */
  active(): boolean;
}

interface Bucket {
  session: TapSession;
  until: number;
  tokens: number;
  at: number;
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/;

/** The trace id of a W3C `traceparent` header, or null when absent or malformed (or all zeros, which the spec makes invalid). */
export function traceIdOf(headers: MeshHeaders): string | null {
  const value = headers.get("traceparent");
  if (value === null) return null;
  const id = TRACEPARENT.exec(value.trim().toLowerCase())?.[1];
  return id === undefined || /^0+$/.test(id) ? null : id;
}

// Paths and authorities are cut to these lengths: an event is for reading, not replay.
const MAX_FIELD = 512;
const MAX_HEADERS = 64;

function headerList(headers: MeshHeaders, hidden: (name: string) => boolean): [string, string | null][] {
  const list: [string, string | null][] = [];
  headers.forEach((value, name) => {
    if (list.length >= MAX_HEADERS) return;
    const lower = name.toLowerCase();
    list.push([lower, hidden(lower) ? null : value.slice(0, MAX_FIELD)]);
  });
  return list;
}

/** Creates a host's tap state (per isolate or per process). */
export function createTapper(options: TapperOptions): Tapper {
  const { service: self, now, clock } = options;
  let buckets: Bucket[] = [];
  let ignore: ReadonlyMap<string, readonly string[]> = new Map();
  let events: TapEvent[] = [];
  let dropped: Record<string, number> = {};
  let calls = 0;

  // Whether the host has been told there is something to push since the last `take`.
  let told = false;
  const tell = () => {
    if (told) return;
    told = true;
    options.onEvents?.();
  };

  const drop = (id: string) => {
    dropped[id] = (dropped[id] ?? 0) + 1;
    tell();
  };

  const push = (event: TapEvent) => {
    if (events.length >= MAX_TAP_EVENTS_PER_PUSH) {
      if (event.kind === "start") drop(event.tap);
      return;
    }
    events.push(event);
    tell();
  };

  const wants = (s: TapSession, direction: "inbound" | "outbound", dst: string, method: string, path: string, route: string): boolean => {
    const ours = self === s.service && (s.to === undefined || (direction === "outbound" && dst === s.to));
    const toIt = s.to === undefined && direction === "outbound" && dst === s.service && self !== s.service;
    if (!ours && !toIt) return false;
    if (s.method !== undefined && s.method !== method) return false;
    if (s.pathPrefix !== undefined && !path.startsWith(s.pathPrefix)) return false;
    if (s.route !== undefined && s.route !== route) return false;
    return true;
  };

  /** Takes a token from the session's bucket: at most `maxRps` calls a second, a second's worth at once. */
  const sample = (bucket: Bucket, at: number): boolean => {
    const rate = bucket.session.maxRps;
    bucket.tokens = Math.min(rate, bucket.tokens + ((at - bucket.at) / 1000) * rate);
    bucket.at = at;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  };

  const wrap = (direction: "inbound" | "outbound", fetch: Fetch, destinationOf: (request: MeshRequest) => string | undefined): Fetch => {
    return async (request) => {
      // No session: the call costs this one check.
      if (buckets.length === 0) return fetch(request);
      const at = now();
      const dst = direction === "inbound" ? self : (destinationOf(request) ?? "");
      let path = "";
      let authority = "";
      try {
        const url = new URL(request.url);
        path = url.pathname;
        authority = url.host;
      } catch {
        // A request the host could not parse is refused below; its event shows no path.
      }
      const method = request.method.toUpperCase();
      const chosen: Bucket[] = [];
      for (const bucket of buckets) {
        if (bucket.until <= at) continue;
        // The route is known only once matched; a route filter is applied at the end.
        if (!wants(bucket.session, direction, dst, method, path, bucket.session.route ?? "")) continue;
        if (sample(bucket, at)) chosen.push(bucket);
        else drop(bucket.session.id);
      }
      if (chosen.length === 0) return fetch(request);

      // The stack's own copy, so the route and the verified caller the layers below put in its
      // metadata are there to read at the end (a Web request carries no metadata).
      const owned = own(request);
      const hidden = (name: string) => REDACTED_HEADERS.includes(name) || (ignore.get(dst)?.includes(name) ?? false) || (ignore.get(self)?.includes(name) ?? false);
      const call = ++calls;
      const attempt = direction === "inbound" ? Number(request.headers.get("weft-attempt")) || null : null;
      const base = {
        call,
        direction,
        host: self,
        method,
        authority: authority.slice(0, MAX_FIELD),
        path: path.slice(0, MAX_FIELD),
        src: direction === "outbound" ? (options.identity ?? "") : "",
        dst,
        dstIdentity: direction === "outbound" ? (options.dstIdentity?.(dst) ?? "") : (options.identity ?? ""),
        trace_id: traceIdOf(request.headers),
        attempt,
        endpoint: null,
        requestHeaders: headerList(request.headers, hidden),
      };
      const started = clock.now();
      // The route is known only once the call has matched one: a session that filters on a
      // route gets end events only.
      for (const bucket of chosen) if (bucket.session.route === undefined) push({ tap: bucket.session.id, kind: "start", at, route: "", ...base });
      const finish = (status: number, error: string | null, headers: MeshHeaders | undefined) => {
        const meta = owned.meta;
        const route = meta.route ?? "";
        const src = direction === "inbound" ? (meta.client ?? "") : base.src;
        for (const bucket of chosen) {
          if (bucket.session.route !== undefined && bucket.session.route !== route) continue;
          push({
            tap: bucket.session.id,
            kind: "end",
            at: now(),
            ...base,
            src,
            route,
            status,
            error,
            latencyMs: clock.now() - started,
            responseHeaders: headers ? headerList(headers, hidden) : [],
          });
        }
      };
      try {
        const response = await fetch(owned);
        finish(response.status, response.headers.get("weft-error"), response.headers);
        return response;
      } catch (error) {
        const meshError = error instanceof MeshError ? error : toMeshError(error);
        finish(meshError.status, meshError.code, undefined);
        throw error;
      }
    };
  };

  return {
    update(sessions, ignoreHeaders) {
      const at = now();
      const old = new Map(buckets.map((b) => [b.session.id, b]));
      buckets = sessions
        .map((session) => ({ session, until: Date.parse(session.expiresAt) }))
        .filter(({ until }) => until > at)
        .map(({ session, until }) => {
          const kept = old.get(session.id);
          return kept ? { ...kept, session, until } : { session, until, tokens: session.maxRps, at };
        });
      ignore = new Map([...ignoreHeaders].map(([name, list]) => [name, list.map((h) => h.toLowerCase())]));
    },
    wrap,
    take() {
      told = false;
      if (events.length === 0 && Object.keys(dropped).length === 0) return undefined;
      const batch = { events, dropped };
      events = [];
      dropped = {};
      return batch;
    },
    active: () => buckets.length > 0,
  };
}
