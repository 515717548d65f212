/**
 * The V8 flags the sidecar runs with, so its memory stays bounded whatever the host's size:
 * without them V8 sizes its heap for the machine (on a 24 GB host an idle Node proxy sat at
 * ~155 MB RSS). The Dockerfile sets the same through `NODE_OPTIONS`; tests and the bench pass
 * these.
 */

/**
 * Old generation capped at 64 MB (`--max-old-space-size=64`), so a flood of requests meets
 * the in-flight limit and backpressure rather than growing the heap; young generation
 * semispaces of 4 MB (`--max-semi-space-size=4`): large enough that short-lived request
 * objects die young between scavenges. Smaller ones traded CPU for memory in bench:sidecar
 * (2 MB: about 3 MB less private memory per sidecar, about a fifth more CPU per request).
 */
export const SIDECAR_NODE_FLAGS: readonly string[] = ["--max-old-space-size=64", "--max-semi-space-size=4"];

/**
 * The environment the sidecar runs with besides its own settings: glibc's malloc held to one
 * arena (`MALLOC_ARENA_MAX=1`). By default glibc gives each thread that allocates its own
 * arena, up to 8 per core, and V8's helper threads each kept several MB of one. Under
 * bench:sidecar's load two arenas took about 10 MB of private memory off each sidecar against
 * the default, and one arena about 6 MB more (the second arena's pages), with no CPU cost seen
 * beyond the noise; the main heap itself is fragmented rather than full (malloc_stats: about
 * 11 MB held, 5 MB in use). The Dockerfile sets the same.
 */
export const SIDECAR_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "1" };
