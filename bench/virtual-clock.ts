import type { Clock, TimerHandle } from "../src/core/clock.ts";

/**
 * A virtual clock for the simulations of `bench/balancer.ts` and `bench/retry.ts`: timers in a
 * heap, run in time order with no real waiting, so a minute of traffic simulates in seconds.
 */
export function virtualClock(): Clock & { drain(): Promise<void> } {
  let now = 0;
  let nextId = 0;
  const heap: { at: number; id: number; fn: () => void }[] = [];
  const cancelled = new Set<number>();
  const less = (a: number, b: number) => heap[a]!.at < heap[b]!.at || (heap[a]!.at === heap[b]!.at && heap[a]!.id < heap[b]!.id);
  const swap = (a: number, b: number) => ([heap[a], heap[b]] = [heap[b]!, heap[a]!]);
  const push = (timer: { at: number; id: number; fn: () => void }) => {
    heap.push(timer);
    for (let i = heap.length - 1; i > 0 && less(i, (i - 1) >> 1); i = (i - 1) >> 1) swap(i, (i - 1) >> 1);
  };
  const pop = () => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(l, m)) m = l;
        if (r < heap.length && less(r, m)) m = r;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
    }
    return top;
  };
  // setImmediate runs after every queued promise continuation, so one turn lets the chain a
  // timer set off (response → balancer bookkeeping → caller) finish before the next timer.
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  return {
    now: () => now,
    setTimeout(fn: () => void, ms: number): TimerHandle {
      const id = nextId++;
      push({ at: now + Math.max(0, ms), id, fn });
      return id;
    },
    clearTimeout(handle: TimerHandle) {
      cancelled.add(handle as number);
    },
    async drain() {
      await turn();
      while (heap.length > 0) {
        const timer = pop();
        if (cancelled.delete(timer.id)) continue;
        now = timer.at;
        timer.fn();
        await turn();
      }
    },
  };
}
