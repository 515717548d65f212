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
 * objects die young between scavenges, small enough for a sidecar's RSS budget of 80 MB.
 */
export const SIDECAR_NODE_FLAGS: readonly string[] = ["--max-old-space-size=64", "--max-semi-space-size=4"];
