import { describe, expect, it } from "vitest";
import { MeshError } from "../errors.ts";
import { bodyStream, metaOf, withMeta } from "../fetch.ts";
import { normalizePath, normalizeRequest } from "./index.ts";

const normal = (path: string) => {
  const result = normalizePath(path);
  if (!result.ok) throw new Error(`${path} refused: ${result.reason}`);
  return result.path;
};
const refusal = (path: string) => {
  const result = normalizePath(path);
  if (result.ok) throw new Error(`${path} accepted as ${result.path}`);
  return result.reason;
};

describe("normalizePath", () => {
  it("returns paths already in normal form as they are", () => {
    for (const path of ["/", "/admin", "/admin/", "/a/b.c/d", "/a..b/c.", "/~user/x-y_z", "/ADMIN", "/api/v1/items?x"]) expect(normal(path)).toBe(path);
  });

  it.each([
    ["/%61dmin", "/admin"],
    ["/%41DMIN", "/ADMIN"],
    ["/%7Euser/%2Dx%5F%2e", "/~user/-x_."],
    ["//admin", "/admin"],
    ["/a///b//", "/a/b/"],
    ["/admin/../admin", "/admin"],
    ["/./admin", "/admin"],
    ["/%2e%2e/admin", "/admin"],
    ["/%2E./admin", "/admin"],
    ["/.%2e/admin", "/admin"],
    ["/a/b/%2e%2E/c", "/a/c"],
    ["/a/b/.", "/a/b/"],
    ["/a/b/..", "/a/"],
    ["/../../a", "/a"],
    ["/..", "/"],
    ["/.", "/"],
    ["//", "/"],
    ["/a/./b/../../c/", "/c/"],
    ["/.well-known/x", "/.well-known/x"],
    ["/a%3bb/%c3%a9", "/a%3Bb/%C3%A9"],
    ["/%252F", "/%252F"],
    ["/admin;x", "/admin;x"],
    ["/a;b/..", "/"],
  ])("normalizes %s to %s", (path, expected) => {
    expect(normal(path)).toBe(expected);
  });

  it("is idempotent", () => {
    for (const path of ["/%61dmin//x/./y/../z/", "/a%3bb/%c3%a9", "/x/%2e%2e/%7E"]) expect(normal(normal(path))).toBe(normal(path));
  });

  it.each([
    ["/admin%2fx", /encoded '\/' \(%2F\)/],
    ["/admin%2Fx", /encoded '\/'/],
    ["/a%5cb", /encoded '\\' \(%5C\)/],
    ["/a\\b", /has a '\\'/],
    ["/a%00b", /encoded control character/],
    ["/a%0d%0ab", /encoded control character/],
    ["/a%7fb", /encoded control character/],
    ["/a\u0000b", /control character/],
    ["/a%zzb", /not followed by two hex digits/],
    ["/a%4", /not followed by two hex digits/],
    ["/a%", /not followed by two hex digits/],
    ["/..;/admin", /dot segment with ';'/],
    ["/public/..;x/admin", /dot segment with ';'/],
    ["/.;/admin", /dot segment with ';'/],
    ["/%2e%2e;/admin", /dot segment with ';'/],
    ["admin", /does not start with '\/'/],
  ])("refuses %s", (path, why) => {
    expect(refusal(path)).toMatch(why);
  });
});

describe("normalizeRequest", () => {
  it("hands back the request itself when its path is in normal form", () => {
    const request = new Request("http://orders/api/items?x=%2F&y=../z");
    expect(normalizeRequest(request)).toBe(request);
  });

  it("readdresses the stack's own copy of a request whose path changes, keeping query, method, headers, body and the mesh's metadata", async () => {
    const caller = new Request("http://orders//api/%7Eann/./items?q=%2F..%2F#frag", { method: "POST", headers: { "x-a": "1" }, body: "payload" });
    const copy = normalizeRequest(withMeta(caller, { deadline: 42 }));
    expect(copy).not.toBe(caller);
    expect(caller.url).toBe("http://orders//api/%7Eann/items?q=%2F..%2F#frag");
    expect(copy.url).toBe("http://orders/api/~ann/items?q=%2F..%2F#frag");
    expect(copy.method).toBe("POST");
    expect(copy.headers.get("x-a")).toBe("1");
    expect(await new Response(bodyStream(copy.body)).text()).toBe("payload");
    expect(metaOf(copy).deadline).toBe(42);
  });

  it("throws bad-request naming the reason, never the path", () => {
    try {
      normalizeRequest(new Request("http://orders/reset/s3cr3t-token%2Fx"));
      throw new Error("expected a refusal");
    } catch (error) {
      expect(error).toBeInstanceOf(MeshError);
      expect((error as MeshError).code).toBe("bad-request");
      expect((error as MeshError).message).toMatch(/^the request path has an encoded '\/'/);
      expect((error as MeshError).message).not.toContain("s3cr3t");
    }
  });
});
