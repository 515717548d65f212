/**
 * `weft check`: is the mesh healthy? A list of checks, each ✓ or ✗ with a hint on fixing it
 * (‼ for warnings that do not fail), as `linkerd check` prints them: the control API, its
 * snapshot, the trust bundle and key rotation, and the routers and sidecars reporting in.
 */
import type { Command, Context } from "../command.ts";
import { CliError, EXIT, outputFormat, outputOption } from "../command.ts";
import { DEFAULT_HOST_TTL_MS } from "../../src/core/metrics/index.ts";
import type { AuditEntry, ControlApi, Reporter, SnapshotAnswer } from "../control-api.ts";
import { errorOf } from "../control-api.ts";
import { json, span } from "../output.ts";
import { ACCEPTED_ALGORITHMS } from "../token.ts";

const FORMATS = ["text", "json"] as const;

/** How one check came out. */
export interface CheckResult {
  status: "ok" | "warn" | "fail";
  /** What was found, one line. */
  detail?: string;
  /** How to fix it, for warn and fail. */
  hint?: string;
}

/** One check: its group, what it checks, and whether a failure stops the checks after it. */
export interface Check {
  group: string;
  title: string;
  /** Later checks cannot run without this one passing (the control API is reachable, ...). */
  fatal?: boolean;
  run(state: CheckState): Promise<CheckResult>;
}

/** What checks find and later checks use. */
export interface CheckState {
  api: ControlApi;
  now: number;
  snapshot?: SnapshotAnswer;
  jwksKids?: string[];
  reporters?: Reporter[];
}

/** JWK members that only a private key has (RFC 7518 section 6): a trust bundle must hold none. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/**
 * Most keys a healthy bundle holds: the signing key, the next one published ahead of its turn,
 * and the previous one until its last token expires (docs/identity.md).
 */
export const MAX_BUNDLE_KEYS = 3;

/**
 * Warn when the signing issuer or an anchor expires within 60 days: `linkerd check` warns of
 * its trust anchor and issuer certificates at the same margin.
 */
export const CERT_EXPIRY_WARNING_MS = 60 * 24 * 3_600_000;

/** An authority as `GET /v1/identity/ca` shows it (docs/identity.md). */
interface AuthorityView {
  anchors: { subject: string; notAfter: string; fingerprint: string }[];
  issuer: { subject: string; notAfter: string };
  activeFrom: string;
  external: boolean;
  state: "signing" | "waiting" | "retiring";
}


const ok = (detail?: string): CheckResult => (detail === undefined ? { status: "ok" } : { status: "ok", detail });
const fail = (detail: string, hint: string): CheckResult => ({ status: "fail", detail, hint });
const warn = (detail: string, hint: string): CheckResult => ({ status: "warn", detail, hint });

/** An error a check turns into a failure; others (bugs) propagate. */
function failureOf(error: unknown, hint: string): CheckResult {
  if (error instanceof CliError) return fail(error.message, error.hint ?? hint);
  throw error;
}

/** The checks `weft check` runs, in order. */
export const CHECKS: readonly Check[] = [
  {
    group: "control plane",
    title: "the control API is reachable",
    fatal: true,
    async run({ api }) {
      const answer = await api.call("GET", "/.well-known/jwks.json", { auth: false }).catch((error: unknown) => error);
      if (answer instanceof Error) return failureOf(answer, "start the control plane");
      const { status } = answer as { status: number };
      if (status >= 500) return fail(`${api.connection.url} answered ${status}`, "look at the control worker's logs (wrangler tail, or the npm start output)");
      return ok(api.connection.url);
    },
  },
  {
    group: "control plane",
    title: "the admin credential is accepted",
    fatal: true,
    async run(state) {
      try {
        state.snapshot = await state.api.snapshot();
        return ok(`from ${state.api.connection.tokenSource}`);
      } catch (error) {
        return failureOf(error, "set WEFT_TOKEN");
      }
    },
  },
  {
    group: "control plane",
    title: "the snapshot is valid",
    async run({ snapshot }) {
      const { SnapshotSchema, referenceIssues, validate } = await import("../../src/core/config/index.ts");
      const result = validate(SnapshotSchema, snapshot);
      if (!result.ok) {
        const first = result.issues[0]!;
        return fail(`${result.issues.length} problem(s), first: ${first.path.join(".")}: ${first.message}`, "the control plane wrote a snapshot the data plane will refuse; report it with `weft get all -o yaml`");
      }
      const issues = referenceIssues(result.value);
      if (issues.length) return warn(`${issues.length} dangling reference(s), first: ${issues[0]!.path.join(".")}: ${issues[0]!.message}`, "apply the missing service, or delete the route or policy that names it");
      return ok(`version ${result.value.version}: ${result.value.services.length} services, ${result.value.routes.length} routes, ${result.value.policies.length} policies`);
    },
  },
  {
    group: "control plane",
    title: "the snapshot is fresh",
    async run({ api, snapshot }) {
      let store: number;
      try {
        // A list answers the store's current version beside its items.
        const answer = await api.call("GET", "/v1/policies");
        if (answer.status !== 200) return failureOf(errorOf(answer, api.connection), "check the control plane");
        store = (answer.body as { version?: number } | undefined)?.version ?? 0;
      } catch (error) {
        return failureOf(error, "check the control plane");
      }
      if (snapshot && snapshot.version < store) {
        return fail(`the snapshot is at version ${snapshot.version}, the store at ${store}`, "the control worker is not publishing its changes; look at its logs");
      }
      return ok(`version ${snapshot?.version ?? store}`);
    },
  },
  {
    group: "identity",
    title: "the trust bundle is served",
    async run(state) {
      let keys: Record<string, unknown>[];
      try {
        keys = (await state.api.jwks()).keys;
      } catch (error) {
        return failureOf(error, "the control plane's issuer is not set up");
      }
      if (keys.length === 0) return fail("the JWKS has no keys", "no workload can get an identity; look at the control worker's logs");
      const leaked = keys.filter((k) => PRIVATE_MEMBERS.some((m) => m in k));
      if (leaked.length) return fail(`${leaked.length} key(s) include private key material`, "rotate the signing keys at once (POST /v1/identity/rotate with revokePrevious): they are compromised");
      const refused = keys.filter((k) => typeof k.alg === "string" && !ACCEPTED_ALGORITHMS.includes(k.alg));
      if (refused.length) return fail(`key(s) with refused algorithms: ${refused.map((k) => String(k.alg)).join(", ")}`, "the mesh accepts ES256 (and ES384/RS256 when configured)");
      const kids = keys.map((k) => k.kid).filter((kid): kid is string => typeof kid === "string");
      if (kids.length !== keys.length || new Set(kids).size !== kids.length) return fail("keys without a kid, or kids repeated", "each key needs a unique kid");
      state.jwksKids = kids;
      const inSnapshot = new Set((state.snapshot?.jwks?.keys ?? []).map((k) => k.kid));
      const missing = kids.filter((kid) => !inSnapshot.has(kid));
      if (state.snapshot && missing.length) return fail(`${missing.length} published key(s) missing from the snapshot's trust bundle`, "routers cannot verify tokens those keys sign; the snapshot is stale");
      return ok(`${keys.length} key${keys.length === 1 ? "" : "s"}, the same in the snapshot`);
    },
  },
  {
    group: "identity",
    title: "the signing keys are within their rotation schedule",
    async run({ api, jwksKids, now }) {
      if (!jwksKids) return fail("not checked: no trust bundle", "fix the check above first");
      let entries: AuditEntry[];
      try {
        entries = await api.audit();
      } catch (error) {
        return failureOf(error, "check the control plane");
      }
      const { DEFAULT_PUBLISH_AHEAD_MS, DEFAULT_ROTATE_EVERY_MS } = await import("../../src/identity/index.ts");
      // A key is published `publishAhead` before its turn and signs for `rotateEvery`, so the newest key is never older than a turn, plus leeway.
      const limit = DEFAULT_ROTATE_EVERY_MS + DEFAULT_PUBLISH_AHEAD_MS;
      const published = new Map<string, number>();
      for (const entry of entries) for (const change of entry.changes) if (change.kind === "SigningKey" && change.outcome === "created") published.set(change.name, Date.parse(entry.at));
      const known = jwksKids.map((kid) => published.get(kid)).filter((t): t is number => t !== undefined);
      const oldestEntry = entries.length ? Date.parse(entries[0]!.at) : now;
      // With no record of a key, it was published before the log's first entry.
      const newest = known.length > 0 ? Math.max(...known) : oldestEntry;
      const age = now - newest;
      if (age > limit) return fail(`the newest key was published ${span(age)} ago; a new one is due every ${span(DEFAULT_ROTATE_EVERY_MS)}`, "rotation has stalled: is the control worker's cron trigger running? POST /v1/identity/rotate rotates now");
      // On-demand rotations can briefly hold more; the schedule alone never does.
      if (jwksKids.length > MAX_BUNDLE_KEYS) {
        return warn(`${jwksKids.length} keys published (the schedule holds at most ${MAX_BUNDLE_KEYS})`, "after several rotations on demand this clears within an hour; otherwise retired keys are not being dropped");
      }
      return ok(`newest key published ${span(age)} ago; rotation every ${span(DEFAULT_ROTATE_EVERY_MS)}`);
    },
  },
  {
    group: "identity",
    title: "the mutual TLS certificate authority is valid, and its anchor rotation",
    async run({ api, now }) {
      let authorities: AuthorityView[];
      try {
        const answer = await api.call("GET", "/v1/identity/ca");
        if (answer.status !== 200) return fail(`GET /v1/identity/ca answered ${answer.status}`, "the control plane predates mutual TLS, or the admin credential is refused");
        authorities = ((answer.body as { authorities?: AuthorityView[] }).authorities ?? []).filter((a) => typeof a?.state === "string");
      } catch (error) {
        return failureOf(error, "check the control plane");
      }
      const signing = authorities.find((a) => a.state === "signing");
      if (!signing) return fail("no issuer is signing certificates", "POST /v1/identity/ca/rotate with activateIn 0s makes one");
      const issuerLeft = Date.parse(signing.issuer.notAfter) - now;
      const anchorLeft = Math.min(...signing.anchors.map((a) => Date.parse(a.notAfter) - now));
      const waiting = authorities.find((a) => a.state === "waiting");
      const retiring = authorities.filter((a) => a.state === "retiring").length;
      const rotation = waiting
        ? `; anchor rotation under way: a new issuer signs in ${span(Math.max(0, Date.parse(waiting.activeFrom) - now))}`
        : retiring
          ? `; ${retiring} retired anchor${retiring === 1 ? "" : "s"} kept until their certificates expire`
          : "";
      const detail = `issuer expires in ${span(issuerLeft)}, anchor in ${span(anchorLeft)}${signing.external ? " (brought by the operator)" : ""}${rotation}`;
      if (issuerLeft <= 0 || anchorLeft <= 0) return fail(detail, "rotate now: POST /v1/identity/ca/rotate (sidecars renew onto the new issuer within 2/3 of their certificates' life)");
      if (!waiting && Math.min(issuerLeft, anchorLeft) < CERT_EXPIRY_WARNING_MS) return warn(detail, "rotate before it expires: POST /v1/identity/ca/rotate (with your own issuer in `bring` if you bring one)");
      return ok(detail);
    },
  },
  {
    group: "data plane",
    title: "routers and sidecars have reported recently",
    async run(state) {
      try {
        state.reporters = await state.api.reporters();
      } catch (error) {
        return failureOf(error, "check the control plane");
      }
      if (state.reporters.length === 0) return warn(`none in the last ${span(DEFAULT_HOST_TTL_MS)}`, "start the mesh (npm start) or deploy a router; routers and sidecars push metrics every few seconds");
      return ok(`${state.reporters.length} in the last ${span(DEFAULT_HOST_TTL_MS)}`);
    },
  },
  {
    group: "data plane",
    title: "routers and sidecars run the current config",
    async run({ reporters, snapshot }) {
      if (!reporters?.length || !snapshot) return ok("none reporting");
      const behind = reporters.filter((r) => r.configVersion < snapshot.version);
      if (behind.length) {
        const shown = behind.slice(0, 3).map((r) => `${r.host} at ${r.configVersion}`).join(", ");
        return warn(`${behind.length} of ${reporters.length} behind version ${snapshot.version}: ${shown}`, "they pick up a new snapshot within seconds; if this persists, they cannot read it (KV binding, or the control plane)");
      }
      return ok(`all ${reporters.length} at version ${snapshot.version}`);
    },
  },
];

/** Runs `checks` in order, stopping after a failed fatal one; answers each result. */
export async function runChecks(checks: readonly Check[], state: CheckState, onResult: (check: Check, result: CheckResult) => void): Promise<boolean> {
  let healthy = true;
  for (const check of checks) {
    const result = await check.run(state);
    onResult(check, result);
    if (result.status === "fail") {
      healthy = false;
      if (check.fatal) break;
    }
  }
  return healthy;
}

async function run(ctx: Context): Promise<number> {
  const format = outputFormat(ctx, FORMATS);
  const { style } = ctx;
  const state: CheckState = { api: await ctx.api(), now: ctx.io.now() };
  const results: { group: string; check: string; status: string; detail?: string; hint?: string }[] = [];
  let group: string | undefined;
  const healthy = await runChecks(CHECKS, state, (check, result) => {
    results.push({ group: check.group, check: check.title, status: result.status, ...(result.detail ? { detail: result.detail } : {}), ...(result.hint ? { hint: result.hint } : {}) });
    if (format === "json") return;
    if (check.group !== group) {
      ctx.io.stdout.write(`${group === undefined ? "" : "\n"}${style.bold(check.group)}\n${"-".repeat(check.group.length)}\n`);
      group = check.group;
    }
    const mark = result.status === "ok" ? style.green("✓") : result.status === "warn" ? style.yellow("‼") : style.red("✗");
    ctx.io.stdout.write(`${mark} ${check.title}${result.detail ? style.dim(` (${result.detail})`) : ""}\n`);
    if (result.hint && result.status !== "ok") ctx.io.stdout.write(`    ${style.yellow("hint:")} ${result.hint}\n`);
  });
  if (format === "json") ctx.io.stdout.write(json({ healthy, checks: results }));
  else ctx.io.stdout.write(`\nStatus check results are ${healthy ? style.green("✓") : style.red("✗")}\n`);
  return healthy ? EXIT.ok : EXIT.failure;
}

/** `weft check`. */
export const command: Command = {
  name: "check",
  usage: ["check [-o text|json]"],
  description: `Checks that the mesh is healthy and says how to fix what is not: the control API is
reachable and accepts the admin credential; its snapshot is valid and carries the latest
version; the trust bundle (JWKS) is served, holds only public keys of accepted algorithms,
and its keys follow the rotation schedule; routers and sidecars have reported metrics
recently and run the current config. Each check prints ✓, ✗ (failed) or ‼ (a warning that
does not fail). Exits 1 when any check failed.`,
  options: { output: outputOption([...FORMATS]) },
  examples: [
    ["weft check", "Check the local mesh"],
    ["WEFT_CONTROL_URL=https://control.example.com weft check -o json", "Check a deployed control plane, for a script"],
  ],
  run,
};
