/**
 * `npm start` (`weft dev`) as a person runs it: a real process that starts the control plane
 * and the demo mesh in workerd on ports of its own (`--control-port`, `--entry-port`), prints
 * the URL to try and the commands to run, and each of them works as printed: run as a real
 * process in a project folder where `npx weft` is the installed CLI. Then it stops cleanly on
 * Ctrl-C.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectFolder, startDev } from "./dev-process.ts";
import { freePort } from "../workers/local.ts";


let child: ChildProcess | undefined;
let dir: string;
/** What `weft dev` printed so far. */
let output: () => string;
let entry: number;
let control: number;

afterAll(async () => {
  if (child && child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

beforeAll(async () => {
  dir = await projectFolder("weft-dev-");
  [entry, control] = [await freePort(), await freePort()];
  const dev = await startDev(dir, { entry, control }, 60_000);
  child = dev.child;
  output = dev.output;
}, 90_000);

/** The environment a person's shell would have: no WEFT_* settings, and none of npm's own variables from the test runner. */
function shellEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined && !/^(WEFT_|npm_)/i.test(name)) env[name] = value;
  return { ...env, NO_COLOR: "1" };
}

/** Runs `line` in a shell in the project folder, as typed. */
function sh(line: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const run = spawn("sh", ["-c", line], { cwd: dir, env: shellEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    run.stdout.on("data", (chunk) => (stdout += chunk));
    run.stderr.on("data", (chunk) => (stderr += chunk));
    run.on("close", (code) => done({ code, stdout, stderr }));
  });
}

describe("weft dev", () => {
  it("runs the demo mesh and answers the printed URL through every hop", async () => {
    const url = /Try it:\s+curl (\S+)/.exec(output())?.[1];
    expect(url).toBe(`http://127.0.0.1:${entry}/`);
    const response = await fetch(url!);
    const text = await response.text();
    expect(response.status, text).toBe(200);
    const body = JSON.parse(text);
    expect(body.orders.body).toMatchObject({ service: "orders", caller: "spiffe://weft.local/worker/web" });
    expect(["v1", "v2"]).toContain(body.orders.body.version);
    expect(body.orders.body.inventory.body).toMatchObject({ service: "inventory", caller: `spiffe://weft.local/worker/orders-${body.orders.body.version}` });
    // The admin credential was made on first start, readable by its owner only, and the URL
    // it belongs to is written beside it.
    expect((await stat(join(dir, ".weft/admin-token"))).mode & 0o777).toBe(0o600);
    expect((await readFile(join(dir, ".weft/control-url"), "utf8")).trim()).toBe(`http://127.0.0.1:${control}`);
  });

  it("prints commands that work as printed, against the control plane on its own port", async () => {
    // Every `npx weft ...` and `curl ...` the banner shows; `--watch` and `tap` run until stopped, so not those.
    const commands = [...output().matchAll(/(?:npx weft|curl) [^;()\n]*?(?=\s{2,}|;|\(|\)|$)/gm)].map((m) => m[0].trim()).filter((c) => !c.includes("--watch") && !c.startsWith("npx weft tap"));
    expect(commands.map((c) => c.split(" ").slice(0, 3).join(" "))).toEqual([
      `curl http://127.0.0.1:${entry}/`,
      "npx weft dashboard",
      "npx weft stat",
      "npx weft check",
      "npx weft get",
      "npx weft apply",
    ]);
    const results = new Map<string, Awaited<ReturnType<typeof sh>>>();
    for (const command of commands) {
      const result = await sh(command);
      results.set(command.split(" ")[2] ?? command, result);
      expect(result.code, `${command}\n${result.stdout}\n${result.stderr}`).toBe(0);
    }
    // What each shows is this mesh's, reached with the credential weft dev wrote.
    expect(results.get("stat")!.stdout).toMatch(/web/);
    expect(results.get("get")!.stdout).toMatch(/inventory/);
    expect(results.get("apply")!.stdout + results.get("apply")!.stderr).toMatch(/unchanged/);
  }, 120_000);

  it("stops on Ctrl-C, leaving nothing of its process group behind", async () => {
    const exited = new Promise<number | null>((done) => child!.on("exit", (code) => done(code)));
    process.kill(-child!.pid!, "SIGINT");
    // 0 when the command's own shutdown finished first, 130 (Ctrl-C) when Miniflare's exit hook did.
    expect([0, 130]).toContain(await exited);
    // Nothing of its process group is left behind (within 5 s): no workerd outlives `weft dev`.
    const groupAlive = () => {
      try {
        process.kill(-child!.pid!, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 50 && groupAlive(); i++) await new Promise((done) => setTimeout(done, 100));
    expect(groupAlive()).toBe(false);
  }, 30_000);
});
