import { describe, expect, it } from "vitest";
import { adopt, derive, metaOf, stack, withHeaders, withMeta, type Layer } from "./fetch.ts";

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
  it("travels with derived requests and merges new fields", () => {
    const first = withMeta(new Request("http://x/"), { deadline: 100 });
    const second = derive(first, { headers: { a: "1" } });
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

describe("withHeaders", () => {
  it("copies a request no layer derived, leaving the caller's request as it was", () => {
    const caller = withMeta(new Request("http://x/", { headers: { a: "1" } }), { deadline: 100 });
    const changed = withHeaders(caller, (headers) => headers.set("a", "2"));
    expect(changed).not.toBe(caller);
    expect(caller.headers.get("a")).toBe("1");
    expect(changed.headers.get("a")).toBe("2");
    expect(metaOf(changed).deadline).toBe(100);
  });

  it("changes a derived copy in place, and the copy stays the stack's to change again", () => {
    const caller = new Request("http://x/", { headers: { a: "1" } });
    const copy = derive(caller, {}, { deadline: 50 });
    const once = withHeaders(copy, (headers) => headers.set("a", "2"));
    const twice = withHeaders(once, (headers) => headers.set("b", "3"));
    expect(twice).toBe(copy);
    expect([twice.headers.get("a"), twice.headers.get("b")]).toEqual(["2", "3"]);
    expect(caller.headers.get("a")).toBe("1");
    expect(caller.headers.has("b")).toBe(false);
    expect(metaOf(twice).deadline).toBe(50);
  });

  it("changes an adopted request in place, keeping its metadata", () => {
    const built = withMeta(new Request("http://x/", { headers: { a: "1" } }), { deadline: 70 });
    expect(adopt(built)).toBe(built);
    const changed = withHeaders(built, (headers) => headers.set("a", "2"));
    expect(changed).toBe(built);
    expect(built.headers.get("a")).toBe("2");
    expect(metaOf(changed).deadline).toBe(70);
  });
});
