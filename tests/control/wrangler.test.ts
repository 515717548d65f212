/**
 * The control worker deploys: `wrangler deploy --dry-run` of `workers/control/wrangler.toml`
 * bundles it and checks its bindings, durable object migrations and cron, offline.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

describe("wrangler", () => {
  it("builds the control worker with deploy --dry-run, offline", () => {
    const outdir = mkdtempSync(join(tmpdir(), "weft-control-dry-run-"));
    try {
      const result = spawnSync(process.execPath, [join(root, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", outdir, "-c", "workers/control/wrangler.toml"], {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_HIDE_BANNER: "true", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "true" },
        timeout: 60_000,
      });
      expect(result.status, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toContain("--dry-run: exiting now.");
      expect(result.stdout).toMatch(/STORE.*Store/);
      expect(readdirSync(outdir).some((f) => f.endsWith(".js"))).toBe(true);
      expect(existsSync(join(outdir, "index.js"))).toBe(true);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  }, 60_000);
});
