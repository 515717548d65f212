/**
 * Runs the `weft` command as a subprocess (through `cli/bin/weft.js`, as a user would) against
 * a real control worker in workerd, started on an ephemeral loopback port.
 */
import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { RunningControl } from "../../workers/control/local.ts";
import { startControl } from "../../workers/control/local.ts";

const BIN = resolve(import.meta.dirname, "../../cli/bin/weft.js");

/** The admin credential the test control planes use; tests check it is never printed. */
export const ADMIN_TOKEN = "weft-test-admin-8c1f0e5d2a";

/** What one run of `weft` printed and exited with. */
export interface WeftRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A control plane for a test file, and a folder to run `weft` in. */
export interface CliFixture {
  control: RunningControl;
  /** A fresh working folder (no `.weft/`), also used as HOME so no user config is read. */
  dir: string;
  /** Runs `weft args` with WEFT_CONTROL_URL and WEFT_TOKEN set for this control plane. */
  weft(args: string[], options?: { stdin?: string; env?: Record<string, string> }): Promise<WeftRun>;
  /** Writes `text` to `name` in `dir`, answering its path. */
  file(name: string, text: string): Promise<string>;
  /** Calls the control API as the admin. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
}

/** Runs `weft` once with exactly `env` (plus PATH), in `cwd`. */
export function runWeft(args: string[], env: Record<string, string>, cwd: string, stdin?: string): Promise<WeftRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? "", HOME: cwd, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", fail);
    child.on("close", (code) => done({ code, stdout, stderr }));
    child.stdin.end(stdin ?? "");
  });
}

/** Starts a control plane and answers the fixture; call `control.stop()` after the tests. */
export async function startFixture(): Promise<CliFixture> {
  const control = await startControl({ port: 0, adminToken: ADMIN_TOKEN, publishIntervalMs: 0 });
  const dir = await mkdtemp(join(tmpdir(), "weft-cli-"));
  return {
    control,
    dir,
    weft: (args, options = {}) => runWeft(args, { WEFT_CONTROL_URL: control.url, WEFT_TOKEN: ADMIN_TOKEN, ...options.env }, dir, options.stdin),
    async file(name, text) {
      const path = join(dir, name);
      await writeFile(path, text);
      return path;
    },
    async admin(method, path, body) {
      const response = await fetch(`${control.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text === "" ? undefined : text.startsWith("{") || text.startsWith("[") ? JSON.parse(text) : text };
    },
  };
}
