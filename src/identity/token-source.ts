/**
 * A workload's supply of its own identity tokens, one per destination audience: fetched from
 * the issuer on first use, renewed in the background at two-thirds of their lifetime, and
 * used as long as they are valid, so neither renewal nor an unreachable issuer delays a call.
 */
import { decodeJwt } from "jose";
import { MeshError } from "../core/errors.ts";

/** Renew when this fraction of a token's lifetime has passed: two-thirds (SPEC.md section 4). */
export const DEFAULT_RENEW_AT = 2 / 3;

/**
 * After a failed renewal, wait this long before the next try: 10 s. The held token has at
 * least a third of its life (5 minutes for a 15-minute token) left when renewal starts, so
 * this gives some 30 tries before it runs out, at a rate an issuer coming back can bear.
 */
export const DEFAULT_RENEW_RETRY_MS = 10_000;

/** Options of `createTokenSource`. */
export interface TokenSourceOptions {
  /** Obtains a fresh token for `audience` (`POST /v1/identity/token` in the hosts). */
  fetchToken: (audience: string) => Promise<string>;
  /** Wall-clock epoch ms; `Date.now` unless a test fixes it. */
  now?: () => number;
  /** Fraction of the lifetime after which to renew; default two-thirds. */
  renewAt?: number;
  /** Least time between renewal attempts after a failure, in ms. */
  retryAfter?: number;
  /** Receives each background renewal, so a Workers host can hand it to `ctx.waitUntil`. */
  background?: (task: Promise<unknown>) => void;
}

/** What a source holds for one audience, for `weft identity` and health checks. Epoch ms. */
export interface HeldToken {
  audience: string;
  expiresAt: number;
  renewAt: number;
}

/** Tokens per audience. Per isolate (or process): one for the workload, shared by every call. */
export interface TokenSource {
  /**
   * A valid token for `audience`. Waits only when none is held (first use, or after the held
   * one expired); otherwise answers at once and renews in the background when due. Throws
   * `MeshError("unauthenticated")` when no valid token can be had.
   */
  token(audience: string): Promise<string>;
  /** The tokens held, without the tokens themselves. */
  held(): HeldToken[];
}

interface Entry {
  token: string;
  expiresAt: number;
  renewAt: number;
}

interface Slot {
  entry?: Entry;
  inFlight?: Promise<Entry>;
  /** No renewal attempt before this epoch ms (after a failure). */
  retryAt: number;
}

/** Creates a token source over `options.fetchToken`. */
export function createTokenSource(options: TokenSourceOptions): TokenSource {
  const now = options.now ?? Date.now;
  const renewFraction = options.renewAt ?? DEFAULT_RENEW_AT;
  const retryAfter = options.retryAfter ?? DEFAULT_RENEW_RETRY_MS;
  const slots = new Map<string, Slot>();

  function fetchInto(slot: Slot, audience: string): Promise<Entry> {
    if (slot.inFlight) return slot.inFlight;
    const inFlight = (async () => {
      try {
        const token = await options.fetchToken(audience);
        const entry = describe(token, now(), renewFraction);
        slot.entry = entry;
        return entry;
      } catch (error) {
        slot.retryAt = now() + retryAfter;
        throw error;
      } finally {
        slot.inFlight = undefined;
      }
    })();
    slot.inFlight = inFlight;
    return inFlight;
  }

  return {
    async token(audience) {
      let slot = slots.get(audience);
      if (!slot) slots.set(audience, (slot = { retryAt: Number.NEGATIVE_INFINITY }));
      const at = now();
      const entry = slot.entry;
      if (entry && at < entry.expiresAt) {
        if (at >= entry.renewAt && at >= slot.retryAt && !slot.inFlight) {
          const task = fetchInto(slot, audience).catch(() => {});
          options.background?.(task);
        }
        return entry.token;
      }
      try {
        // Without a valid token, a failure just now is not retried before `retryAt`, so a
        // down issuer is not sent one request per call.
        if (at < slot.retryAt && !slot.inFlight) throw new Error("the last attempt failed moments ago");
        return (await fetchInto(slot, audience)).token;
      } catch (error) {
        throw new MeshError("unauthenticated", `no identity token for audience ${audience}: the issuer did not provide one`, { cause: error });
      }
    },

    held() {
      const list: HeldToken[] = [];
      for (const [audience, slot] of slots) if (slot.entry) list.push({ audience, expiresAt: slot.entry.expiresAt, renewAt: slot.entry.renewAt });
      return list;
    },
  };
}

/**
 * When a token received at `receivedAt` expires and should be renewed, on the local clock.
 * The lifetime comes from the token (`exp - iat`) and is counted from when it arrived, so a
 * clock that disagrees with the issuer's neither renews in a loop nor holds a token too long;
 * expiry is also never later than `exp`.
 */
function describe(token: string, receivedAt: number, renewFraction: number): Entry {
  let claims;
  try {
    claims = decodeJwt(token);
  } catch (cause) {
    throw new TypeError("the issuer answered with something that is not a JWT", { cause });
  }
  if (typeof claims.exp !== "number" || typeof claims.iat !== "number" || claims.exp <= claims.iat) throw new TypeError("the issuer's token has no usable iat/exp");
  const lifetime = (claims.exp - claims.iat) * 1000;
  const expiresAt = Math.min(claims.exp * 1000, receivedAt + lifetime);
  return { token, expiresAt, renewAt: receivedAt + lifetime * renewFraction };
}
