#!/usr/bin/env node
// The `weft` command. Weft's CLI is TypeScript run by Node's type stripping (on by default
// from Node 22.18): on such a Node this imports ../main.ts; on an older one it runs the same
// file again through scripts/node.sh, which supplies a Node 24 (fetched once into a cache).
// Either way Node's compile cache is on: it keeps the stripped and compiled modules, so
// later runs skip loading the TypeScript stripper, which is most of the start-up time.
import { spawnSync } from "node:child_process";
import module from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major > 22 || (major === 22 && minor >= 18)) {
  module.enableCompileCache?.();
  const { run } = await import("../main.ts");
  await run();
} else {
  const repo = fileURLToPath(new URL("../../", import.meta.url));
  // NODE_COMPILE_CACHE is Node's own setting; NODE_DISABLE_COMPILE_CACHE still turns it off.
  const env = { NODE_COMPILE_CACHE: join(tmpdir(), "node-compile-cache"), ...process.env };
  const child = spawnSync("sh", [`${repo}scripts/node.sh`, "node", `${repo}cli/main.ts`, ...process.argv.slice(2)], { stdio: "inherit", env });
  if (child.error) {
    process.stderr.write(`weft: cannot start Node >= 22.18 through scripts/node.sh: ${child.error.message}\n`);
    process.exit(1);
  }
  // A child ended by a signal (Ctrl-C) ends this process the same way.
  if (child.signal) process.kill(process.pid, child.signal);
  process.exit(child.status ?? 1);
}
