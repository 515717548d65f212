/**
 * `weft tap` end to end, as a real CLI process against a real control plane, two pods (an
 * app and a real sidecar process each) and a router worker in workerd: web's sidecar calls
 * orders' sidecar and the catalog router. Events of a call reach the CLI within a second;
 * credentials' values never show; a tap past its rate limit says how many calls it dropped.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRouters, type RunningRouters } from "../../workers/router/local.ts";
import { admin, callVia, freePort, startMesh, startPod, TRUST_DOMAIN, type Mesh, type Pod } from "../sidecar/pods.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const TAP_TOKEN = "tap-test-token-only-taps-0123456789";
const SECRETS = { authorization: "Bearer SENSITIVE-authorization-1", cookie: "sid=SENSITIVE-cookie-2", "x-secret-key": "SENSITIVE-configured-3" };

let mesh: Mesh;
let web: Pod;
let orders: Pod;
let routers: RunningRouters;

beforeAll(async () => {
  mesh = await startMesh({ tapToken: TAP_TOKEN, publishIntervalMs: 0 });
  const catalogPort = await freePort();
  const secret = await mesh.control.workerSecret("catalog");
  await admin(mesh.control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "web" },
      // Its own header to keep out of taps, beside the ones no tap ever shows.
      { kind: "Service", name: "orders", tapIgnoreHeaders: ["X-Secret-Key"] },
      { kind: "Service", name: "catalog", endpoints: [{ id: "catalog-router", address: `http://127.0.0.1:${catalogPort}` }] },
    ],
  });
  routers = await startRouters({
    control: new URL(mesh.control.url).host,
    trustDomain: TRUST_DOMAIN,
    routers: [{ service: "catalog", secret, app: { worker: "catalog-app" }, port: catalogPort, vars: { WEFT_CONFIG_TTL_MS: "500", WEFT_STATS_INTERVAL_MS: "1000" } }],
    apps: [{ name: "catalog-app", entry: "tests/router/echo-app.ts", vars: { NAME: "catalog" } }],
  });
  [web, orders] = await Promise.all([startPod(mesh, { name: "web-1", ip: "127.0.0.2", service: "web" }), startPod(mesh, { name: "orders-a", ip: "127.0.0.3", service: "orders" })]);
  mesh.pods.push(web, orders);
  for (const service of ["orders", "catalog"]) await until(async () => ((await callVia(web, service, "/warm")).status === 200 ? true : undefined));
}, 120_000);

afterAll(async () => {
  await routers?.stop();
  await mesh?.destroy();
});

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((done) => setTimeout(done, 100));
  }
}

/** A running `weft tap`, its output as it comes. */
interface Tap {
  child: ChildProcessWithoutNullStreams;
  stdout: string;
  stderr: string;
  /** Resolves with the first stdout line matching `pattern`, and when it arrived. */
  line(pattern: RegExp, timeoutMs?: number): Promise<{ line: string; at: number }>;
  /** Ctrl-C, then the exit code. */
  stop(): Promise<number | null>;
}

function tap(args: string[]): Tap {
  const child = spawn(process.execPath, [join(ROOT, "cli/main.ts"), "tap", ...args], {
    env: { ...process.env, NO_COLOR: "1", WEFT_CONTROL_URL: mesh.control.url, WEFT_TOKEN: TAP_TOKEN },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const t: Tap = {
    child,
    stdout: "",
    stderr: "",
    line(pattern, timeoutMs = 30_000) {
      return new Promise((done, fail) => {
        const look = () => {
          const found = t.stdout.split("\n").find((l) => pattern.test(l));
          if (found === undefined) return false;
          clearTimeout(timer);
          child.stdout.off("data", look);
          done({ line: found, at: Date.now() });
          return true;
        };
        const timer = setTimeout(() => {
          child.stdout.off("data", look);
          fail(new Error(`no line matching ${pattern} in ${timeoutMs} ms:\n${t.stdout}\n${t.stderr}`));
        }, timeoutMs);
        if (!look()) child.stdout.on("data", look);
      });
    },
    async stop() {
      const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
      child.kill("SIGINT");
      return exited;
    },
  };
  child.stdout.on("data", (chunk) => (t.stdout += chunk));
  child.stderr.on("data", (chunk) => (t.stderr += chunk));
  return t;
}

/** Sends calls with `path` through web's sidecar to `service` until `tap` shows one (the data planes learn of a session with their next config). */
async function untilTapping(t: Tap, service: string): Promise<void> {
  const path = `/warm-${Math.random().toString(36).slice(2)}`;
  const seen = t.line(new RegExp(path), 30_000);
  let done = false;
  void seen.then(() => (done = true), () => (done = true));
  while (!done) {
    await callVia(web, service, path);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await seen;
}

describe("weft tap", () => {
  it("streams a call's events from both sidecars within a second, and no credential's value", async () => {
    const t = tap(["orders", "-o", "json"]);
    try {
      await untilTapping(t, "orders");
      // Each probe: a fresh path; the time from sending it to its end events on the CLI's stdout.
      const delays: number[] = [];
      for (let i = 0; i < 5; i++) {
        const path = `/probe-${i}-${Math.random().toString(36).slice(2)}`;
        const started = Date.now();
        const inbound = t.line(new RegExp(`"kind":"end".*"direction":"inbound".*"host":"orders".*"path":"${path}"`));
        const outbound = t.line(new RegExp(`"kind":"end".*"direction":"outbound".*"host":"web".*"path":"${path}"`));
        const reply = await callVia(web, "orders", path, { headers: { ...SECRETS, traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" } });
        expect(reply.status).toBe(200);
        const [a, b] = await Promise.all([inbound, outbound]);
        delays.push(Math.max(a.at, b.at) - started);
        const event = JSON.parse(a.line);
        expect(event).toMatchObject({ status: 200, error: null, src: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/web`, dst: "orders", method: "GET", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" });
        const headers = Object.fromEntries(event.requestHeaders);
        expect(headers).toMatchObject({ authorization: null, cookie: null, "x-secret-key": null });
        // Between sidecars over mutual TLS no token travels; where one does, only its name shows.
        expect(headers["weft-identity"] ?? null).toBeNull();
      }
      delays.sort((x, y) => x - y);
      console.log(`weft tap: a call's end events reached the CLI after ${delays.join(", ")} ms (median ${delays[2]} ms)`);
      // The bound, on the median of five, so one slow turn of a loaded machine does not decide it.
      expect(delays[2]).toBeLessThan(1_000);
      // Names only: no value of a credential, nor of the mesh's own identity token (a JWT), anywhere in what the CLI printed.
      expect(t.stdout).not.toContain("SENSITIVE");
      expect(t.stdout).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
    } finally {
      expect(await t.stop()).toBe(0);
    }
    expect(t.stderr).toMatch(/Stopped: \d+ call\(s\) shown/);
    // Every tap session is in the audit log, under the tap credential.
    const audit = (await admin(mesh.control, "GET", "/v1/audit?limit=1000")).json.entries as { actor: string; action: string }[];
    expect(audit.filter((e) => e.actor === "tap").map((e) => e.action)).toEqual(expect.arrayContaining(["tap-start", "tap-stop"]));
  }, 90_000);

  it("samples a router's and a sidecar's events to --max-rps and reports the calls it dropped", async () => {
    const t = tap(["catalog", "--max-rps", "2"]);
    let code: number | null;
    const sent = 40;
    try {
      await untilTapping(t, "catalog");
      // Let every host's bucket fill up again, then send a burst well past 2 a second.
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const before = t.stdout.split("\n").filter((l) => l.startsWith("end ")).length;
      for (let i = 0; i < sent; i++) expect((await callVia(web, "catalog", `/burst-${i}`)).status).toBe(200);
      await until(async () => (/not shown so far/.test(t.stderr) ? true : undefined));
      // Both hosts carried the burst: the catalog router (inbound) and web's sidecar (outbound).
      await until(async () => {
        const ends = t.stdout.split("\n").filter((l) => l.startsWith("end ") && l.includes(":path=/burst-"));
        return ends.some((l) => l.includes("host=catalog")) && ends.some((l) => l.includes("host=web")) ? true : undefined;
      });
      // Wait for the drop counts to come in: shown + dropped accounts for every call of the burst at both hosts.
      let count = "";
      try {
        await until(async () => {
          const shown = t.stdout.split("\n").filter((l) => l.startsWith("end ") && l.includes(":path=/burst-")).length;
          const dropped = Number(/(\d+) call\(s\) not shown so far/.exec(t.stderr.split("\n").filter((l) => l.includes("not shown")).at(-1) ?? "")?.[1] ?? 0);
          count = `${shown} shown + ${dropped} dropped`;
          // The drops count the warm-up's calls too (sent faster than 2 a second), so at least.
          return shown + dropped >= 2 * sent ? true : undefined;
        }, 15_000);
      } catch {
        throw new Error(`the burst's ${2 * sent} calls (at two hosts) came to ${count}:\n${t.stderr}`);
      }
      expect(before).toBeGreaterThan(0);
    } finally {
      code = await t.stop();
    }
    expect(code).toBe(0);
    const summary = /Stopped: (\d+) call\(s\) shown, (\d+) dropped/.exec(t.stderr);
    expect(Number(summary?.[2])).toBeGreaterThan(sent / 2);
  }, 90_000);

  it("needs the tap permission: a read-only or workload credential cannot start one, and bad filters are a 400", async () => {
    const noToken = await fetch(`${mesh.control.url}/v1/taps`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ service: "orders" }) });
    expect(noToken.status).toBe(401);
    await noToken.body?.cancel();
    const bad = await fetch(`${mesh.control.url}/v1/taps`, { method: "POST", headers: { authorization: `Bearer ${TAP_TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ service: "orders", maxRps: -1, pathPrefix: "no-slash" }) });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("weft-error")).toBe("bad-request");
    const unknown = await fetch(`${mesh.control.url}/v1/taps`, { method: "POST", headers: { authorization: `Bearer ${TAP_TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ service: "nope" }) });
    expect(unknown.status).toBe(404);
    await unknown.body?.cancel();
    // The tap token reads nothing else.
    const stats = await fetch(`${mesh.control.url}/v1/stats`, { headers: { authorization: `Bearer ${TAP_TOKEN}` } });
    expect(stats.status).toBe(403);
    await stats.body?.cancel();
  });
});
