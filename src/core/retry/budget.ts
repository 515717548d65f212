/**
 * The retry budget: a cap on retries as a share of recent requests plus a small steady
 * allowance, so retries cannot multiply load on a destination that is already failing.
 */
import { systemClock, type Clock } from "../clock.ts";

/** How a retry budget is sized (SPEC.md `Retry.budget`, Linkerd's `RetryBudget`). */
export interface RetryBudgetOptions {
  /** Retries allowed per original request over the window, 0 to 1000 (0.2 = 20% extra load). */
  ratio: number;
  /** Retries allowed per second on top of the ratio, for callers with little traffic. */
  minPerSecond: number;
  /** The window, in ms, over which requests count toward the ratio: 1 s to 60 s. */
  ttl: number;
}

/**
 * Linkerd's default budget: "retries may add at most an additional 20% to the request load
 * (plus an additional 10 'free' retries per second)" over a 10 s window
 * (linkerd2 controller/api/destination/profile_translator.go `defaultRetryBudget()`; the same
 * as Tower's `TpsBudget::default()` and Gateway API's retryConstraint defaults).
 */
export const DEFAULT_RETRY_BUDGET: RetryBudgetOptions = { ratio: 0.2, minPerSecond: 10, ttl: 10_000 };

/** A budget of retries for one destination: every request deposits, every retry withdraws. */
export interface RetryBudget {
  /** Credits one original request. */
  deposit(): void;
  /** Takes one retry from the budget; false, taking nothing, when the budget is spent. */
  withdraw(): boolean;
}

/** Tower splits the window into 10 slots that expire one by one (tower `TpsBudget::new`). */
const SLOTS = 10;

/** Fixed-point units per retry, so ratios such as 0.3 are kept exactly rather than as 1/3. */
const UNIT = 10_000;

/**
 * A retry budget whose state lives per process (per isolate on Workers): create one per
 * destination. It has Tower's `TpsBudget` semantics (what Linkerd's proxy uses), on `clock`:
 * deposits and withdrawals land in the current of 10 slots spanning `ttl` and are forgotten
 * once their slot falls out of the window; a constant reserve of `minPerSecond × ttl` retries
 * is always added, so at most `minPerSecond × ttl + ratio × deposits` retries happen in any
 * window. Throws a `RangeError` for a ttl outside 1 s to 60 s or a ratio outside 0 to 1000, the
 * bounds Tower asserts and Linkerd's proxy refuses.
 */
export function createRetryBudget(options: Partial<RetryBudgetOptions> & { clock?: Clock } = {}): RetryBudget {
  const { ratio, minPerSecond, ttl } = { ...DEFAULT_RETRY_BUDGET, ...withoutUndefined(options) };
  const clock = options.clock ?? systemClock;
  if (!(ttl >= 1_000 && ttl <= 60_000)) throw new RangeError(`retry budget ttl must be 1 s to 60 s, got ${ttl} ms`);
  if (!(ratio >= 0 && ratio <= 1_000)) throw new RangeError(`retry budget ratio must be 0 to 1000, got ${ratio}`);
  if (!(minPerSecond >= 0 && Number.isFinite(minPerSecond))) throw new RangeError(`retry budget minPerSecond must be 0 or more, got ${minPerSecond}`);

  const depositAmount = Math.round(ratio * UNIT);
  const reserve = Math.floor(minPerSecond * (ttl / 1_000)) * UNIT;
  const slotLength = ttl / SLOTS;
  const slots = new Array<number>(SLOTS).fill(0);
  let current = 0; // what this slot has gathered, committed when it expires
  let index = 0;
  let since = clock.now();

  const expire = () => {
    const now = clock.now();
    let elapsed = now - since;
    if (elapsed < slotLength) return;
    slots[index] = current;
    current = 0;
    let i = (index + 1) % SLOTS;
    // Skip and clear a slot for every further slot length that passed with no activity.
    for (let n = 0; elapsed > slotLength && n < SLOTS; n++) {
      slots[i] = 0;
      elapsed -= slotLength;
      i = (i + 1) % SLOTS;
    }
    index = i;
    since = now;
  };
  const balance = () => slots.reduce((sum, slot) => sum + slot, current + reserve);

  return {
    deposit() {
      expire();
      current += depositAmount;
    },
    withdraw() {
      expire();
      if (balance() < UNIT) return false;
      current -= UNIT;
      return true;
    },
  };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
