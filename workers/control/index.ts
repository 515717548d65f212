/**
 * The control worker (SPEC.md section 6): wiring only. Validates the bindings once per
 * isolate, builds the Hono app over the `Store` and `Stats` Durable Objects, verifies
 * workload tokens against the store's own trust bundle, and runs key rotation on the cron.
 */
import { createTrustBundle, createVerifier } from "../../src/identity/index.ts";
import type { Hono } from "hono";
import { createControlApp } from "./app.ts";
import type { ControlHono, StatsApi, StoreApi } from "./app.ts";
import { CONTROL_AUDIENCE, createAuthenticator } from "./auth.ts";
import { parseEnv } from "./env.ts";
import type { ControlEnv } from "./env.ts";

export { Store } from "./store/index.ts";
export { Stats } from "./stats/index.ts";

/** The one store object's name, and the one aggregator's. */
const STORE_NAME = "config";
const STATS_NAME = "stats";

const storeOf = (env: ControlEnv) => env.STORE.get(env.STORE.idFromName(STORE_NAME)) as unknown as StoreApi;
const statsOf = (env: ControlEnv) => env.STATS.get(env.STATS.idFromName(STATS_NAME)) as unknown as StatsApi;

/** The app for this isolate's `env` (per isolate: built on first request, reused after). */
const apps = new WeakMap<object, Hono<ControlHono>>();

function appFor(rawEnv: object): Hono<ControlHono> {
  let app = apps.get(rawEnv);
  if (app) return app;
  const env = parseEnv(rawEnv);
  // The control plane verifies workload tokens with its own bundle, fetched from the store
  // (per isolate; refreshed on an unknown kid, at most every 30 s).
  const bundle = createTrustBundle({ fetchJwks: () => storeOf(env).jwks() });
  const verifier = createVerifier({ bundle, issuer: env.WEFT_ISSUER_URL, audience: CONTROL_AUDIENCE, trustDomain: env.WEFT_TRUST_DOMAIN });
  app = createControlApp({
    store: () => storeOf(env),
    stats: () => statsOf(env),
    authenticate: createAuthenticator({
      adminTokenSha256: env.WEFT_ADMIN_TOKEN_SHA256,
      readTokenSha256: env.WEFT_READ_TOKEN_SHA256,
      tapTokenSha256: env.WEFT_TAP_TOKEN_SHA256,
      adminIdentities: env.WEFT_ADMIN_IDENTITIES,
      verifyToken: (token) => verifier.verify(token),
    }),
    trustDomain: env.WEFT_TRUST_DOMAIN,
    // Other isolates pick a revoked key's removal up at their next refresh (the bundle's 5-minute hint).
    onKeysRotated: () => bundle.refresh(),
  });
  apps.set(rawEnv, app);
  return app;
}

export default {
  fetch(request, env, ctx) {
    return appFor(env).fetch(request, env, ctx);
  },
  /** The cron trigger: applies due key rotation (publishing the next key ahead of its use). */
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(storeOf(parseEnv(env)).maintainKeys());
  },
} satisfies ExportedHandler<Record<string, unknown>>;
