/**
 * Rate limits that hold across the router's isolates and locations: Cloudflare's Rate
 * Limiting binding (`[[ratelimits]]` in wrangler.toml; Miniflare runs it locally, one
 * counter store for every worker of a Miniflare that names the same `namespace_id`).
 */
import type { RateLimit as RateLimitConfig } from "../../src/core/config/index.ts";
import { createKeyedLimiter, type KeyedLimiter } from "../../src/core/ratelimit/index.ts";
import type { RateLimitDecision } from "../../src/core/ratelimit/index.ts";

/** The bindings and the period they were configured with. */
export interface RateLimitBindings {
  /** The per-key share (`rateLimit.perKey`): its `simple.limit` per `simple.period`. */
  perKey?: RateLimit | undefined;
  /** The total (`rateLimit.rps`): its `simple.limit` per `simple.period`. */
  total?: RateLimit | undefined;
  /** The bindings' `simple.period` in seconds (Cloudflare takes 10 or 60). */
  period: number;
  /** Wall-clock epoch ms. */
  now: () => number;
}

/**
 * A limiter over the Rate Limiting bindings, for the scope `scope` (`<service>` or
 * `<service>/<route>`): a key's request is counted under `<scope>|<key>` by the per-key
 * binding, then under `<scope>` by the total binding; either refusing is a 429. What the
 * bindings cannot express is kept per isolate by `local`, as without them: the total when
 * there is no total binding, and keys with an `override` (a binding has one limit, fixed in
 * wrangler.toml). The binding's numbers, not the config's, bound what it counts: the
 * config's `perKey.rps` and `rps` should be its `limit / period` (docs/rate-limits.md).
 *
 * `retry-after` is the time to the end of the current window: Miniflare's windows are
 * aligned to the wall clock; Cloudflare's are per location and its answer carries no time,
 * so this is an estimate, at most one period. A binding that fails (throws) is answered by the
 * per-isolate count, so a fault of the binding neither opens the gate nor closes it.
 */
export function bindingLimiter(scope: string, limit: RateLimitConfig, local: KeyedLimiter, bindings: RateLimitBindings): KeyedLimiter {
  const overridden = new Set((limit.overrides ?? []).flatMap((o) => o.keys));
  let localTotal: KeyedLimiter | undefined;
  const createTotal = () => (localTotal ??= createKeyedLimiter({ total: { rps: limit.rps, burst: limit.burst } }));
  const periodMs = bindings.period * 1000;
  const refused = (): RateLimitDecision => {
    const waitMs = periodMs - (bindings.now() % periodMs);
    return { ok: false, retryAfter: Math.max(1, Math.ceil(waitMs / 1000)), waitMs };
  };
  /** The binding's answer for `key`; when the binding itself fails, the per-isolate count decides instead. */
  const ask = async (binding: RateLimit, key: string, fallback: () => RateLimitDecision | Promise<RateLimitDecision>): Promise<RateLimitDecision> => {
    try {
      return (await binding.limit({ key })).success ? { ok: true } : refused();
    } catch {
      return fallback();
    }
  };
  return {
    async take(key) {
      if (overridden.has(key) || (limit.perKey === undefined && bindings.total === undefined)) return local.take(key);
      if (limit.perKey !== undefined) {
        if (bindings.perKey === undefined) {
          const decision = await local.take(key);
          if (!decision.ok) return decision;
        } else {
          const decision = await ask(bindings.perKey, `${scope}|${key}`, () => local.take(key));
          if (!decision.ok) return decision;
        }
      }
      if (bindings.total !== undefined) return ask(bindings.total, scope, () => createTotal().take(""));
      return createTotal().take("");
    },
  };
}
