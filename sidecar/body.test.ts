import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { HeaderList } from "../src/core/headers.ts";
import { toWebResponse } from "../src/core/web.ts";
import { BodySource } from "./body.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

/** A sink that takes `room` chunks before asking to wait for `drain`. */
function sink(room = Infinity) {
  const events = new EventEmitter();
  const written: string[] = [];
  let ended = false;
  let destroyed: Error | undefined;
  return {
    written,
    ended: () => ended,
    destroyed: () => destroyed,
    drain: () => events.emit("drain"),
    write(chunk: Uint8Array) {
      written.push(new TextDecoder().decode(chunk));
      return written.length < room;
    },
    end: () => void (ended = true),
    destroy: (error?: Error) => void (destroyed = error),
    once: (event: "drain", listener: () => void) => events.once(event, listener),
  };
}

function source(highWater = 1024) {
  const calls = { resumed: 0, aborted: [] as unknown[] };
  const body = new BodySource(() => calls.resumed++, (reason) => calls.aborted.push(reason), highWater);
  return { body, calls };
}

describe("a streamed response body", () => {
  it("holds chunks until piped, asks the upstream to pause at the high-water mark, and resumes on drain", () => {
    const { body, calls } = source(6);
    expect(body.push(bytes("abc"))).toBe(true);
    expect(body.push(bytes("def"))).toBe(false);
    const out = sink(1);
    body.pipe(out);
    expect(out.written).toEqual(["abc", "def"]);
    expect(calls.resumed).toBe(0);
    out.drain();
    expect(calls.resumed).toBe(1);
    expect(body.push(bytes("g"))).toBe(false);
    out.drain();
    body.end();
    expect(out.written.join("")).toBe("abcdefg");
    expect(out.ended()).toBe(true);
  });

  it("destroys the sink when the upstream fails mid-body, and aborts the upstream when cancelled", () => {
    const { body } = source();
    const out = sink();
    body.pipe(out);
    const failure = new Error("reset");
    body.fail(failure);
    expect(out.destroyed()).toBe(failure);
    const second = source();
    second.body.push(bytes("x"));
    second.body.cancel("client went away");
    expect(second.calls.aborted).toEqual(["client went away"]);
  });

  it("becomes a Web stream once a layer asks for the body, and then cannot be piped too", async () => {
    const { body } = source();
    const response = toWebResponse({ status: 201, headers: new HeaderList(["content-type", "text/plain"]), body });
    body.push(bytes("hello "));
    const text = response.text();
    body.push(bytes("world"));
    body.end();
    expect(await text).toBe("hello world");
    expect(response.status).toBe(201);
    expect(body.claimed).toBe(true);
    expect(() => body.pipe(sink())).toThrow(/already taken/);
  });
});
