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
 * The environment the sidecar runs with besides its own settings: glibc's malloc arenas
 * capped at 2 (`MALLOC_ARENA_MAX`). By default glibc gives each thread that allocates its own
 * arena, up to 8 per core, and V8's helper threads each kept several MB of one; two arenas
 * took about 10 MB of private memory off each sidecar in bench:sidecar, with no CPU cost seen.
 * The Dockerfile sets the same.
 */
export const SIDECAR_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };
