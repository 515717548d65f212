/**
 * The fan-in and fan-out of `weft tap` events: data planes push batches, each tap session's
 * readers (the CLI, the dashboard) long-poll for what came after the last event they saw.
 * In memory, per Durable Object instance: events are live, not kept.
 */

/** Events kept per session for readers to catch up on; older ones are dropped (and counted). Our number: ten seconds at the default 100/s, start and end. */
export const MAX_TAP_BUFFER = 2_000;
/** Sessions with a buffer at once; the oldest buffer goes past it. */
export const MAX_TAP_BUFFERS = 64;
/** Events one push may carry. */
export const MAX_TAP_PUSH = 5_000;

const ID = /^[a-z0-9-]{1,64}$/;

/** What a reader gets: events after its cursor, the cursor to ask with next, and the calls dropped so far. */
export interface TapPage {
  events: unknown[];
  next: number;
  /** Calls matched but not sampled (rate limit, host buffers) plus events that fell out of this buffer, since the session began. */
  dropped: number;
}

interface Buffer {
  events: { seq: number; event: unknown }[];
  seq: number;
  dropped: number;
  waiters: Set<() => void>;
}

/** A tap hub's operations. */
export interface TapHub {
  /** Adds a pushed batch (`{events, dropped}`); answers how many events it took. */
  push(batch: unknown): { accepted: number; ignored: number };
  /** Events of session `id` after `after`, waiting up to `waitMs` for some when there are none. */
  read(id: string, after: number, waitMs: number): Promise<TapPage>;
  /** Forgets a session's buffer and wakes its readers. */
  close(id: string): void;
}

/** A new, empty hub. */
export function createTapHub(): TapHub {
  const buffers = new Map<string, Buffer>();

  const bufferOf = (id: string): Buffer => {
    let buffer = buffers.get(id);
    if (!buffer) {
      if (buffers.size >= MAX_TAP_BUFFERS) {
        const oldest = buffers.keys().next().value!;
        wake(buffers.get(oldest)!);
        buffers.delete(oldest);
      }
      buffer = { events: [], seq: 0, dropped: 0, waiters: new Set() };
      buffers.set(id, buffer);
    }
    return buffer;
  };

  const wake = (buffer: Buffer) => {
    for (const waiter of buffer.waiters) waiter();
    buffer.waiters.clear();
  };

  const page = (buffer: Buffer, after: number): TapPage => {
    const events = buffer.events.filter((e) => e.seq > after).map((e) => e.event);
    return { events, next: buffer.seq, dropped: buffer.dropped };
  };

  return {
    push(batch) {
      let accepted = 0;
      let ignored = 0;
      const touched = new Set<Buffer>();
      const { events, dropped } = (typeof batch === "object" && batch !== null ? batch : {}) as { events?: unknown; dropped?: unknown };
      if (Array.isArray(events)) {
        for (const event of events.slice(0, MAX_TAP_PUSH)) {
          const tap = (event as { tap?: unknown } | null)?.tap;
          const kind = (event as { kind?: unknown } | null)?.kind;
          if (typeof tap !== "string" || !ID.test(tap) || (kind !== "start" && kind !== "end")) {
            ignored++;
            continue;
          }
          const buffer = bufferOf(tap);
          buffer.events.push({ seq: ++buffer.seq, event });
          if (buffer.events.length > MAX_TAP_BUFFER) {
            buffer.events.shift();
            buffer.dropped++;
          }
          touched.add(buffer);
          accepted++;
        }
        ignored += Math.max(0, events.length - MAX_TAP_PUSH);
      }
      if (typeof dropped === "object" && dropped !== null) {
        for (const [id, count] of Object.entries(dropped)) {
          if (!ID.test(id) || typeof count !== "number" || !Number.isInteger(count) || count < 0 || count > 1e9) continue;
          const buffer = bufferOf(id);
          buffer.dropped += count;
          touched.add(buffer);
        }
      }
      for (const buffer of touched) wake(buffer);
      return { accepted, ignored };
    },
    async read(id, after, waitMs) {
      const buffer = bufferOf(id);
      const now = page(buffer, after);
      if (now.events.length || waitMs <= 0) return now;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          buffer.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        buffer.waiters.add(done);
      });
      return page(buffers.get(id) ?? buffer, after);
    },
    close(id) {
      const buffer = buffers.get(id);
      if (!buffer) return;
      wake(buffer);
      buffers.delete(id);
    },
  };
}
