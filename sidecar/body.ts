/**
 * Response bodies arriving from an upstream connection, handed on without a Web stream when
 * nothing in the stack looks at them: the sidecar's hot path. A `BodySource` is the light
 * response's body (a `HostBody`): it becomes a `ReadableStream` only if some layer (or test)
 * asks for one; otherwise the host pipes the upstream's chunks straight into the Node response.
 */
import type { HostBody } from "../src/core/fetch.ts";

/**
 * Bytes held per body before the upstream connection is paused: 64 KiB, the default
 * `highWaterMark` of Node's byte streams (and Linkerd's replay buffer size).
 */
export const DEFAULT_BODY_HIGH_WATER_BYTES = 64 * 1024;

/** Where a body goes on the fast path: a Node writable such as `http.ServerResponse`. */
export interface BodySink {
  write(chunk: Uint8Array): boolean;
  end(): void;
  destroy(error?: Error): void;
  once(event: "drain", listener: () => void): unknown;
}

/**
 * One response body as the upstream delivers it: chunks are held (up to the high-water
 * mark, then the connection is paused) until a consumer claims them, either a Node sink
 * (`pipe`) or a Web stream (`stream`). Per response; used by one consumer only.
 */
export class BodySource implements HostBody {
  #chunks: Uint8Array[] = [];
  #size = 0;
  #done = false;
  #error: Error | undefined;
  #paused = false;
  #resume: () => void;
  #abort: (reason?: unknown) => void;
  #sink: BodySink | undefined;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #claimed = false;
  readonly #highWater: number;

  /**
   * `resume` restarts a paused connection; `abort` drops it (the consumer went away or
   * cancelled the body).
   */
  constructor(resume: () => void, abort: (reason?: unknown) => void, highWater = DEFAULT_BODY_HIGH_WATER_BYTES) {
    this.#resume = resume;
    this.#abort = abort;
    this.#highWater = highWater;
  }

  /** True once `pipe` or `stream` took the body. */
  get claimed(): boolean {
    return this.#claimed;
  }

  /** A chunk from the upstream; false asks the upstream to pause until `resume` is called. */
  push(chunk: Uint8Array): boolean {
    if (this.#done) return false;
    const sink = this.#sink;
    if (sink !== undefined) {
      if (sink.write(chunk)) return true;
      this.#paused = true;
      sink.once("drain", this.#onDrain);
      return false;
    }
    const controller = this.#controller;
    if (controller !== undefined) {
      controller.enqueue(chunk);
      if ((controller.desiredSize ?? 1) > 0) return true;
      this.#paused = true;
      return false;
    }
    this.#chunks.push(chunk);
    this.#size += chunk.byteLength;
    if (this.#size < this.#highWater) return true;
    this.#paused = true;
    return false;
  }

  /** The upstream finished the body. */
  end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#sink?.end();
    this.#controller?.close();
  }

  /** The upstream failed mid-body: the consumer sees the error (a Node sink is destroyed). */
  fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    this.#sink?.destroy(error);
    this.#controller?.error(error);
  }

  /** Drops the body and the upstream call (the client went away, or nobody wants the body). */
  cancel(reason?: unknown): void {
    this.#chunks = [];
    if (this.#done) return;
    this.#done = true;
    this.#abort(reason);
  }

  /** Writes the body into `sink` as it comes, with the sink's backpressure, then ends it. */
  pipe(sink: BodySink): void {
    this.#claim();
    const held = this.#chunks;
    this.#chunks = [];
    let flowing = true;
    for (const chunk of held) flowing = sink.write(chunk);
    if (this.#error !== undefined) return sink.destroy(this.#error);
    if (this.#done) return sink.end();
    this.#sink = sink;
    if (!this.#paused) return;
    if (flowing) this.#onDrain();
    else sink.once("drain", this.#onDrain);
  }

  /** The body as a Web stream, for layers and callers that read `response.body`. */
  stream(): ReadableStream<Uint8Array> {
    this.#claim();
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          for (const chunk of this.#chunks) controller.enqueue(chunk);
          this.#chunks = [];
          if (this.#error !== undefined) controller.error(this.#error);
          else if (this.#done) controller.close();
          else this.#controller = controller;
        },
        pull: () => this.#onDrain(),
        cancel: (reason) => this.cancel(reason),
      },
      { highWaterMark: this.#highWater, size: (chunk) => chunk.byteLength },
    );
  }

  #claim(): void {
    if (this.#claimed) throw new TypeError("the response body was already taken");
    this.#claimed = true;
  }

  readonly #onDrain = (): void => {
    if (!this.#paused || this.#done) return;
    this.#paused = false;
    this.#resume();
  };
}
