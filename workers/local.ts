/**
 * What the local runners of both workers share (`workers/control/local.ts`,
 * `workers/router/local.ts`): bundling a worker for workerd, the compatibility date the local
 * runtime runs it at, and picking a free loopback port. Node-side tooling only; neither
 * worker's runtime code imports it.
 */
import { createServer } from "node:net";
import { resolve } from "node:path";
import { build } from "esbuild";

/** The project's root: bundled modules must sit under workerd's working directory. */
export const ROOT = resolve(import.meta.dirname, "..");

/** The compatibility date of the wrangler configs, which the local runtime must match. */
export const COMPATIBILITY_DATE = "2026-11-01";

const bundles = new Map<string, Promise<string>>();

/**
 * Bundles `entry` (relative to the root) for workerd once per process (~150 ms each): ESM,
 * `cloudflare:*` and `node:*` left to the runtime. esbuild keeps its service child,
 * unreferenced, until the process exits.
 */
export function bundleWorker(entry: string): Promise<string> {
  const path = resolve(ROOT, entry);
  let done = bundles.get(path);
  if (!done) {
    done = build({
      entryPoints: [path],
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      conditions: ["workerd", "worker", "browser"],
      target: "es2023",
      external: ["cloudflare:*", "node:*"],
      logLevel: "silent",
    }).then((result) => result.outputFiles[0]!.text);
    done.catch(() => bundles.delete(path));
    bundles.set(path, done);
  }
  return done;
}

/** A free TCP port on `host` (loopback by default), found by binding port 0 and letting it go. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port"))));
    });
  });
}
