/**
 * Fake upstreams for unit tests: a `Fetch` that records what it received and answers as
 * scripted, optionally after a delay on a manual clock.
 */
import type { Clock } from "../core/clock.ts";
import { sleep } from "../core/clock.ts";
import type { Fetch } from "../core/fetch.ts";

/** What a fake upstream answers: a response, a status, or an error to throw. */
export type Answer = Response | number | Error | ((request: Request, call: number) => Response | number | Error | Promise<Response | number | Error>);

/** A fake upstream: call it like `fetch`, then inspect `requests`. */
export interface FakeUpstream extends Fetch {
  requests: Request[];
  bodies: string[];
  calls(): number;
}

/** Options of `fakeUpstream`. */
export interface FakeUpstreamOptions {
  clock?: Clock;
  /** Milliseconds before answering (needs `clock`). */
  delay?: number;
}

/**
 * An upstream that answers each call with the next of `answers` (the last one repeats).
 * Errors are thrown, as `fetch` throws on a failed connection. With a delay it honours the
 * request's signal, as a real `fetch` would.
 */
export function fakeUpstream(answers: Answer[] = [200], options: FakeUpstreamOptions = {}): FakeUpstream {
  const requests: Request[] = [];
  const bodies: string[] = [];
  const upstream = (async (request: Request) => {
    const call = requests.length;
    requests.push(request);
    bodies.push(request.body ? await request.text() : "");
    if (options.delay && options.clock) await sleep(options.clock, options.delay, request.signal);
    let answer = answers[Math.min(call, answers.length - 1)] ?? 200;
    if (typeof answer === "function") answer = await answer(request, call);
    if (answer instanceof Error) throw answer;
    if (typeof answer === "number") return new Response(`status ${answer}`, { status: answer });
    return answer;
  }) as FakeUpstream;
  upstream.requests = requests;
  upstream.bodies = bodies;
  upstream.calls = () => requests.length;
  return upstream;
}
