import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { JEMALLOC_CONF, SIDECAR_ENV, SIDECAR_NODE_FLAGS, jemallocPath, sidecarEnv } from "./node-flags.ts";

const DOCKERFILE = readFileSync(resolve(import.meta.dirname, "../deploy/Dockerfile"), "utf8");

describe("the sidecar's runtime settings", () => {
  it("holds glibc's malloc to one arena, and uses jemalloc where it is installed", () => {
    expect(sidecarEnv(undefined)).toEqual({ MALLOC_ARENA_MAX: "1" });
    expect(sidecarEnv("/usr/lib/libjemalloc.so.2")).toEqual({ MALLOC_ARENA_MAX: "1", LD_PRELOAD: "/usr/lib/libjemalloc.so.2", MALLOC_CONF: JEMALLOC_CONF });
  });

  it("are the image's: the Dockerfile sets the same flags and allocator", () => {
    expect(DOCKERFILE).toContain(`ENTRYPOINT ${JSON.stringify(["node", ...SIDECAR_NODE_FLAGS, "sidecar.mjs"]).replaceAll(",", ", ")}`);
    expect(DOCKERFILE).toContain(`MALLOC_CONF=${JEMALLOC_CONF}`);
    expect(DOCKERFILE).toContain("LD_PRELOAD=/usr/local/lib/libjemalloc.so.2");
    expect(DOCKERFILE).toContain("libjemalloc2");
  });

  it("load jemalloc into a Node process started with them, when this host has it", () => {
    const path = jemallocPath();
    const child = spawnSync(process.execPath, [...SIDECAR_NODE_FLAGS, "-e", 'process.stdout.write(require("node:fs").readFileSync("/proc/self/maps", "utf8"))'], {
      env: { ...SIDECAR_ENV, PATH: process.env.PATH ?? "" },
      encoding: "utf8",
    });
    expect(child.status).toBe(0);
    expect(child.stderr).toBe("");
    // Debian's libjemalloc2 is among the test machine's packages (scripts/system-deps.sh).
    expect(path).toBeDefined();
    expect(child.stdout).toContain("libjemalloc.so.2");
  });
});
