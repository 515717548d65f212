/**
 * CLI start-up benchmark: how long `weft --help` and `weft get services` take as a user runs
 * them (a new process through `cli/bin/weft.js`, to exit), beside a baseline of `node -e 0`
 * measured in the same run, so the ratio says what weft adds to Node's own start-up. `get`
 * talks to a real control worker in workerd on a loopback port, holding 20 services. Runs
 * are interleaved (one of each case per round) so machine noise hits every case alike;
 * medians of ROUNDS rounds after WARMUP. When a Node older than 22.18 is on PATH (the
 * machines' Node 20), `weft --help` through it is shown too: that path re-executes itself
 * through scripts/node.sh. The target: `weft --help` under 300 ms.
 *
 * Run: sh scripts/node.sh node bench/cli.ts
 */
import { execFileSync, spawn } from "node:child_process";
import { resolve } from "node:path";
import { startControl } from "../workers/control/local.ts";

const ROOT = resolve(import.meta.dirname, "..");
const BIN = resolve(ROOT, "cli/bin/weft.js");
const ROUNDS = 15;
const WARMUP = 2;
const HELP_TARGET_MS = 300;
const ADMIN_TOKEN = "bench-cli-admin-token";

/** Milliseconds from spawn to exit of `command args`; throws on a non-zero exit. */
function timeRun(command: string, args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((done, fail) => {
    const start = performance.now();
    const child = spawn(command, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/", ...env }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", fail);
    child.on("close", (code) => (code === 0 ? done(performance.now() - start) : fail(new Error(`${command} ${args.join(" ")} exited ${code}: ${stderr}`))));
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const round1 = (n: number) => Math.round(n * 10) / 10;

/** A Node on PATH older than 22.18 (the machines' system Node), if any: `weft` re-executes itself there. */
function oldNode(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const candidate = resolve(dir || ".", "node");
    if (candidate === process.execPath) continue;
    try {
      const version = execFileSync(candidate, ["-p", "process.versions.node"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
      const [major, minor] = version.split(".").map(Number) as [number, number];
      if (major < 22 || (major === 22 && minor < 18)) return candidate;
    } catch {
      // not there
    }
  }
  return undefined;
}

const control = await startControl({ port: 0, adminToken: ADMIN_TOKEN });
try {
  const resources = Array.from({ length: 20 }, (_, i) => ({ kind: "Service", name: `service-${i}` }));
  const applied = await fetch(`${control.url}/v1/apply`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ resources }),
  });
  if (!applied.ok) throw new Error(`apply answered ${applied.status}`);

  const env = { WEFT_CONTROL_URL: control.url, WEFT_TOKEN: ADMIN_TOKEN, NO_COLOR: "1" };
  const cases: { name: string; run: () => Promise<number> }[] = [
    { name: "node -e 0 (baseline)", run: () => timeRun(process.execPath, ["-e", "0"], env) },
    { name: "weft --help", run: () => timeRun(process.execPath, [BIN, "--help"], env) },
    { name: "weft get services (20)", run: () => timeRun(process.execPath, [BIN, "get", "services"], env) },
  ];
  const old = oldNode();
  if (old) cases.push({ name: `weft --help on Node ${execFileSync(old, ["-v"], { encoding: "utf8" }).trim()} (re-exec)`, run: () => timeRun(old, [BIN, "--help"], env) });

  const samples = cases.map(() => [] as number[]);
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    for (const [i, c] of cases.entries()) {
      const ms = await c.run();
      if (round >= WARMUP) samples[i]!.push(ms);
    }
  }
  const medians = samples.map(median);
  const baseline = medians[0]!;
  const width = Math.max(...cases.map((c) => c.name.length));
  console.log(`weft CLI start-up: spawn to exit, median of ${ROUNDS} interleaved rounds (after ${WARMUP} warm-up), Node ${process.versions.node}`);
  console.log(`${"case".padEnd(width)}  median ms  min ms  vs baseline`);
  cases.forEach((c, i) => {
    console.log(`${c.name.padEnd(width)}  ${medians[i]!.toFixed(1).padStart(9)}  ${Math.min(...samples[i]!).toFixed(1).padStart(6)}  ${(medians[i]! / baseline).toFixed(2).padStart(10)}x`);
  });
  const help = medians[1]!;
  const get = medians[2]!;
  console.log(`target: weft --help under ${HELP_TARGET_MS} ms: ${help < HELP_TARGET_MS ? "met" : "NOT met"} (${help.toFixed(1)} ms)`);
  const figures: Record<string, unknown> = {
    bench: "cli",
    help_ms: round1(help),
    get_ms: round1(get),
    baseline_ms: round1(baseline),
    help_ratio: Math.round((help / baseline) * 100) / 100,
    get_ratio: Math.round((get / baseline) * 100) / 100,
  };
  if (old) figures.help_reexec_ms = round1(medians[3]!);
  console.log(JSON.stringify(figures));
} finally {
  await control.stop();
}
