import { describe, expect, it } from "vitest";
import { bodyStream, cancelBody, derive, metaOf, own, OwnedRequest, stack, withHeaders, withMeta, type Layer } from "./fetch.ts";
import { HeaderList } from "./headers.ts";

const tag =
  (name: string, log: string[]): Layer =>
  (next) =>
  async (request) => {
    log.push(`${name}>`);
    const response = await next(request);
    log.push(`<${name}`);
    return response;
  };

describe("stack", () => {
  it("runs the first layer listed outermost, in request order", async () => {
    const log: string[] = [];
    const fetch = stack(async () => {
      log.push("base");
      return new Response("ok");
    }, tag("a", log), tag("b", log));
    await fetch(new Request("http://x/"));
    expect(log).toEqual(["a>", "b>", "base", "<b", "<a"]);
  });

  it("returns the base unchanged when given no layers", async () => {
    const base = async () => new Response("ok");
    expect(stack(base)).toBe(base);
  });
});

describe("request metadata", () => {
  it("travels with derived requests and merges new fields, each copy with its own", () => {
    const first = withMeta(new Request("http://x/"), { deadline: 100 });
    const second = derive(first, { headers: new HeaderList(["a", "1"]) });
    expect(metaOf(second).deadline).toBe(100);
    expect(second.headers.get("a")).toBe("1");
    const third = derive(second, {}, { deadline: 50 });
    expect(metaOf(third).deadline).toBe(50);
    expect(metaOf(second).deadline).toBe(100);
  });

  it("is empty for a request no layer touched", () => {
    expect(metaOf(new Request("http://x/"))).toEqual({});
  });
});

describe("own and withHeaders", () => {
  it("make a light copy of a Web request, leaving the caller's request as it was", () => {
    const caller = new Request("http://x/p?q=1", { method: "POST", headers: { a: "1" }, body: "b" });
    const changed = withHeaders(caller, (headers) => headers.set("a", "2"));
    expect(changed).not.toBe(caller);
    expect(changed).toBeInstanceOf(OwnedRequest);
    expect(changed).not.toBeInstanceOf(Request);
    expect([changed.method, changed.url, changed.body]).toEqual(["POST", "http://x/p?q=1", caller.body]);
    expect(caller.headers.get("a")).toBe("1");
    expect(changed.headers.get("a")).toBe("2");
  });

  it("change the stack's own request in place, keeping its metadata", () => {
    const owned = withMeta(new Request("http://x/", { headers: { a: "1" } }), { deadline: 70 });
    expect(own(owned)).toBe(owned);
    const once = withHeaders(owned, (headers) => headers.set("a", "2"));
    const twice = withHeaders(once, (headers) => headers.set("b", "3"));
    expect(twice).toBe(owned);
    expect([twice.headers.get("a"), twice.headers.get("b")]).toEqual(["2", "3"]);
    expect(metaOf(twice).deadline).toBe(70);
  });

  it("read the caller's signal through, and a deadline's signal in its place once one is set", () => {
    const caller = new AbortController();
    const owned = own(new Request("http://x/", { signal: caller.signal }));
    caller.abort("gone");
    expect(owned.signal?.aborted).toBe(true);
    const deadline = new AbortController();
    expect(withMeta(owned, { signal: deadline.signal }).signal).toBe(deadline.signal);
  });

  it("take a host's lazy signal only when a layer reads it", () => {
    let made = 0;
    const owned = new OwnedRequest("GET", "http://x/", new HeaderList(), null, {}, () => (made++, AbortSignal.abort()));
    withHeaders(owned, (headers) => headers.set("a", "1"));
    expect(made).toBe(0);
    expect(owned.signal?.aborted).toBe(true);
    expect(made).toBe(1);
  });
});

describe("HeaderList", () => {
  it("answers as Web Headers do: case-insensitive names, repeated values joined", () => {
    const list = new HeaderList(["accept", "a", "x-b", "1"]);
    const web = new Headers([["accept", "a"], ["x-b", "1"]]);
    for (const headers of [list, web]) {
      headers.append("X-B", "2");
      headers.set("Content-Type", "text/plain");
      headers.delete("ACCEPT");
    }
    for (const name of ["x-b", "X-B", "content-type", "accept", "missing"]) {
      expect([list.get(name), list.has(name)], name).toEqual([web.get(name), web.has(name)]);
    }
    list.set("x-b", "3");
    web.set("x-b", "3");
    expect(list.get("x-b")).toBe(web.get("x-b"));
    expect(list.flat).toEqual(["x-b", "3", "content-type", "text/plain"]);
  });

  it("copies Web Headers and its own kind without sharing", () => {
    const list = HeaderList.from(new Headers({ A: "1" }));
    const copy = HeaderList.from(list);
    copy.set("a", "2");
    expect([list.get("a"), copy.get("a")]).toEqual(["1", "2"]);
  });
});

describe("bodies", () => {
  it("reads every kind of body as a Web stream", async () => {
    const bytes = new TextEncoder().encode("hi");
    expect(await new Response(bodyStream(bytes)).text()).toBe("hi");
    expect(await new Response(bodyStream(new Response("web").body)).text()).toBe("web");
    const host = { stream: () => new Response("host").body!, cancel: () => {} };
    expect(await new Response(bodyStream(host)).text()).toBe("host");
    expect(bodyStream(null)).toBeNull();
  });

  it("cancels a body nobody reads, whatever its kind, without throwing", () => {
    let cancelled = 0;
    cancelBody({ stream: () => new Response("x").body!, cancel: () => void cancelled++ });
    cancelBody({ stream: () => new Response("x").body!, cancel: () => { throw new Error("already gone"); } });
    cancelBody(new Response("x").body);
    cancelBody(new Uint8Array(1));
    cancelBody(null);
    expect(cancelled).toBe(1);
  });
});
