/**
 * The V8 flags and environment the sidecar runs with, so its memory stays bounded whatever
 * the host's size: without them V8 sizes its heap for the machine (on a 24 GB host an idle
 * Node proxy sat at ~155 MB RSS). The Dockerfile sets the same on its `ENTRYPOINT` and through
 * `ENV`; tests and the bench pass these.
 */
import { existsSync } from "node:fs";

/**
 * Old generation capped at 64 MB (`--max-old-space-size=64`), so a flood of requests meets
 * the in-flight limit and backpressure rather than growing the heap; young generation
 * semispaces of 4 MB (`--max-semi-space-size=4`): large enough that short-lived request
 * objects die young between scavenges. Smaller ones traded CPU for memory in bench:sidecar
 * (1 MB: about 10 MB less private memory per sidecar under glibc's malloc, about a fifth more
 * CPU per request; 3 MB under jemalloc: no less memory). One V8 helper thread
 * (`--v8-pool-size=1`, Node's default is 4 whatever the cores): the helpers do GC marking,
 * sweeping and background compiles, and on a 2-core host they took the CPU from the sidecars'
 * main threads (perf sched: helper threads waited 2 ms on average to run); with one, the pair's
 * CPU per request came out 6–12 % lower and its throughput 3–9 % higher in three interleaved
 * A/B runs of bench:sidecar, memory unchanged. Linkerd's proxy likewise runs one worker thread
 * by default. No mid-tier compiler (`--no-maglev`): functions go from the baseline compiler
 * to the optimizing one; in five A/B runs of bench:sidecar (2026-12-03) the sidecars without
 * Maglev held 1.8–4.8 MB less private memory under load in four and as much in one (its code
 * and compile zones), CPU per request unchanged within the runs' noise. V8 flags are not
 * allowed in `NODE_OPTIONS`, so the image passes these on `node`'s command line.
 */
export const SIDECAR_NODE_FLAGS: readonly string[] = ["--max-old-space-size=64", "--max-semi-space-size=4", "--v8-pool-size=1", "--no-maglev"];

/** Where Debian and Ubuntu's `libjemalloc2` (and most other distributions') put jemalloc. */
const JEMALLOC_PATHS = [
  "/usr/local/lib/libjemalloc.so.2",
  "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
  "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
  "/usr/lib64/libjemalloc.so.2",
  "/usr/lib/libjemalloc.so.2",
];

/**
 * jemalloc's settings for the sidecar: one arena (`narenas:1`: the sidecar's JavaScript runs
 * on one thread; V8's helper threads allocate little), no per-thread caches (`tcache:false`:
 * about 3 MB less under bench:sidecar's load, with no CPU cost seen beyond the noise), freed
 * pages handed back to the kernel after a second (`dirty_decay_ms:1000`, `muzzy_decay_ms:0`;
 * jemalloc's defaults keep them 10 s).
 */
export const JEMALLOC_CONF = "narenas:1,tcache:false,dirty_decay_ms:1000,muzzy_decay_ms:0";

/** The jemalloc library installed on this host, if any. */
export function jemallocPath(): string | undefined {
  return JEMALLOC_PATHS.find((path) => existsSync(path));
}

/**
 * The environment the sidecar runs with besides its own settings. The allocator is jemalloc
 * where it is installed (`LD_PRELOAD`, the image installs Debian's `libjemalloc2`): glibc's
 * malloc kept about 16 MB of heap under bench:sidecar's load, most of it freed chunks between
 * live ones that it cannot hand back (the V8 compiler's zones and socket read buffers freed
 * out of order), where jemalloc returns whole freed pages: about 9 MB less private memory per
 * sidecar in interleaved runs, with no CPU cost seen beyond the noise. Without jemalloc,
 * glibc's malloc is held to one arena (`MALLOC_ARENA_MAX=1`): by default it gives each thread
 * that allocates its own, up to 8 per core, and V8's helper threads each kept several MB of
 * one (one arena: about 16 MB less than the default).
 */
export const SIDECAR_ENV: Readonly<Record<string, string>> = sidecarEnv(jemallocPath());

/** `SIDECAR_ENV` for a host with jemalloc at `jemalloc`, or without it. */
export function sidecarEnv(jemalloc: string | undefined): Record<string, string> {
  const env: Record<string, string> = { MALLOC_ARENA_MAX: "1" };
  if (jemalloc !== undefined) Object.assign(env, { LD_PRELOAD: jemalloc, MALLOC_CONF: JEMALLOC_CONF });
  return env;
}
