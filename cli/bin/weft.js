#!/usr/bin/env node
// The `weft` command. Weft's CLI is TypeScript run by Node's type stripping (on by default
// from Node 22.18): on such a Node this imports ../main.ts; on an older one it runs the same
// file again through scripts/node.sh, which supplies a Node 24 (fetched once into a cache),
// passing on the signals it gets and exiting as that Node does.
// Either way Node's compile cache is on: it keeps the stripped and compiled modules, so
// later runs skip loading the TypeScript stripper, which is most of the start-up time.
import { spawn } from "node:child_process";
import module from "node:module";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major > 22 || (major === 22 && minor >= 18)) {
  module.enableCompileCache?.();
  const { run } = await import("../main.ts");
  await run();
} else {
  const repo = fileURLToPath(new URL("../../", import.meta.url));
  // Signals aimed at this process are passed to the Node doing the work, and this one waits
  // for it. SIGTERM and SIGHUP go as they are. A terminal's Ctrl-C reaches both processes,
  // while a `kill -INT` reaches this one alone, so SIGINT goes as SIGUSR2, and the child,
  // told so by WEFT_INTERRUPT_SIGNAL, takes its Ctrl-C from SIGUSR2 only: each one counts once
  // (the CLI's second Ctrl-C exits at once).
  const FORWARD = { SIGINT: "SIGUSR2", SIGTERM: "SIGTERM", SIGHUP: "SIGHUP" };
  // NODE_COMPILE_CACHE is Node's own setting; NODE_DISABLE_COMPILE_CACHE still turns it off.
  const env = { NODE_COMPILE_CACHE: join(tmpdir(), "node-compile-cache"), ...process.env, WEFT_INTERRUPT_SIGNAL: FORWARD.SIGINT };
  const child = spawn("sh", [`${repo}scripts/node.sh`, "node", `${repo}cli/main.ts`, ...process.argv.slice(2)], { stdio: "inherit", env });
  for (const [signal, as] of Object.entries(FORWARD)) {
    process.on(signal, () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(as);
    });
  }
  child.once("error", (error) => {
    process.stderr.write(`weft: cannot start Node >= 22.18 through scripts/node.sh: ${error.message}\n`);
    process.exit(1);
  });
  child.once("exit", (code, signal) => {
    if (signal === null) process.exit(code ?? 1);
    // A child ended by a signal ends this process the same way (an interrupt as SIGINT: the
    // child is still scripts/node.sh if it had not started Node yet). Should this process
    // ignore that signal, it exits as a shell reports a death by signal, 128 + its number.
    const own = signal === FORWARD.SIGINT ? "SIGINT" : signal;
    for (const name of Object.keys(FORWARD)) process.removeAllListeners(name);
    process.exitCode = 128 + (constants.signals[own] ?? 0);
    process.kill(process.pid, own);
  });
}
