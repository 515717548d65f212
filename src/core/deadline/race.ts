/**
 * The one mechanism both the request deadline and the per-try timeout use: call the next
 * `Fetch` with a signal that aborts at a time on the stack's clock or when the caller's own
 * signal aborts, and stop waiting at that moment even if the callee ignores its signal.
 */
import type { Clock, TimerHandle } from "../clock.ts";
import { MeshError } from "../errors.ts";
import { cancelBody, type MeshResponse } from "../fetch.ts";

/** The longest delay the runtimes' timers take (2^31 - 1 ms, about 24.8 days); longer overflows. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `call(signal)` and resolves with its response, unless `ms` pass on `clock` first (it
 * then aborts `signal` and rejects with `onTimeout()`) or `parent` aborts first (it aborts
 * `signal` with the same reason and rejects with a `deadline-exceeded` error). The timer runs
 * until the response's headers arrive; the body that follows is bounded by the callee, which
 * received the same budget. A response that arrives after the race was lost has its body
 * cancelled. A delay beyond what timers can hold is treated as no limit.
 */
export async function raceTimer(
  clock: Clock,
  ms: number,
  parent: AbortSignal | undefined,
  call: (signal: AbortSignal) => Promise<MeshResponse>,
  onTimeout: () => MeshError,
): Promise<MeshResponse> {
  const controller = new AbortController();
  let stop!: (error: MeshError) => void;
  const stopped = new Promise<never>((_, reject) => {
    stop = reject;
  });
  stopped.catch(() => {});
  let failure: MeshError | undefined;
  const end = (error: MeshError, reason: unknown) => {
    if (failure) return;
    failure = error;
    controller.abort(reason);
    stop(error);
  };

  const onParentAbort = () =>
    end(new MeshError("deadline-exceeded", "the caller cancelled the request or its deadline passed", { cause: parent?.reason }), parent?.reason);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener("abort", onParentAbort, { once: true });
  let handle: TimerHandle | undefined;
  if (ms <= MAX_TIMER_MS) {
    handle = clock.setTimeout(() => {
      const error = onTimeout();
      // The callee sees the standard reason a timed-out fetch carries; the caller sees the MeshError.
      end(error, new DOMException(error.message, "TimeoutError"));
    }, Math.max(0, ms));
  }

  let pending: Promise<MeshResponse> | undefined;
  try {
    pending = failure ? undefined : call(controller.signal);
    return await (pending ? Promise.race([pending, stopped]) : stopped);
  } catch (error) {
    if (failure) {
      pending?.then((late) => cancelBody(late.body), () => {});
      throw failure;
    }
    throw error;
  } finally {
    if (handle !== undefined) clock.clearTimeout(handle);
    parent?.removeEventListener("abort", onParentAbort);
  }
}
