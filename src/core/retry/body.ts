/**
 * Request bodies kept for replay: up to a cap (64 KiB by default, as Linkerd's
 * `MAX_BUFFERED_BYTES`) a body is held so a retry can send it again; a larger one is streamed
 * through once, never held whole, and its request is not retried.
 */
import { bodyStream, type MeshBody, type MeshHeaders, type MeshRequest } from "../fetch.ts";

/** The body of one try; absent: the request's own body as it is. */
export type TryBody = { body?: MeshBody };

/** A request's body as the retry layer holds it. */
export interface ReplayBody {
  /** The body fields for the first try (an empty object: the request's own body as it is). */
  first(): TryBody;
  /** The body fields for a further try, or undefined when the body cannot be sent again. */
  again(): TryBody | undefined;
}

const NONE: ReplayBody = { first: () => ({}), again: () => ({}) };

/**
 * Prepares `request`'s body for retries. With no body every try is the same. With a declared
 * `content-length` within `cap` the body is read first and every try sends the same bytes.
 * With a declared length over `cap` the body is sent once as it is. With no declared length
 * the first try streams it while a copy is kept; a retry can send that copy only if the first
 * try read the body to its end within `cap` (as Linkerd's `ReplayBody`), so a long or endless
 * stream, or one the first try never read, is not retried.
 */
export async function replayBody(request: MeshRequest, cap: number): Promise<ReplayBody> {
  const body = request.body;
  if (body === null) return NONE;
  if (body instanceof Uint8Array) return { first: () => ({}), again: () => ({ body }) };
  const declared = contentLength(request.headers);
  // Too large to keep: the host's body goes as it is, never made a Web stream.
  if (declared !== undefined && declared > cap) return once({});
  const source = bodyStream(body)!;
  if (declared !== undefined) {
    const reader = source.getReader();
    const { chunks, size, done } = await readUpTo(reader, cap);
    if (!done) return once({ body: prefixed(chunks, reader) });
    const bytes = concat(chunks, size);
    return { first: () => ({ body: bytes }), again: () => ({ body: bytes }) };
  }
  return recording(source, cap);
}

/** A body that goes out once, with `init`; any later try is refused. */
function once(init: TryBody): ReplayBody {
  return { first: () => init, again: () => undefined };
}

/** Streams `source` to the first try, keeping a copy of up to `cap` bytes for replay. */
function recording(source: ReadableStream<Uint8Array>, cap: number): ReplayBody {
  const reader = source.getReader();
  let chunks: Uint8Array[] = [];
  let size = 0;
  let state: "reading" | "complete" | "dropped" = "reading";
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          state = "dropped";
          controller.error(error);
          return;
        }
        if (result.done) {
          if (state === "reading") state = "complete";
          controller.close();
          return;
        }
        if (state === "reading") {
          size += result.value.byteLength;
          if (size > cap) {
            state = "dropped";
            chunks = [];
          } else {
            // A copy: the consumer may hand the original buffer on and detach it.
            chunks.push(result.value.slice());
          }
        }
        controller.enqueue(result.value);
      },
      cancel(reason) {
        if (state === "reading") state = "dropped";
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  let bytes: Uint8Array | undefined;
  return {
    first: () => ({ body: stream }),
    again() {
      if (state !== "complete") return undefined;
      bytes ??= concat(chunks, size);
      return { body: bytes };
    },
  };
}

/** The request's declared body length, when it has a readable one. */
function contentLength(headers: MeshHeaders): number | undefined {
  const value = headers.get("content-length");
  return value !== null && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** Reads until the end or until more than `cap` bytes have come. */
async function readUpTo(reader: ReadableStreamDefaultReader<Uint8Array>, cap: number): Promise<{ chunks: Uint8Array[]; size: number; done: boolean }> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { chunks, size, done: true };
    chunks.push(value);
    size += value.byteLength;
    if (size > cap) return { chunks, size, done: false };
  }
}

/** A stream of `chunks` already read, then the rest of `reader`. */
function prefixed(chunks: Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (i < chunks.length) return controller.enqueue(chunks[i++]!);
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
