/**
 * The inbound stack: what calls from other services (or the internet) to this workload go
 * through before its app, as in Linkerd's `linkerd/app/inbound`, in one `stack(...)` that
 * lists its layers outermost first. docs/architecture.md states the same order.
 */
import type { Clock } from "../core/clock.ts";
import { deadline, propagateDeadline } from "../core/deadline/index.ts";
import { stack, type Fetch } from "../core/fetch.ts";
import { metrics, type Registry } from "../core/metrics/index.ts";
import { keyedRateLimit, type KeyedLimiter, type RateLimitKey } from "../core/ratelimit/index.ts";
import type { RequestAuthentication } from "../core/config/index.ts";
import { authenticateEndUser, requireIdentity, type PolicyView, type Verifier } from "../identity/index.ts";

/** What the inbound stack of one route needs. */
export interface InboundLevel {
  /** This workload's service, as policies target it. */
  service: string;
  /** The route the stack serves ("" for none: no route-targeted policy applies). */
  route: string;
  verifier: Verifier;
  /** The policies in force, read per call (they change at run time). */
  policy: () => PolicyView;
  registry: Registry;
  /** The service's end-user authentication (`requestAuthentication`), when its config sets one. */
  endUser?: RequestAuthentication | undefined;
  /** The route's (or service's) rate limiter, when its config sets one, and what keys it. */
  limiter?: { limiter: KeyedLimiter; key: RateLimitKey } | undefined;
  clock: Clock;
}

/**
 * One inbound route's stack over the app, built once per route and snapshot:
 *
 *   end-user authentication (strip claim headers, verify and remove the end user's JWT,
 *     set the verified end user) → identity (strip `weft-client-id`, verify and remove `weft-identity`, set the verified
 *     caller) and authorization → metrics → rate limit → deadline (the caller's budget)
 *     → deadline propagation (what is left, to the app) → the app
 *
 * Metrics sit below identity so `src` is the verified caller, and above the rate limit so
 * its 429s are counted; refusals by identity or policy are counted by the proxy, which
 * sees them thrown.
 */
export function inboundStack(app: Fetch, level: InboundLevel): Fetch {
  const { clock } = level;
  return stack(
    app,
    // End-user JWTs first, so authorization sees the verified end user (docs/end-user-auth.md).
    level.endUser !== undefined && authenticateEndUser({ config: level.endUser, service: level.service }),
    requireIdentity({ verifier: level.verifier, service: level.service, policy: level.policy, route: () => level.route || undefined }),
    metrics({ registry: level.registry, direction: "inbound", dst_service: level.service, route: level.route, clock }),
    level.limiter !== undefined && keyedRateLimit(level.limiter.limiter, level.limiter.key),
    deadline({ clock }),
    propagateDeadline({ clock }),
  );
}
