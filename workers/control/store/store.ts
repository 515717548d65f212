/**
 * The `Store` Durable Object: the control plane's single source of truth. One instance
 * (named `config`) serializes every write, keeps its state in SQLite-backed storage, publishes
 * each new snapshot to KV for the routers, answers long-polls from memory, expires endpoint
 * leases with an alarm, and runs the identity issuer over its own storage.
 */
import { DurableObject } from "cloudflare:workers";
import { decodeJwt } from "jose";
import { DEFAULT_MAX_TAPS } from "../../../src/core/config/index.ts";
import type { Endpoint, TapSessionConfig } from "../../../src/core/config/index.ts";
import type { Issuer, KeyState, RotateOptions, ServiceAccountVerifier, TrustBundleDocument } from "../../../src/identity/index.ts";
import { MeshError } from "../../../src/core/errors.ts";
import { createIssuer, createServiceAccountVerifier, verifyBootstrapSecret, workerId } from "../../../src/identity/index.ts";
import { CaInputError, createCa, type AuthorityView, type Ca, type CaState, type IssuedCertificate } from "../../../src/identity/ca.ts";
import { parseEnv } from "../env.ts";
import type { ControlEnv } from "../env.ts";
import { DEFAULT_AUDIT_CAP } from "../limits.ts";
import { failure } from "./model.ts";
import type { Actor, AuditEntry, AuditPage, Change, Expectation, Kind, Lease, Outcome, SnapshotText, StoredResource, WriteResult } from "./model.ts";
import { ConfigState, keys } from "./state.ts";
import type { Mutation } from "./state.ts";

const IDENTITY_KEYS = "identity:keys";
const IDENTITY_CA = "identity:ca";

/** Long-polls answered per turn of the event loop when a version lands: 100 (see `#wake`). Our choice. */
const WAKE_SLICE = 100;
const WORKER_SECRET = (service: string) => `boot:${service}`;
const CLUSTER = (name: string) => `cluster:${name}`;
const TAP = (id: string) => `tap:${id}`;

/** A Kubernetes cluster whose projected ServiceAccount tokens the issuer accepts as bootstrap. */
export interface ClusterTrust {
  /** The cluster's service-account issuer (`--service-account-issuer`): the tokens' `iss`. */
  issuer: string;
  /** The audience the pods request their projected token for. */
  audience: string;
  /** The cluster's OIDC JWK Set (public keys), inline. */
  jwks: { keys: unknown[] };
}

/** A bootstrap credential, already shape-checked by the API. */
export type BootstrapCredential = { kind: "serviceAccount"; token: string } | { kind: "worker"; service: string; secret: string };

/** A minted token and what it says. */
export interface IssuedToken {
  token: string;
  id: string;
  audience: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** The answer to a snapshot read: the snapshot, or word that the caller's version is current. */
export type SnapshotAnswer = SnapshotText | { version: number; notModified: true };

/** The store's persisted counters. */
interface Meta {
  version: number;
  /** The oldest audit sequence number kept, and the next to be written. */
  auditFirst: number;
  auditNext: number;
  /** The issuer's key-set sequence the current version's trust bundle reflects. */
  jwksSequence: number;
  /** The CA's anchor-set sequence the current version's `trustAnchors` reflect. */
  caSequence?: number;
  /** Epoch ms the store last noted it was running (each commit, and a heartbeat while leases exist). */
  aliveAt?: number;
}

/**
 * The config store. Each public method is an RPC the worker calls; each either fails with an
 * `Outcome` failure and changes nothing, or applies its whole change before it answers.
 */
export class Store extends DurableObject {
  readonly #config: ControlEnv;
  readonly #state: ConfigState;
  readonly #meta: Meta;
  readonly #issuer: Issuer;
  readonly #ca: Ca;
  #anchors: string[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #clusterVerifiers = new Map<string, { canonical: string; verifier: ServiceAccountVerifier }>();
  #cache: SnapshotText | undefined;
  #jwks: TrustBundleDocument = { keys: [] };
  #kids: Set<string>;
  #published = 0;
  #lastPublishAt = Number.NEGATIVE_INFINITY;
  #publishing = false;
  #keysCheckAt = Number.POSITIVE_INFINITY;
  #alarmAt: number | undefined;
  /** Live tap sessions by id (issue 14), carried in the snapshot so data planes learn of them. */
  readonly #taps = new Map<string, TapSessionConfig>();

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    this.#config = parseEnv(env);
    const kv = ctx.storage.kv;
    this.#meta = kv.get<Meta>(keys.meta) ?? { version: 0, auditFirst: 1, auditNext: 1, jwksSequence: 0 };
    this.#kids = new Set((kv.get<KeyState>(IDENTITY_KEYS)?.keys ?? []).map((k) => k.kid));
    const resources = [...kv.list<StoredResource>({ prefix: "r:" })].map(([, value]) => value);
    const leases = [...kv.list<Lease>({ prefix: "l:" })].map(([, value]) => value);
    this.#state = new ConfigState({ version: this.#meta.version, resources, leases });
    for (const [, tap] of kv.list<TapSessionConfig>({ prefix: "tap:" })) this.#taps.set(tap.id, tap);
    this.#issuer = createIssuer({
      issuer: this.#config.WEFT_ISSUER_URL,
      trustDomain: this.#config.WEFT_TRUST_DOMAIN,
      keys: {
        get: async () => kv.get<KeyState>(IDENTITY_KEYS),
        put: async (state) => kv.put(IDENTITY_KEYS, state),
      },
    });
    this.#ca = createCa({
      trustDomain: this.#config.WEFT_TRUST_DOMAIN,
      state: {
        get: async () => kv.get<CaState>(IDENTITY_CA),
        put: async (state) => kv.put(IDENTITY_CA, state),
      },
    });
    void ctx.blockConcurrencyWhile(async () => {
      // Before anything commits (and so moves the heartbeat): was the store away?
      this.#resume();
      await this.#maintainKeys();
      this.#expire();
      this.#publish();
      this.#schedule();
    });
  }

  /** One resource, or null. */
  async get(kind: Kind, name: string): Promise<StoredResource | null> {
    return this.#state.get(kind, name) ?? null;
  }

  /** Every resource of `kind`, by name, with the store version they were read at. */
  async list(kind: Kind): Promise<{ version: number; items: StoredResource[] }> {
    return { version: this.#state.version, items: this.#state.list(kind) };
  }

  /** Applies `changes` all or none (see `ConfigState.write`). */
  async write(changes: Change[], actor: Actor): Promise<Outcome<WriteResult>> {
    const result = this.#state.write(changes, actor);
    if (!result.ok) return result;
    if (result.value.mutation) this.#commit(result.value.mutation);
    return { ok: true, value: result.value.value };
  }

  /** The registered endpoints of a service, live leases only. */
  async endpoints(service: string): Promise<Outcome<Lease[]>> {
    this.#expire();
    if (!this.#state.get("Service", service)) return failure("unknown-service", `no service "${service}"`);
    return { ok: true, value: this.#state.leases(service) };
  }

  /** Registers or renews an endpoint with a lease of `ttlMs`. */
  async register(service: string, endpoint: Endpoint, ttlMs: number, expect: Expectation, actor: Actor): Promise<Outcome<Lease & { outcome: "created" | "updated" | "renewed" }>> {
    this.#expire();
    const before = this.#state.version;
    const existed = this.#state.leases(service).some((l) => l.endpoint.id === endpoint.id);
    const result = this.#state.register(service, endpoint, ttlMs, expect, actor, Date.now());
    if (!result.ok) return result;
    if (result.value.mutation) this.#commit(result.value.mutation);
    const outcome = !existed ? "created" : this.#state.version === before ? "renewed" : "updated";
    return { ok: true, value: { ...result.value.value, outcome } };
  }

  /** Removes a registered endpoint. */
  async deregister(service: string, id: string, expect: Expectation, actor: Actor): Promise<Outcome<WriteResult>> {
    this.#expire();
    const result = this.#state.deregister(service, id, expect, actor);
    if (!result.ok) return result;
    if (result.value.mutation) this.#commit(result.value.mutation);
    return { ok: true, value: result.value.value };
  }

  /**
   * The current snapshot, unless its version is one of `ifNoneMatch`: then, with `waitMs`
   * above 0, the first newer snapshot (or not-modified once `waitMs` passes).
   */
  async snapshot(ifNoneMatch: number[] | "any" | null, waitMs: number): Promise<Outcome<SnapshotAnswer>> {
    this.#expire();
    const held = ifNoneMatch === "any" ? [this.#state.version] : ifNoneMatch;
    const current = () => (held?.includes(this.#state.version) ? { version: this.#state.version, notModified: true as const } : this.#text());
    const answer = current();
    if (!("notModified" in answer) || waitMs <= 0) return { ok: true, value: answer };
    if (this.#waiters.size >= this.#config.WEFT_MAX_LONG_POLLS) return { ...failure("overloaded", "too many long-polls are waiting; try again"), retryAfter: 1 };
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, waitMs);
      this.#waiters.add(wake);
    });
    this.#expire();
    return { ok: true, value: current() };
  }

  /** A page of the audit log: entries after sequence `after`, oldest first. */
  async audit(after: number, limit: number): Promise<AuditPage> {
    const start = Math.max(after + 1, this.#meta.auditFirst);
    const entries = [...this.ctx.storage.kv.list<AuditEntry>({ start: keys.audit(start), end: keys.audit(this.#meta.auditNext), limit })].map(([, e]) => e);
    const last = entries.at(-1)?.seq;
    return { entries, next: last !== undefined && last + 1 < this.#meta.auditNext ? last : null };
  }

  /**
   * Starts a tap session: a new version whose snapshot lists it, and an audit line naming who
   * tapped what. Sessions past their end are dropped first; at `DEFAULT_MAX_TAPS` live ones, 503.
   */
  async startTap(tap: TapSessionConfig, actor: Actor): Promise<Outcome<TapSessionConfig>> {
    this.#dropEndedTaps();
    if (this.#taps.size >= DEFAULT_MAX_TAPS) return { ...failure("overloaded", `at most ${DEFAULT_MAX_TAPS} tap sessions at once; stop one first`), retryAfter: 5 };
    this.#taps.set(tap.id, tap);
    const filters = [tap.to && `to ${tap.to}`, tap.route && `route ${tap.route}`, tap.method, tap.pathPrefix && `path ${tap.pathPrefix}`].filter(Boolean).join(", ");
    this.#commit(this.#state.bump(actor, "tap-start", [{ kind: "Tap", name: `${tap.id} (${tap.service}${filters ? `; ${filters}` : ""})`, outcome: "created" }], { [TAP(tap.id)]: tap }));
    return { ok: true, value: tap };
  }

  /** Ends a tap session (a new version without it); false when there is none by that id. */
  async stopTap(id: string, actor: Actor): Promise<boolean> {
    const tap = this.#taps.get(id);
    if (!tap) return false;
    this.#taps.delete(id);
    const mutation = this.#state.bump(actor, "tap-stop", [{ kind: "Tap", name: `${id} (${tap.service})`, outcome: "deleted" }]);
    this.#commit({ ...mutation, deletes: [TAP(id)] });
    return true;
  }

  /** The live tap sessions. */
  async taps(): Promise<TapSessionConfig[]> {
    this.#dropEndedTaps();
    return [...this.#taps.values()];
  }

  /** The trust bundle: every published signing key (public halves). */
  async jwks(): Promise<TrustBundleDocument> {
    // The issuer rotates lazily when a rotation is due; a changed key set becomes a version.
    await this.#syncJwks("system");
    return this.#jwks;
  }

  /** Exchanges a bootstrap credential for a token for `audience`. Failures say nothing of what exists. */
  async issueToken(credential: BootstrapCredential, audience: string, lifetimeMs: number | undefined): Promise<Outcome<IssuedToken>> {
    const id = await this.#bootstrap(credential);
    if (!id) return failure("unauthenticated", "the bootstrap credential is not valid");
    const token = await this.#issuer.mint(id, audience, lifetimeMs === undefined ? {} : { lifetime: lifetimeMs });
    await this.#syncJwks("system");
    const { exp } = decodeJwt(token);
    return { ok: true, value: { token, id, audience, expiresAt: (exp ?? 0) * 1000 } };
  }

  /**
   * Signs an X.509-SVID for the identity a bootstrap credential proves, over the key of the
   * workload's CSR. Failures say nothing of what exists.
   */
  async issueCertificate(credential: BootstrapCredential, csr: string, lifetimeMs: number | undefined): Promise<Outcome<IssuedCertificate & { trustAnchors: string[] }>> {
    const id = await this.#bootstrap(credential);
    if (!id) return failure("unauthenticated", "the bootstrap credential is not valid");
    try {
      const issued = await this.#ca.issue(csr, id, lifetimeMs);
      await this.#syncCa("system");
      return { ok: true, value: { ...issued, trustAnchors: this.#anchors } };
    } catch (error) {
      if (error instanceof CaInputError) return failure("bad-request", error.message);
      throw error;
    }
  }

  /** The CA's trust anchors (PEM), as the snapshot carries them. */
  async trustAnchors(): Promise<string[]> {
    await this.#syncCa("system");
    return this.#anchors;
  }

  /** The CA's authorities, without keys (for `weft check`). */
  async caStatus(): Promise<AuthorityView[]> {
    return this.#ca.describe();
  }

  /**
   * Adds a new authority that signs after `activateInMs`: one the CA makes, or the operator's
   * own (`bring`). Its anchor goes out in the snapshot at once, beside the old one.
   */
  async rotateCa(activateInMs: number | undefined, bring: { anchors: string; issuer: string; issuerKey: string } | undefined, actor: Actor): Promise<Outcome<AuthorityView[]>> {
    try {
      if (bring) await this.#ca.bring(bring, activateInMs);
      else await this.#ca.rotate(activateInMs);
    } catch (error) {
      if (error instanceof CaInputError) return failure("bad-request", error.message);
      throw error;
    }
    await this.#maintainKeys();
    await this.#syncCa(actor);
    this.#schedule();
    return { ok: true, value: await this.#ca.describe() };
  }

  /** Rotates the signing keys now (see `Issuer.rotate`); the new bundle goes out as a new version. */
  async rotateKeys(options: RotateOptions, actor: Actor): Promise<{ version: number; keys: { kid: string; activeFrom: string }[] }> {
    const state = await this.#issuer.rotate(options);
    await this.#syncJwks(actor);
    this.#keysCheckAt = (await this.#issuer.maintain()).nextCheckAt;
    this.#schedule();
    return { version: this.#state.version, keys: state.keys.map((k) => ({ kid: k.kid, activeFrom: new Date(k.activeFrom).toISOString() })) };
  }

  /** Applies due key rotation (the cron trigger and the alarm call this). */
  async maintainKeys(): Promise<void> {
    await this.#maintainKeys();
    this.#schedule();
  }

  /** Stores the hash of a router worker's bootstrap secret (the secret never reaches the store). */
  async setWorkerSecret(service: string, hash: string, actor: Actor): Promise<{ created: boolean }> {
    const kv = this.ctx.storage.kv;
    const created = kv.get(WORKER_SECRET(service)) === undefined;
    this.ctx.storage.transactionSync(() => {
      kv.put(WORKER_SECRET(service), hash);
      this.#appendAudit({ actor, action: "write", changes: [{ kind: "WorkerSecret", name: service, outcome: created ? "created" : "updated" }], fromVersion: this.#state.version, toVersion: this.#state.version });
    });
    return { created };
  }

  /** Forgets a router worker's bootstrap secret; false when there was none. */
  async deleteWorkerSecret(service: string, actor: Actor): Promise<boolean> {
    const kv = this.ctx.storage.kv;
    if (kv.get(WORKER_SECRET(service)) === undefined) return false;
    this.ctx.storage.transactionSync(() => {
      kv.delete(WORKER_SECRET(service));
      this.#appendAudit({ actor, action: "write", changes: [{ kind: "WorkerSecret", name: service, outcome: "deleted" }], fromVersion: this.#state.version, toVersion: this.#state.version });
    });
    return true;
  }

  /** The services that have a bootstrap secret (names only). */
  async workerSecrets(): Promise<string[]> {
    return [...this.ctx.storage.kv.list({ prefix: "boot:" })].map(([key]) => key.slice("boot:".length));
  }

  /** Trusts (or re-trusts) a Kubernetes cluster's ServiceAccount tokens as bootstrap credentials. */
  async putCluster(name: string, cluster: ClusterTrust, actor: Actor): Promise<{ created: boolean }> {
    const kv = this.ctx.storage.kv;
    const created = kv.get(CLUSTER(name)) === undefined;
    this.ctx.storage.transactionSync(() => {
      kv.put(CLUSTER(name), cluster);
      this.#appendAudit({ actor, action: "write", changes: [{ kind: "Cluster", name, outcome: created ? "created" : "updated" }], fromVersion: this.#state.version, toVersion: this.#state.version });
    });
    return { created };
  }

  /** Stops trusting a cluster; false when it was not trusted. */
  async deleteCluster(name: string, actor: Actor): Promise<boolean> {
    const kv = this.ctx.storage.kv;
    if (kv.get(CLUSTER(name)) === undefined) return false;
    this.ctx.storage.transactionSync(() => {
      kv.delete(CLUSTER(name));
      this.#appendAudit({ actor, action: "write", changes: [{ kind: "Cluster", name, outcome: "deleted" }], fromVersion: this.#state.version, toVersion: this.#state.version });
    });
    this.#clusterVerifiers.delete(name);
    return true;
  }

  /** The trusted clusters. */
  async clusters(): Promise<(ClusterTrust & { name: string })[]> {
    return [...this.ctx.storage.kv.list<ClusterTrust>({ prefix: "cluster:" })].map(([key, value]) => ({ name: key.slice("cluster:".length), ...value }));
  }

  /** The alarm: notes the store is running, expires leases, applies due key rotation, publishes what is pending. */
  override async alarm(): Promise<void> {
    this.#alarmAt = undefined;
    this.#heartbeat();
    this.#expire();
    if (Date.now() >= this.#keysCheckAt) await this.#maintainKeys();
    this.#publish();
    this.#schedule();
  }

  /** Persists `mutation` atomically with the new version and its audit line, then tells everyone. */
  #commit(mutation: Mutation): void {
    const kv = this.ctx.storage.kv;
    try {
      this.ctx.storage.transactionSync(() => {
        for (const [key, value] of Object.entries(mutation.puts)) kv.put(key, value);
        for (const key of mutation.deletes) kv.delete(key);
        if (mutation.audit) this.#appendAudit(mutation.audit);
        this.#meta.version = mutation.version;
        this.#meta.aliveAt = Date.now();
        kv.put(keys.meta, this.#meta);
      });
    } catch (error) {
      // Memory is already ahead of storage: restart the object so it reloads what is stored.
      this.ctx.abort("weft-control: a storage transaction failed");
      throw error;
    }
    if (mutation.audit && mutation.audit.toVersion !== mutation.audit.fromVersion) this.#changed();
    else this.#schedule();
  }

  /** Appends one audit line (inside a storage transaction), dropping the oldest past the cap. */
  #appendAudit(entry: Omit<AuditEntry, "seq" | "at">): void {
    const kv = this.ctx.storage.kv;
    const seq = this.#meta.auditNext++;
    kv.put(keys.audit(seq), { seq, at: new Date().toISOString(), ...entry } satisfies AuditEntry);
    while (this.#meta.auditNext - this.#meta.auditFirst > DEFAULT_AUDIT_CAP) kv.delete(keys.audit(this.#meta.auditFirst++));
    kv.put(keys.meta, this.#meta);
  }

  /** A new version exists: drop the cached text, wake long-polls, publish, re-arm the alarm. */
  #changed(): void {
    this.#cache = undefined;
    this.#wake([...this.#waiters]);
    this.#publish();
    this.#schedule();
  }

  /**
   * After a restart: when the store was away for longer than its heartbeat allows, gives the
   * leases their grace period (see `ConfigState.resume`) and persists it. Either way the
   * store is running from now on, and notes it.
   */
  #resume(): void {
    const now = Date.now();
    const away = this.#meta.aliveAt === undefined ? undefined : now - this.#meta.aliveAt;
    const resumed = this.#state.resume(now, this.#meta.aliveAt);
    if (resumed.mutation) {
      const ends = resumed.value.map((l) => l.expiresAt);
      console.log(`weft-control: back after ${away === undefined ? "an unknown time" : `${Math.round(away / 1000)} s`} away; ${resumed.value.length} endpoint lease(s) extended by one TTL, to ${new Date(Math.max(...ends)).toISOString()} at the latest`);
      this.#commit(resumed.mutation);
    } else this.#heartbeat(true);
  }

  /**
   * Notes that the store is running (`meta.aliveAt`), while endpoints hold leases, once per
   * heartbeat (commits note it too); `force` notes it now.
   */
  #heartbeat(force = false): void {
    const heartbeat = this.#state.heartbeatMs();
    if (heartbeat === undefined) return;
    const now = Date.now();
    if (!force && this.#meta.aliveAt !== undefined && now - this.#meta.aliveAt < heartbeat / 2) return;
    this.#meta.aliveAt = now;
    this.ctx.storage.kv.put(keys.meta, this.#meta);
  }

  /**
   * Wakes waiting long-polls in slices of `WAKE_SLICE`, each in its own turn of the event
   * loop, starting after this one: the write that made the version is answered first, and
   * other requests get their turns between slices instead of waiting behind thousands of answers.
   */
  #wake(waiters: (() => void)[]): void {
    if (!waiters.length) return;
    setTimeout(() => {
      for (const wake of waiters.slice(0, WAKE_SLICE)) wake();
      this.#wake(waiters.slice(WAKE_SLICE));
    }, 0);
  }

  /** Expires the leases that ran out (compute-on-read, so a late alarm never serves one). */
  #expire(): void {
    const mutation = this.#state.expire(Date.now());
    if (mutation) this.#commit(mutation);
  }

  /** Forgets tap sessions past their end (data planes ignore them already; the next snapshot leaves them out). */
  #dropEndedTaps(): void {
    const now = Date.now();
    for (const [id, tap] of this.#taps) {
      if (Date.parse(tap.expiresAt) > now) continue;
      this.#taps.delete(id);
      this.ctx.storage.kv.delete(TAP(id));
    }
  }

  #text(): SnapshotText {
    if (this.#cache?.version !== this.#state.version) {
      const mode = this.#config.WEFT_EGRESS_MODE;
      this.#dropEndedTaps();
      const taps = [...this.#taps.values()];
      const snapshot = { ...this.#state.snapshot(), jwks: this.#jwks, trustAnchors: this.#anchors, ...(mode !== undefined && { egress: { mode } }), ...(taps.length && { taps }) };
      this.#cache = { version: snapshot.version, text: JSON.stringify(snapshot) };
    }
    return this.#cache;
  }

  /**
   * Publishes the newest snapshot to KV (`snapshot:<version>`, then `snapshot`), at most once
   * per publish interval; versions made meanwhile go out together with the next publish.
   */
  #publish(): void {
    if (this.#publishing || this.#published >= this.#state.version) return;
    if (Date.now() < this.#lastPublishAt + this.#config.WEFT_PUBLISH_INTERVAL_MS) return this.#schedule();
    this.#publishing = true;
    const snapshot = this.#text();
    const kv = this.#config.WEFT_CONFIG;
    const task = (async () => {
      try {
        const metadata = { version: snapshot.version };
        await kv.put(`snapshot:${snapshot.version}`, snapshot.text, { metadata, expirationTtl: this.#config.WEFT_VERSIONED_SNAPSHOT_TTL_S });
        await kv.put("snapshot", snapshot.text, { metadata });
        this.#published = Math.max(this.#published, snapshot.version);
      } catch (error) {
        console.error(`weft-control: publishing snapshot ${snapshot.version} to KV failed (${error instanceof Error ? error.name : "error"}); will retry`);
      } finally {
        this.#lastPublishAt = Date.now();
        this.#publishing = false;
        this.#publish();
        this.#schedule();
      }
    })();
    this.ctx.waitUntil(task);
  }

  /** Arms the alarm for the earliest of: next lease expiry, the next heartbeat, a pending publish, next key check. */
  #schedule(): void {
    let at = Math.min(this.#state.nextExpiry() ?? Number.POSITIVE_INFINITY, this.#keysCheckAt);
    const heartbeat = this.#state.heartbeatMs();
    if (heartbeat !== undefined) at = Math.min(at, (this.#meta.aliveAt ?? Date.now()) + heartbeat);
    if (this.#published < this.#state.version && !this.#publishing) at = Math.min(at, this.#lastPublishAt + this.#config.WEFT_PUBLISH_INTERVAL_MS);
    if (!Number.isFinite(at) || at === this.#alarmAt) return;
    if (this.#alarmAt !== undefined && this.#alarmAt <= at && this.#alarmAt > Date.now()) return;
    this.#alarmAt = at;
    void this.ctx.storage.setAlarm(Math.max(at, Date.now()));
  }

  async #maintainKeys(): Promise<void> {
    const ca = await this.#ca.maintain();
    this.#keysCheckAt = Math.min((await this.#issuer.maintain()).nextCheckAt, ca.nextCheckAt);
    await this.#syncJwks("system");
    await this.#syncCa("system");
  }

  /** Takes a new version when the CA's anchor set changed, so peers learn the new bundle. */
  async #syncCa(actor: Actor): Promise<void> {
    const { sequence, anchors } = await this.#ca.anchors();
    this.#anchors = anchors;
    if (sequence === this.#meta.caSequence) return;
    this.#meta.caSequence = sequence;
    this.#commit(this.#state.bump(actor, "rotate-ca", [{ kind: "TrustAnchors", name: `sequence-${sequence}`, outcome: "updated" }]));
  }

  /**
   * Takes a new version when the issuer's published key set changed (a rotation, due or
   * asked for), so the new trust bundle reaches the snapshot and the routers.
   */
  async #syncJwks(actor: Actor): Promise<void> {
    const jwks = await this.#issuer.jwks();
    this.#jwks = jwks;
    const sequence = jwks.spiffe_sequence ?? 0;
    if (sequence === this.#meta.jwksSequence) return;
    const after = new Set(jwks.keys.map((k) => k.kid!));
    const changes: AuditEntry["changes"] = [
      ...[...after].filter((kid) => !this.#kids.has(kid)).map((kid) => ({ kind: "SigningKey" as const, name: kid, outcome: "created" as const })),
      ...[...this.#kids].filter((kid) => !after.has(kid)).map((kid) => ({ kind: "SigningKey" as const, name: kid, outcome: "deleted" as const })),
    ];
    this.#kids = after;
    this.#meta.jwksSequence = sequence;
    this.#commit(this.#state.bump(actor, "rotate-keys", changes));
  }

  /** The SPIFFE ID a bootstrap credential proves, or undefined. */
  async #bootstrap(credential: BootstrapCredential): Promise<string | undefined> {
    const td = this.#config.WEFT_TRUST_DOMAIN;
    if (credential.kind === "worker") {
      const hash = this.ctx.storage.kv.get<string>(WORKER_SECRET(credential.service));
      // Compare even when there is no secret, so timing does not tell which services have one.
      const ok = await verifyBootstrapSecret(credential.secret, hash ?? "");
      return ok && hash !== undefined ? workerId(td, credential.service) : undefined;
    }
    let iss: unknown;
    try {
      iss = decodeJwt(credential.token).iss;
    } catch {
      return undefined;
    }
    for (const cluster of await this.clusters()) {
      if (cluster.issuer !== iss) continue;
      const canonical = JSON.stringify(cluster);
      let entry = this.#clusterVerifiers.get(cluster.name);
      if (entry?.canonical !== canonical) {
        entry = { canonical, verifier: createServiceAccountVerifier({ issuer: cluster.issuer, audience: cluster.audience, trustDomain: td, jwks: cluster.jwks }) };
        this.#clusterVerifiers.set(cluster.name, entry);
      }
      try {
        return (await entry.verifier.verify(credential.token)).id;
      } catch (error) {
        if (!(error instanceof MeshError)) throw error;
      }
    }
    return undefined;
  }
}
