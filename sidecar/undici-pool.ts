/**
 * undici's connection pool, loaded from its own file rather than from undici's index. The
 * index loads all of undici (fetch, WebSocket, caches, mocks, proxies) at start-up: in a bare
 * Node process 5.7 MB more heap and 14 MB more private memory than the pool alone (2 MB and
 * 6 MB), and the sidecar uses the pool only. undici publishes types for its index alone, so
 * the types come from there.
 */
import type { Pool } from "undici";
// @ts-expect-error: undici has no type declarations for its own files (its index carries them)
import pool from "undici/lib/dispatcher/pool.js";

/** undici's `Pool` class, the same one `import { Pool } from "undici"` gives. */
export const UndiciPool: typeof Pool = pool;
