/**
 * The control API's limits and timings, each a `DEFAULT_*` with where its number comes from.
 * Requests past a limit get 400 `bad-request` or 413 `payload-too-large`, never a 5xx.
 */

/**
 * Largest request body: 1 MiB. Workers RPC carries at most about 1 MB per call (anchors,
 * Cloudflare 5.1), and every write crosses into the Durable Object in one call.
 */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * Most bytes of an unwanted request body read and dropped before answering: 8 MiB. A client
 * still sending when the server answers and closes gets a broken pipe instead of the answer
 * (workerd closes a connection whose request body was not read), so a moderately oversized
 * body is drained first, as nginx's lingering close does; anything larger is cut off. Our
 * choice: eight times the body limit, and far below what a client can send in the drain time.
 */
export const DEFAULT_MAX_DRAIN_BYTES = 8 * 1024 * 1024;

/** Longest wait for the next piece of a body being drained: 5 s, nginx's `lingering_timeout`. */
export const DEFAULT_DRAIN_IDLE_MS = 5_000;

/** Longest time spent draining one body: 30 s, nginx's `lingering_time`. */
export const DEFAULT_DRAIN_TIME_MS = 30_000;

/** Deepest JSON nesting accepted: 32. Our choice; the deepest valid resource nests 6 levels. */
export const DEFAULT_MAX_JSON_DEPTH = 32;

/** Most resources (and deletions) in one `POST /v1/apply`: 1,000. Our choice, as a count limit. */
export const DEFAULT_MAX_APPLY_RESOURCES = 1_000;

/**
 * An endpoint's default lease: 40 s, the Kubernetes node lease (`kube-node-lease`,
 * `leaseDurationSeconds: 40`, renewed every 10 s). Registrants renew at a third of it.
 */
export const DEFAULT_LEASE_TTL_MS = 40_000;

/** Shortest lease a registration may ask for: 1 s (anything shorter could not be renewed in time over a WAN). */
export const MIN_LEASE_TTL_MS = 1_000;

/** Longest lease a registration may ask for: 1 hour. */
export const MAX_LEASE_TTL_MS = 60 * 60_000;

/**
 * Longest `?wait=` of a snapshot long-poll: 90 s, below the 100 s after which Cloudflare's
 * proxy gives up on a response that has not started (error 524).
 */
export const DEFAULT_MAX_WAIT_SECONDS = 90;

/**
 * Long-polls held at once by the store (`WEFT_MAX_LONG_POLLS`): 2,000; past it a poll is
 * answered 503 `overloaded` at once. Set from what a held poll costs the local runtime
 * (`bench/long-polls.ts`: about 120 KiB of workerd RSS and 2 descriptors each): twice the
 * cap at once stays near 500 MiB and 8,000 descriptors, well inside the 20,000 open files
 * of our machines, where 10,000 held polls ran workerd out of descriptors (EMFILE) first.
 * A write that wakes the cap's polls is answered within about a second there.
 */
export const DEFAULT_MAX_WAITERS = 2_000;

/**
 * Audit entries kept: the newest 10,000 (about 3 MB of Durable Object storage at ~300 B each);
 * older ones are dropped as new ones come. Our choice, as the bound on the log.
 */
export const DEFAULT_AUDIT_CAP = 10_000;

/** Audit entries per page: 100 unless `?limit=` asks for up to 1,000. */
export const DEFAULT_AUDIT_PAGE = 100;
export const MAX_AUDIT_PAGE = 1_000;

/**
 * Least time between two writes of the KV `snapshot` key: 1 s, Workers KV's limit of one
 * write per second per key (anchors, Cloudflare 5.2). Versions made meanwhile are coalesced
 * into the next publish; long-pollers are answered from the Durable Object, not KV.
 */
export const DEFAULT_PUBLISH_INTERVAL_MS = 1_000;

/** How long `snapshot:<version>` keys stay in KV: a day (KV's `expirationTtl`, minimum 60 s). */
export const DEFAULT_VERSIONED_SNAPSHOT_TTL_S = 86_400;

/** Most validation issues returned in one error body: 100, so an error stays small. */
export const MAX_ISSUES = 100;
