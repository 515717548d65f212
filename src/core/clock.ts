/**
 * Time as the data plane sees it: every layer takes a `Clock` option so tests can run on a
 * manual clock, and the hosts pass the real one.
 */

/** An opaque timer handle, as returned by `Clock.setTimeout`. */
export type TimerHandle = unknown;

/** Milliseconds and timers; `now()` need not be wall-clock time, only monotonic. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The runtime's own clock: `performance.now()` and the global timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A source of uniform numbers in [0, 1), passed in so tests can fix the sequence. */
export type Random = () => number;

/**
 * Resolves after `ms` on `clock`, or rejects with the signal's reason once `signal` aborts.
 * Used for retry backoff and penalty waits, so both follow a manual clock in tests.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal!.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
