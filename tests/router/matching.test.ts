/**
 * Route and policy matching on hostile input, end to end through the real control worker and
 * router workers in workerd (issue 10, items 2 and 3):
 *
 * - route regexes are RE2's: the control API refuses what RE2 refuses (400, with zod's path),
 *   and a pattern that freezes a backtracking engine matches in linear time in the router;
 * - paths are normalized before policy and routes see them: every spelling of a denied path
 *   sent as raw bytes over a real socket is refused (403 or 400) and never reaches the app,
 *   while an ordinary path reaches it as the policy checked it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DENIED_ADMIN_PATHS } from "../../src/testing/index.ts";
import { freePort } from "../../workers/local.ts";
import { startControl, type RunningControl } from "../../workers/control/local.ts";
import { startRouters, type RunningRouters } from "../../workers/router/local.ts";

const ADMIN = "matching-e2e-admin-token-0123456789";
const TRUST_DOMAIN = "weft.test";
const CATASTROPHIC = "/api/([a-z]+/?)+";

let dir: string;
let control: RunningControl;
let mesh: RunningRouters;
let port: number;

/** Sends `target` as the request line's target, byte for byte, and reads the whole answer. */
function raw(target: string): Promise<{ status: number; error: string | null; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    socket.setTimeout(30_000, () => socket.destroy(new Error(`no answer to ${target} in 30 s`)));
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!status) return reject(new Error(`not an HTTP answer to ${target}: ${JSON.stringify(text.slice(0, 200))}`));
      const head = text.slice(0, text.indexOf("\r\n\r\n"));
      resolve({ status: Number(status[1]), error: /\r\nweft-error: ([^\r]*)/i.exec(head)?.[1] ?? null, body: text.slice(head.length + 4) });
    });
    socket.write(`GET ${target} HTTP/1.1\r\nHost: p.test\r\nConnection: close\r\n\r\n`, "latin1");
  });
}

const seenBy = async (app: string) => ((await (await mesh.app(app, new Request("http://app/__seen"))).json()) as { seen: string[] }).seen;

/** Calls `path` of service `to` from app-p, through router p's outbound side. */
const callFromP = async (to: string, path: string) =>
  (await (await mesh.app("app-p", new Request(`http://app/__call?to=${to}&path=${encodeURIComponent(path)}`))).json()) as { status: number; error: string | null };

/** The control API with the admin credential, answering whatever it answers. */
const controlApi = async (method: string, path: string, body: unknown) => {
  const response = await fetch(`${control.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, error: response.headers.get("weft-error"), json: (await response.json()) as { error: { code: string; issues?: { path: (string | number)[]; message: string }[] } } };
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-matching-e2e-"));
  control = await startControl({ adminToken: ADMIN, port: 0, persistDir: dir, trustDomain: TRUST_DOMAIN, publishIntervalMs: 0 });
  await control.admin("POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "p", endpoints: [{ id: "p", address: "binding:P" }] },
      { kind: "Service", name: "r", endpoints: [{ id: "r", address: "binding:R" }] },
      { kind: "AuthorizationPolicy", name: "no-admin", target: { service: "p" }, action: "DENY", to: [{ paths: ["/admin", "/admin/*"] }] },
      { kind: "Route", name: "r-api", service: "r", matches: [{ path: { type: "RegularExpression", value: CATASTROPHIC } }], backends: [{ service: "r" }] },
    ],
  });
  port = await freePort();
  const vars = { WEFT_CONFIG_TTL_MS: "1000" };
  mesh = await startRouters({
    control: new URL(control.url).host,
    trustDomain: TRUST_DOMAIN,
    persistDir: dir,
    routers: [
      { service: "p", secret: await control.workerSecret("p"), app: { worker: "app-p" }, port, vars },
      { service: "r", secret: await control.workerSecret("r"), app: { worker: "app-r" }, vars },
    ],
    apps: ["p", "r"].map((name) => ({ name: `app-${name}`, entry: "tests/router/path-app.ts", mesh: name, vars: { NAME: name } })),
  });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  await control?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("route regexes through the control API and the router", () => {
  it("refuses a backreference with 400 bad-request, naming it at the value's path", async () => {
    const route = { name: "r-back", service: "r", matches: [{ path: { type: "RegularExpression", value: "/(a+)/\\1" } }], backends: [{ service: "r" }] };
    const put = await controlApi("PUT", "/v1/routes/r-back", route);
    expect([put.status, put.error, put.json.error.code]).toEqual([400, "bad-request", "bad-request"]);
    expect(put.json.error.issues).toEqual([
      { path: ["matches", 0, "path", "value"], message: "must be RE2 syntax, which matches in linear time: backreferences (\\1, \\k<name>) are not supported" },
    ]);
    const apply = await controlApi("POST", "/v1/apply", { resources: [{ kind: "Route", ...route, name: "r-look", matches: [{ headers: [{ name: "x", type: "RegularExpression", value: "a(?=b)" }] }] }] });
    expect(apply.status).toBe(400);
    expect(apply.json.error.issues).toEqual([{ path: ["resources", 0, "matches", 0, "headers", 0, "value"], message: expect.stringMatching(/lookahead and lookbehind/) }]);
  });

  it("refuses a pattern over the program-size limit with 400", async () => {
    const put = await controlApi("PUT", "/v1/routes/r-big", { name: "r-big", service: "r", matches: [{ path: { type: "RegularExpression", value: "/[a-z]{500}" } }], backends: [{ service: "r" }] });
    expect(put.status).toBe(400);
    expect(put.json.error.issues).toEqual([{ path: ["matches", 0, "path", "value"], message: expect.stringMatching(/^is too complex: its RE2 program size is \d+, the limit 100/) }]);
  });

  it(`matches ${CATASTROPHIC}, accepted at apply, in linear time on a path that backtracking never finishes`, async () => {
    // 31 letters and a "!" froze a sidecar for 11 s under V8's backtracking, doubling with
    // every letter; 20,000 are a walk through RE2's automaton.
    const letters = "a".repeat(20_000);
    expect(await callFromP("r", `/api/${letters}!`)).toMatchObject({ status: 404, error: "unknown-service" });
    expect(await callFromP("r", `/api/${letters}/b/`)).toMatchObject({ status: 200 });
    expect(await seenBy("app-r")).toEqual([`/api/${letters}/b/`]);
  });
});

describe("normalized paths through the router, over a real socket", () => {
  it.each(DENIED_ADMIN_PATHS)("keeps %s from the app behind DENY /admin, /admin/* (%i %s)", async (target, status, error) => {
    const before = await seenBy("app-p");
    const answer = await raw(target);
    expect([answer.status, answer.error]).toEqual([status, error]);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: error } });
    expect(await seenBy("app-p")).toEqual(before);
  });

  it("forwards an ordinary path to the app as the policy checked it, and one already normal as it came", async () => {
    expect(await raw("//users/%7eann/./orders/%2E%2E/cart?next=%2Fadmin")).toMatchObject({ status: 200 });
    expect(await raw("/administrator/list?x=1")).toMatchObject({ status: 200 });
    expect((await seenBy("app-p")).slice(-2)).toEqual(["/users/~ann/cart?next=%2Fadmin", "/administrator/list?x=1"]);
  });
});
