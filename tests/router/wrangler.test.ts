/**
 * Every router deployment of the root `wrangler.toml` builds: `wrangler deploy --dry-run` per
 * environment, offline, with the bindings each needs.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

describe("the router's wrangler.toml", () => {
  it.each(["web", "orders-v1", "orders-v2", "inventory"])("deploys the %s router with --dry-run, offline", (env) => {
    const outdir = mkdtempSync(join(tmpdir(), `weft-router-${env}-`));
    try {
      const result = spawnSync(process.execPath, [join(root, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", outdir, "--env", env], {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_HIDE_BANNER: "true", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "true" },
        timeout: 60_000,
      });
      expect(result.status, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toContain("--dry-run: exiting now.");
      expect(result.stdout).toContain(`env.WEFT_SERVICE ("${env}")`);
      expect(result.stdout).toMatch(/env\.CONTROL \(weft-control\)/);
      expect(result.stdout).toMatch(/env\.WEFT_CONFIG/);
      expect(existsSync(join(outdir, "index.js"))).toBe(true);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  }, 60_000);
});
