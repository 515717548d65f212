/**
 * What the dashboard draws beyond `GET /v1/stats`: who calls whom (edges from a caller's
 * identity to a destination service) and per-second counts per route over the last minutes.
 * Built from the same pushed deltas as the golden metrics (their response counts, placed on
 * the second they arrive), in memory, per Durable Object instance.
 */

/** Seconds of per-second history kept for charts: five minutes, as `linkerd viz` dashboards show by default. */
export const HISTORY_SECONDS = 300;
/** Seconds the edge figures cover: the golden metrics' one-minute window. */
export const EDGE_WINDOW_SECONDS = 60;
/** Edges and routes kept; our number, far above one mesh's, so memory stays bounded whatever the labels. */
export const MAX_HISTORY_KEYS = 5_000;

/** One edge of the topology: calls from `src` (a SPIFFE ID) to the service `dst` over the last minute. */
export interface Edge {
  src: string;
  dst: string;
  requests: number;
  failures: number;
  successRate: number | null;
  rps: number;
}

/** Per-second counts of one direction and route of a service, oldest second first. */
export interface RouteSeries {
  direction: string;
  route: string;
  requests: number[];
  failures: number[];
}

/** Per-second series of one service: `seconds` are epoch seconds, one per entry of each series. */
export interface ServiceSeries {
  service: string;
  seconds: number[];
  routes: RouteSeries[];
}

interface Counts {
  /** Epoch second → [requests, failures]. */
  slots: Map<number, [number, number]>;
}

/** A response entry of a pushed delta, as far as this reads it (checked here: pushes are input). */
interface ResponseEntry {
  labels?: { direction?: unknown; src?: unknown; dst_service?: unknown; route?: unknown; classification?: unknown };
  count?: unknown;
}

/** The history's state and its readers. */
export interface History {
  /** Adds the response counts of one pushed delta, at `nowMs`. */
  add(responses: unknown, nowMs: number): void;
  /** Every edge with calls in the last minute (outbound calls, whose `src` is the caller's own identity). */
  edges(nowMs: number): Edge[];
  /** The per-second series of one service's routes. */
  series(service: string, nowMs: number): ServiceSeries;
}

const SEP = "\u0000";

/** A new, empty history. */
export function createHistory(): History {
  const edges = new Map<string, Counts>();
  const routes = new Map<string, Counts>();

  const bump = (map: Map<string, Counts>, key: string, sec: number, requests: number, failures: number) => {
    let counts = map.get(key);
    if (!counts) {
      if (map.size >= MAX_HISTORY_KEYS) return;
      counts = { slots: new Map() };
      map.set(key, counts);
    }
    const slot = counts.slots.get(sec);
    if (slot) {
      slot[0] += requests;
      slot[1] += failures;
    } else counts.slots.set(sec, [requests, failures]);
  };

  const prune = (nowSec: number) => {
    for (const map of [edges, routes]) {
      for (const [key, counts] of map) {
        for (const sec of counts.slots.keys()) if (sec <= nowSec - HISTORY_SECONDS) counts.slots.delete(sec);
        if (counts.slots.size === 0) map.delete(key);
      }
    }
  };

  return {
    add(responses, nowMs) {
      if (!Array.isArray(responses)) return;
      const sec = Math.floor(nowMs / 1000);
      for (const entry of responses as ResponseEntry[]) {
        const labels = entry?.labels;
        const count = entry?.count;
        if (typeof count !== "number" || !Number.isInteger(count) || count <= 0 || !labels) continue;
        const { direction, src, dst_service: dst, route, classification } = labels;
        if ((direction !== "inbound" && direction !== "outbound") || typeof src !== "string" || typeof dst !== "string" || typeof route !== "string") continue;
        const failures = classification === "failure" ? count : 0;
        bump(routes, [dst, direction, route].join(SEP), sec, count, failures);
        if (direction === "outbound" && src !== "") bump(edges, [src, dst].join(SEP), sec, count, failures);
      }
      prune(sec);
    },
    edges(nowMs) {
      const nowSec = Math.floor(nowMs / 1000);
      const list: Edge[] = [];
      for (const [key, counts] of edges) {
        let requests = 0;
        let failures = 0;
        for (const [sec, [r, f]] of counts.slots) {
          if (sec <= nowSec - EDGE_WINDOW_SECONDS) continue;
          requests += r;
          failures += f;
        }
        if (requests === 0) continue;
        const [src, dst] = key.split(SEP) as [string, string];
        list.push({ src, dst, requests, failures, successRate: (requests - failures) / requests, rps: requests / EDGE_WINDOW_SECONDS });
      }
      return list.sort((a, b) => (a.src + a.dst < b.src + b.dst ? -1 : 1));
    },
    series(service, nowMs) {
      const nowSec = Math.floor(nowMs / 1000);
      const seconds = Array.from({ length: HISTORY_SECONDS }, (_, i) => nowSec - HISTORY_SECONDS + 1 + i);
      const list: RouteSeries[] = [];
      for (const [key, counts] of routes) {
        const [dst, direction, route] = key.split(SEP) as [string, string, string];
        if (dst !== service) continue;
        list.push({
          direction,
          route,
          requests: seconds.map((s) => counts.slots.get(s)?.[0] ?? 0),
          failures: seconds.map((s) => counts.slots.get(s)?.[1] ?? 0),
        });
      }
      list.sort((a, b) => (a.direction + a.route < b.direction + b.route ? -1 : 1));
      return { service, seconds, routes: list };
    },
  };
}
