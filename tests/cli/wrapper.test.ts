/**
 * `cli/bin/weft.js` on a Node older than 22.18 (the machines' system Node 20): it runs the CLI
 * again on a newer Node through scripts/node.sh, and a signal sent to it alone (a supervisor's
 * SIGTERM, a `kill -INT`) must reach that Node and end what it runs (the local mesh
 * included), with the wrapper waiting and exiting as the child did.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../workers/local.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const WRAPPER = join(ROOT, "cli/bin/weft.js");

/** A Node older than 22.18 on this machine (the system one), which makes the wrapper re-run the CLI. */
function oldNode(): string {
  const candidates = ["/usr/bin/node", "/usr/local/bin/node", ...(process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, "node"))];
  for (const candidate of candidates) {
    if (!existsSync(candidate)) continue;
    const version = spawnSync(candidate, ["-p", "process.versions.node"], { encoding: "utf8" }).stdout.trim();
    const [major = 0, minor = 0] = version.split(".").map(Number);
    if (major < 22 || (major === 22 && minor < 18)) return candidate;
  }
  throw new Error("no Node older than 22.18 found (looked at /usr/bin/node and PATH): this test needs the system Node the project's machines ship");
}

interface Wrapped {
  wrapper: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: Wrapped[] = [];
let dir: string | undefined;

afterEach(() => {
  for (const { wrapper } of started.splice(0)) {
    // Whatever a failed test left, even once the wrapper itself is gone: its whole process group.
    try {
      process.kill(-wrapper.pid!, "SIGKILL");
    } catch {
      // nothing left
    }
  }
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Starts `node(20) cli/bin/weft.js ...args` in a process group of its own. */
function startWrapped(args: string[], cwd: string): Wrapped {
  const wrapper = spawn(oldNode(), [WRAPPER, ...args], { cwd, detached: true, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  wrapper.stdout!.on("data", (chunk) => (text += chunk));
  wrapper.stderr!.on("data", (chunk) => (text += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => wrapper.on("exit", (code, signal) => done({ code, signal })));
  const wrapped = { wrapper, output: () => text, exited };
  started.push(wrapped);
  return wrapped;
}

async function until(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The child processes of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The program a process runs, from its command line. */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return "";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The newer Node the wrapper started, once scripts/node.sh has exec'd it. */
async function nodeChild(wrapped: Wrapped): Promise<number> {
  let pid: number | undefined;
  await until(() => {
    pid = childrenOf(wrapped.wrapper.pid!).find((p) => /\bnode\b.*cli\/main\.ts/.test(commandOf(p)) && !commandOf(p).startsWith("sh "));
    return pid !== undefined;
  }, `the Node the wrapper started\n${wrapped.output()}`);
  return pid!;
}

function refused(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      done(false);
    });
    socket.once("error", () => done(true));
  });
}

describe("cli/bin/weft.js on an older Node", () => {
  it("passes SIGTERM to the Node it started, waits for it, and exits with its status: the local mesh stops", async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-wrapper-"));
    const [entry, control] = [await freePort(), await freePort()];
    const wrapped = startWrapped(["dev", "--entry-port", String(entry), "--control-port", String(control), "--load", "0"], dir);
    await until(() => /Press Ctrl-C/.test(wrapped.output()), `the banner of weft dev\n${wrapped.output()}`, 90_000);
    const child = await nodeChild(wrapped);
    expect(await refused(entry)).toBe(false);

    process.kill(wrapped.wrapper.pid!, "SIGTERM"); // the wrapper alone, as a supervisor would
    const { code, signal } = await wrapped.exited;
    // The child's status: 0 when `weft dev` stopped the mesh itself, 143 (SIGTERM) when
    // Miniflare's exit hook or the 5 s allowance ended it first. Either way the wrapper ended
    // as its child did, not by the signal (as it did before, leaving the mesh running).
    expect(signal, wrapped.output()).toBeNull();
    expect([0, 143], wrapped.output()).toContain(code);
    await until(() => !alive(child), "the child Node to be gone", 10_000);
    expect(await refused(entry)).toBe(true);
    expect(await refused(control)).toBe(true);
  }, 150_000);

  it("passes a SIGINT sent to it alone on as one Ctrl-C, and exits with the child's status", async () => {
    const closed = await freePort();
    const wrapped = startWrapped(["stat", "--watch", "--interval", "200ms", "--control-url", `http://127.0.0.1:${closed}`], tmpdir());
    const child = await nodeChild(wrapped);
    // Running: the dashboard redraws (with an error, as nothing listens there).
    await until(() => (wrapped.output().match(/Every 0\.2s/g) ?? []).length >= 2, `weft stat --watch redrawing\n${wrapped.output()}`);
    process.kill(wrapped.wrapper.pid!, "SIGINT");
    // `stat --watch` ends its loop on Ctrl-C and exits 0; a child killed by the signal, or a
    // wrapper that died of it, would show here as a signal.
    expect(await wrapped.exited).toEqual({ code: 0, signal: null });
    await until(() => !alive(child), "the child Node to be gone", 10_000);
  }, 90_000);

  it("waits through a terminal's Ctrl-C, which reaches both processes, and exits with the child's status", async () => {
    const closed = await freePort();
    const wrapped = startWrapped(["stat", "--watch", "--interval", "200ms", "--control-url", `http://127.0.0.1:${closed}`], tmpdir());
    const child = await nodeChild(wrapped);
    await until(() => /Every 0\.2s/.test(wrapped.output()), `weft stat --watch running\n${wrapped.output()}`);
    // A terminal sends SIGINT to the whole foreground process group: the wrapper waits, and
    // ends with the status of the child, whose watch loop ends on one Ctrl-C with 0.
    process.kill(-wrapped.wrapper.pid!, "SIGINT");
    expect(await wrapped.exited).toEqual({ code: 0, signal: null });
    await until(() => !alive(child), "the child Node to be gone", 10_000);
  }, 90_000);

  it("starts a child that takes Ctrl-C from the wrapper alone, so a terminal's copy is not a second one", async () => {
    // The child as the wrapper starts it, on the Node running this test, with no wrapper: a
    // SIGINT of its own changes nothing, the wrapper's SIGUSR2 is its Ctrl-C.
    const closed = await freePort();
    const cli = spawn(process.execPath, [join(ROOT, "cli/main.ts"), "stat", "--watch", "--interval", "200ms", "--control-url", `http://127.0.0.1:${closed}`], {
      env: { ...process.env, NO_COLOR: "1", WEFT_INTERRUPT_SIGNAL: "SIGUSR2" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let text = "";
    cli.stdout.on("data", (chunk) => (text += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => cli.on("exit", (code, signal) => done({ code, signal })));
    const redraws = () => (text.match(/Every 0\.2s/g) ?? []).length;
    try {
      await until(() => redraws() >= 1, `weft stat --watch running\n${text}`);
      cli.kill("SIGINT");
      const before = redraws();
      await until(() => redraws() >= before + 2, "redraws after the SIGINT it ignores");
      expect(cli.exitCode).toBeNull();
      cli.kill("SIGUSR2");
      expect(await exited).toEqual({ code: 0, signal: null });
    } finally {
      if (cli.exitCode === null && cli.signalCode === null) cli.kill("SIGKILL");
    }
  }, 60_000);

  it("ends the same way as a child that a signal killed", async () => {
    const closed = await freePort();
    const wrapped = startWrapped(["stat", "--watch", "--interval", "200ms", "--control-url", `http://127.0.0.1:${closed}`], tmpdir());
    const child = await nodeChild(wrapped);
    await until(() => /Every 0\.2s/.test(wrapped.output()), `weft stat --watch running\n${wrapped.output()}`);
    // The CLI does not handle SIGHUP, so it ends the child; the wrapper then ends by it too.
    process.kill(wrapped.wrapper.pid!, "SIGHUP");
    expect(await wrapped.exited).toEqual({ code: null, signal: "SIGHUP" });
    await until(() => !alive(child), "the child Node to be gone", 10_000);
  }, 90_000);
});
