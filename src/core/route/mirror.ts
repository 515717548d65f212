/**
 * Gateway API's RequestMirror filter: a copy of a share of a route's requests goes to another
 * service, fire-and-forget. The caller's response and latency never depend on the copy.
 */
import type { Clock, Random } from "../clock.ts";
import { bodyStream, metaOf, OwnedRequest, derive, cancelBody, type Fetch, type Layer, type MeshRequest } from "../fetch.ts";
import { MeshError } from "../errors.ts";
import { HeaderList } from "../headers.ts";
import { ATTEMPT_HEADER } from "../retry/index.ts";
import type { MirrorLabels } from "../metrics/index.ts";

/** The request header every mirrored copy carries, so the mirror's app can tell copies apart. */
export const MIRROR_HEADER = "weft-mirror";

/**
 * Bodies mirrored at most, in bytes. Our number: a copy is held in memory while both sends
 * use it, so 64 KiB × `DEFAULT_MAX_MIRRORS_IN_FLIGHT` bounds it at 6.4 MB per process or
 * isolate (a Worker has 128 MB). Envoy buffers a mirrored body up to the connection's buffer
 * limit (1 MiB by default); ours is smaller because a Worker's memory is.
 */
export const DEFAULT_MIRROR_MAX_BODY_BYTES = 64 * 1024;

/**
 * Copies in flight at once per process or isolate; past it, copies are dropped and counted.
 * Our number: a hung mirror then holds at most 100 requests (and their bodies), while a
 * healthy one at 10 ms answers keeps up with 10,000 copies a second.
 */
export const DEFAULT_MAX_MIRRORS_IN_FLIGHT = 100;

/** How long a copy may take before it is abandoned, when the filter names no timeout: 10 s. */
export const DEFAULT_MIRROR_TIMEOUT_MS = 10_000;

/** Copies in flight, shared by every mirror layer of one process or isolate. */
export interface MirrorPool {
  inFlight: number;
  readonly max: number;
}

/** A pool of `max` copies in flight; per process (sidecar) or per isolate (router). */
export function createMirrorPool(max = DEFAULT_MAX_MIRRORS_IN_FLIGHT): MirrorPool {
  return { inFlight: 0, max };
}

/** Options of the `mirror` layer. */
export interface MirrorOptions {
  /** The mirror's name, for metrics (`mirror` label). */
  service: string;
  /** Sends a copy: the mirror service's backend level (balancer → endpoints). */
  send: Fetch;
  /** The share of requests copied, 0..1. */
  share: number;
  maxBodyBytes?: number;
  timeoutMs?: number;
  pool: MirrorPool;
  clock: Clock;
  random: Random;
  /** Counts each copy's outcome (`weft_mirror_total`). */
  observe?: (outcome: MirrorLabels["outcome"]) => void;
}

/**
 * The route level's mirror layer, after header filters and outside retry, so a call is copied
 * once, with the headers its backend gets. A sampled request is copied to `send` with
 * `weft-mirror: 1` and `weft-attempt: 1`, its own deadline (`timeoutMs`, not the caller's) and
 * no tie to the caller's cancellation; the copy's answer is dropped unread and only counted.
 * The work is handed to the host through `RequestMeta.background` (`waitUntil` in a Worker).
 *
 * A body is copied only when its length is declared and at most `maxBodyBytes`: it is read
 * once into memory and both sends use the bytes. Other bodies are not mirrored (counted as
 * `dropped-body`), so the primary call streams as before. Past `pool.max` copies in flight,
 * copies are dropped (`dropped-in-flight`).
 */
export function mirror(options: MirrorOptions): Layer {
  const { send, share, pool, clock, random } = options;
  const maxBody = options.maxBodyBytes ?? DEFAULT_MIRROR_MAX_BODY_BYTES;
  const timeoutMs = options.timeoutMs ?? DEFAULT_MIRROR_TIMEOUT_MS;
  const observe = options.observe ?? (() => {});
  if (!(share > 0)) return (next) => next;

  return (next) => async (request) => {
    if (random() >= share) return next(request);
    if (pool.inFlight >= pool.max) {
      observe("dropped-in-flight");
      return next(request);
    }
    let primary: MeshRequest = request;
    let body: Uint8Array | null = null;
    if (request.body !== null) {
      const length = declaredLength(request);
      if (length === undefined || length > maxBody) {
        observe("dropped-body");
        return next(request);
      }
      body = await readAll(request, length);
      primary = derive(request, { body });
    }
    const headers = HeaderList.from(request.headers);
    headers.set(MIRROR_HEADER, "1");
    headers.set(ATTEMPT_HEADER, "1");
    const controller = new AbortController();
    const copy = new OwnedRequest(request.method, request.url, headers, body === null ? null : body.slice(), {
      deadline: clock.now() + timeoutMs,
      signal: controller.signal,
    });
    pool.inFlight++;
    const timer = clock.setTimeout(() => controller.abort(new DOMException("the mirror's timeout ran out", "TimeoutError")), timeoutMs);
    const task = (async () => {
      try {
        const answer = await send(copy);
        cancelBody(answer.body);
        observe(answer.status >= 500 ? "failed" : "completed");
      } catch {
        observe("failed");
      } finally {
        clock.clearTimeout(timer);
        pool.inFlight--;
      }
    })();
    const background = metaOf(request).background;
    if (background) background(task);
    return next(primary);
  };
}

/** The request's declared `content-length`, or undefined when it has none or a bad one. */
function declaredLength(request: MeshRequest): number | undefined {
  const value = request.headers.get("content-length");
  if (value === null || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

/** Reads a body of `length` declared bytes into one array (the host enforces the framing). */
async function readAll(request: MeshRequest, length: number): Promise<Uint8Array> {
  const stream = bodyStream(request.body);
  if (stream === null) return new Uint8Array(0);
  const out = new Uint8Array(length);
  let offset = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (offset + value.byteLength > length) {
      reader.cancel().catch(() => {});
      throw new MeshError("bad-request", "the request body is longer than its content-length");
    }
    out.set(value, offset);
    offset += value.byteLength;
  }
  return offset === length ? out : out.subarray(0, offset);
}
