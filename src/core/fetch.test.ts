import { describe, expect, it } from "vitest";
import { derive, metaOf, stack, withMeta, type Layer } from "./fetch.ts";

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
