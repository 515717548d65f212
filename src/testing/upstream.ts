/**
 * Fake upstreams for unit tests: a `Fetch` that records what it received and answers as
 * scripted, optionally after a delay on a manual clock.
 */
import type { Clock } from "../core/clock.ts";
import { sleep } from "../core/clock.ts";
import { MeshError } from "../core/errors.ts";
import { bodyStream, type Fetch, type MeshRequest } from "../core/fetch.ts";

/** What a fake upstream answers: a response, a status, or an error to throw. */
export type Answer = Response | number | Error | ((request: MeshRequest, call: number) => Response | number | Error | Promise<Response | number | Error>);

/** A fake upstream: call it like `fetch`, then inspect `requests`. */
export interface FakeUpstream extends Fetch {
  /** What each call received, as it came (a Web `Request` or the stack's light request). */
  requests: MeshRequest[];
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
  const requests: MeshRequest[] = [];
  const bodies: string[] = [];
  const upstream = (async (request: MeshRequest) => {
    const call = requests.length;
    requests.push(request);
    const body = bodyStream(request.body);
    bodies.push(body ? await new Response(body).text() : "");
    if (options.delay && options.clock) await sleep(options.clock, options.delay, request.signal);
    let answer = answers[Math.min(call, answers.length - 1)] ?? 200;
    if (typeof answer === "function") answer = await answer(request, call);
    if (answer instanceof Error) throw answer;
    if (typeof answer === "number") return new Response(`status ${answer}`, { status: answer });
    return answer;
  }) as unknown as FakeUpstream;
  upstream.requests = requests;
  upstream.bodies = bodies;
  upstream.calls = () => requests.length;
  return upstream;
}

/** The `MeshError` a call rejects with; fails when it resolves or rejects with anything else. */
export function meshErrorOf(promise: Promise<unknown>): Promise<MeshError> {
  return promise.then(
    () => {
      throw new Error("expected a MeshError");
    },
    (error: unknown) => {
      if (!(error instanceof MeshError)) throw error;
      return error;
    },
  );
}
