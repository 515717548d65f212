/**
 * `weft dev` as a person runs it, for the end-to-end tests: a project folder where `npx weft`
 * is the installed CLI, and the real process started there on ports of its own.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");

/** A new folder that is a project with weft installed, as `npx weft` finds it: node_modules/.bin/weft. */
export async function projectFolder(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await mkdir(join(dir, "node_modules/.bin"), { recursive: true });
  await symlink(join(ROOT, "cli/bin/weft.js"), join(dir, "node_modules/.bin/weft"));
  return dir;
}

/** A running `weft dev`: its process (its own process group) and everything it printed so far. */
export interface DevProcess {
  child: ChildProcess;
  output(): string;
}

/**
 * Starts `weft dev --load 0` in `dir` on `ports`, in its own process group (so Ctrl-C reaches it
 * as in a terminal); resolves once its banner is printed, or fails after `timeoutMs` or when it exits.
 */
export async function startDev(dir: string, ports: { entry: number; control: number }, timeoutMs: number): Promise<DevProcess> {
  let output = "";
  const child = spawn(process.execPath, [join(ROOT, "cli/main.ts"), "dev", "--entry-port", String(ports.entry), "--control-port", String(ports.control), "--load", "0"], {
    cwd: dir,
    detached: true,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  await new Promise<void>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`no banner printed in ${timeoutMs / 1000} s:\n${output}`)), timeoutMs);
    const look = () => {
      if (/Press Ctrl-C/.test(output)) {
        clearTimeout(timer);
        done();
      }
    };
    child.stdout!.on("data", look);
    child.on("exit", (code) => fail(new Error(`exited ${code}:\n${output}`)));
  });
  return { child, output: () => output };
}
