/**
 * A manual clock for unit tests: time moves only when the test says so, and timers fire in
 * order as it moves, so retries, backoffs, decays and deadlines are tested without waiting.
 */
import type { Clock, TimerHandle } from "../core/clock.ts";

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** A `Clock` whose time the test advances by hand. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, firing due timers in order, and lets promises settle. */
  advance(ms: number): Promise<void>;
  /** Advances in steps of `step` ms until `promise` settles or `limit` ms have passed. */
  run<T>(promise: Promise<T>, options?: { step?: number; limit?: number }): Promise<T>;
  /** How many timers are waiting. */
  pending(): number;
}

/** Lets every promise continuation queued so far run (a few macrotask turns). */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setTimeout(resolve, 0));
}

/** A new manual clock starting at `start` ms. */
export function createManualClock(start = 0): ManualClock {
  let now = start;
  let nextId = 1;
  let timers: Timer[] = [];

  const clock: ManualClock = {
    now: () => now,
    setTimeout(fn: () => void, ms: number): TimerHandle {
      const timer = { id: nextId++, at: now + Math.max(0, ms), fn };
      timers.push(timer);
      return timer.id;
    },
    clearTimeout(handle: TimerHandle) {
      timers = timers.filter((t) => t.id !== handle);
    },
    async advance(ms: number) {
      const end = now + ms;
      await settle(1);
      for (;;) {
        const due = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
        if (!due) break;
        timers = timers.filter((t) => t !== due);
        now = Math.max(now, due.at);
        due.fn();
        await settle(2);
      }
      now = end;
      await settle(2);
    },
    async run<T>(promise: Promise<T>, options: { step?: number; limit?: number } = {}) {
      const step = options.step ?? 1;
      const limit = options.limit ?? 600_000;
      let done = false;
      const tracked = promise.finally(() => {
        done = true;
      });
      tracked.catch(() => {});
      for (let elapsed = 0; !done && elapsed < limit; elapsed += step) await clock.advance(step);
      return tracked;
    },
    pending: () => timers.length,
  };
  return clock;
}

/** A `Random` that returns `values` in turn, cycling; for tests that fix each choice. */
export function sequenceRandom(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

/** A small seeded PRNG (mulberry32), for simulations that must be repeatable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
