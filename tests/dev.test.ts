/**
 * `npm start` (`weft dev`) as a person runs it: a real process that starts the control plane
 * and the demo mesh in workerd, prints the URL to try, answers it through every hop, and
 * stops cleanly on Ctrl-C.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../workers/local.ts";

const ROOT = resolve(import.meta.dirname, "..");

let child: ChildProcess | undefined;
let dir: string | undefined;

afterAll(async () => {
  if (child && child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("weft dev", () => {
  it("runs the demo mesh, answers the printed URL through every hop, and stops on Ctrl-C", async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-dev-"));
    const [entry, control] = [await freePort(), await freePort()];
    child = spawn(process.execPath, [join(ROOT, "cli/main.ts"), "dev", "--entry-port", String(entry), "--control-port", String(control), "--load", "0"], {
      cwd: dir,
      detached: true, // its own process group, so Ctrl-C reaches it as in a terminal
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (chunk) => (output += chunk));
    child.stderr!.on("data", (chunk) => (output += chunk));
    const url = await new Promise<string>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`no URL printed in 60 s:\n${output}`)), 60_000);
      const look = () => {
        const match = /Try it:\s+curl (\S+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          done(match[1]!);
        }
      };
      child!.stdout!.on("data", look);
      child!.on("exit", (code) => fail(new Error(`exited ${code}:\n${output}`)));
    });
    expect(url).toBe(`http://127.0.0.1:${entry}/`);

    const response = await fetch(url);
    const text = await response.text();
    expect(response.status, text).toBe(200);
    const body = JSON.parse(text);
    expect(body.orders.body).toMatchObject({ service: "orders", caller: "spiffe://weft.local/worker/web" });
    expect(["v1", "v2"]).toContain(body.orders.body.version);
    expect(body.orders.body.inventory.body).toMatchObject({ service: "inventory", caller: `spiffe://weft.local/worker/orders-${body.orders.body.version}` });
    // The admin credential was made on first start, readable by its owner only.
    expect((await stat(join(dir, ".weft/admin-token"))).mode & 0o777).toBe(0o600);

    const exited = new Promise<number | null>((done) => child!.on("exit", (code) => done(code)));
    process.kill(-child.pid!, "SIGINT");
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
  }, 90_000);
});
