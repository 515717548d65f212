/** The retry layer: tries a request again on the failures the route names, within limits. */
import { sleep, systemClock, type Clock, type Random } from "../clock.ts";
import { timeout } from "../deadline/index.ts";
import { MeshError } from "../errors.ts";
import { cancelBody, derive, metaOf, withHeaders, type Layer, type MeshHeaders, type MeshRequest, type MeshResponse } from "../fetch.ts";
import { HeaderList } from "../headers.ts";
import { DEFAULT_BACKOFF, backoffDelay, retryAfterMs, type Backoff } from "./backoff.ts";
import type { RetryBudget } from "./budget.ts";
import { classify, type RetryOn } from "./classify.ts";
import { replayBody, type TryBody } from "./body.ts";

/** The request header numbering each try: 1 for the first, 2.. for retries (SPEC.md section 1). */
export const ATTEMPT_HEADER = "weft-attempt";

/** Bodies up to 64 KiB are kept for replay: linkerd2-proxy `MAX_BUFFERED_BYTES = 64 * 1024`. */
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024;

/**
 * The longest `retry-after` a retry waits for: 300 s, the default `max_interval` of Envoy's
 * `rate_limited_retry_back_off`. A longer one is returned to the caller instead.
 */
export const DEFAULT_MAX_RETRY_AFTER = 300_000;

/** Hooks for the metrics (`weft_retry_total`, `weft_retry_budget_exhausted_total`). */
export interface RetryObserver {
  /** A retry is about to be made; `attempt` is its number (2 for the first retry). */
  retry?(attempt: number): void;
  /** A retry was due but the budget refused it. */
  budgetExhausted?(): void;
}

/** Options of `retry()`: SPEC.md `Retry`, with durations in ms. */
export interface RetryOptions {
  /** Retries after the first try (Linkerd's `retry.linkerd.io/limit`, whose default is 1). */
  limit: number;
  /** The outcomes that are retried (see `classify`). */
  on: readonly RetryOn[];
  /** The destination's budget (`createRetryBudget`), shared by every request to it. */
  budget: RetryBudget;
  /** The bounds of the jittered backoff; `DEFAULT_BACKOFF` when absent. */
  backoff?: Backoff;
  /** Time allowed for each try's response headers; none when absent or 0. */
  perTryTimeout?: number;
  clock?: Clock;
  random?: Random;
  /** The largest body kept for replay; `DEFAULT_MAX_BUFFERED_BYTES` when absent. */
  maxBufferedBytes?: number;
  /** The longest `retry-after` honoured; `DEFAULT_MAX_RETRY_AFTER` when absent. */
  maxRetryAfter?: number;
  observe?: RetryObserver;
}

/**
 * The route-level retry layer: below `deadline()`, above the balancer, so each try picks an
 * endpoint afresh and a retry naturally lands elsewhere. Every request deposits into the
 * budget (as Finagle's RetryFilter does, so the ratio is retries per original request). A try
 * whose outcome meets `on` is tried again, with `weft-attempt` numbering the tries, while all
 * of these hold: fewer than `limit` retries were made; the body can be sent again (see
 * `replayBody`); the caller has not cancelled; the wait, a jittered backoff or for a 429 its
 * `retry-after`, ends before the request's deadline; and the budget grants a withdrawal.
 * Otherwise the last outcome stands: the last upstream response as it came, or what the last
 * try threw. Upstream 5xx responses are returned, not thrown. The body of each response that
 * is discarded is cancelled. `perTryTimeout` puts `timeout()` below this layer for each try.
 */
export function retry(options: RetryOptions): Layer {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const cap = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  const maxRetryAfter = options.maxRetryAfter ?? DEFAULT_MAX_RETRY_AFTER;
  const { budget, limit, observe } = options;
  const on = [...options.on];
  return (inner) => {
    const next = options.perTryTimeout ? timeout(options.perTryTimeout, { clock })(inner) : inner;
    return async (request) => {
      budget.deposit();
      if (!(limit >= 1) || on.length === 0) return next(withHeaders(request, firstTry));
      const body = await replayBody(request, cap);
      let init = body.first();
      // The first try of a request whose body goes as it is is the request itself (the
      // stack's own, `withHeaders`); the layers below may then change its headers, so every
      // retry starts from a copy of the headers as they came.
      const headers = HeaderList.from(request.headers);
      for (let attempt = 1; ; attempt++) {
        let response: MeshResponse | undefined;
        let error: unknown;
        try {
          response = await next(attempt === 1 && init.body === undefined ? withHeaders(request, firstTry) : numbered(request, attempt, init, headers));
        } catch (e) {
          error = e;
        }
        const outcome = () => {
          if (response) return response;
          throw error;
        };

        const condition = classify(on, response ? { response } : { error });
        if (condition === undefined || attempt > limit || request.signal?.aborted) return outcome();
        const again = body.again();
        if (again === undefined) return outcome();
        let wait = backoffDelay(attempt, backoff, random);
        if (condition === "429" && response) {
          const asked = retryAfterMs(response);
          if (asked !== undefined && asked > maxRetryAfter) return outcome();
          if (asked !== undefined) wait = asked;
        }
        const deadline = metaOf(request).deadline;
        if (deadline !== undefined && clock.now() + wait >= deadline) return outcome();
        if (!budget.withdraw()) {
          observe?.budgetExhausted?.();
          return outcome();
        }

        if (response) cancelBody(response.body);
        observe?.retry?.(attempt + 1);
        try {
          await sleep(clock, wait, request.signal);
        } catch (reason) {
          throw new MeshError("deadline-exceeded", "the request was cancelled while waiting to retry", { cause: reason });
        }
        init = again;
      }
    };
  };
}

/** Marks a request as the first try. */
const firstTry = (headers: MeshHeaders) => headers.set(ATTEMPT_HEADER, "1");

/** A copy of `request` for try `attempt`: its own copy of `headers` with `weft-attempt` set, and the try's body. */
function numbered(request: MeshRequest, attempt: number, body: TryBody, headers: HeaderList): MeshRequest {
  const own = HeaderList.from(headers);
  own.set(ATTEMPT_HEADER, String(attempt));
  return derive(request, body.body === undefined ? { headers: own } : { headers: own, body: body.body });
}
