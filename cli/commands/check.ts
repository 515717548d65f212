/**
 * `weft check`: is the mesh healthy? A list of checks, each ✓ or ✗ with a hint on fixing it
 * (‼ for warnings that do not fail), as `linkerd check` prints them: the control API, its
 * snapshot, the trust bundle and key rotation, and the routers and sidecars reporting in.
 */
import type { Command, Context } from "../command.ts";
import { CliError, EXIT, outputFormat, outputOption } from "../command.ts";
import type { ControlApi, SnapshotAnswer } from "../control-api.ts";
import { json } from "../output.ts";
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
}

/** JWK members that only a private key has (RFC 7518 section 6): a trust bundle must hold none. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/**
 * Most keys a healthy bundle holds: the signing key, the next one published ahead of its turn,
 * and the previous one until its last token expires (docs/identity.md).
 */
export const MAX_BUNDLE_KEYS = 3;

/** How recently a router or sidecar must have reported to count as live: Linkerd drops idle metrics after 10 minutes. */
export const DEFAULT_REPORT_MAX_AGE_MS = 10 * 60_000;

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
      const answer = await api.call("GET", "/v1/audit?limit=1&order=desc").catch((error: unknown) => error);
      if (answer instanceof Error) return failureOf(answer, "check the control plane");
      const { status, body } = answer as { status: number; body: unknown };
      if (status !== 200) return warn(`the audit log answered ${status}`, "upgrade the control plane");
      const entries = (body as { entries?: { toVersion?: number }[] } | undefined)?.entries ?? [];
      const latest = Math.max(0, ...entries.map((e) => e.toVersion ?? 0));
      if (snapshot && snapshot.version < latest) {
        return fail(`the snapshot is at version ${snapshot.version}, the store at ${latest}`, "the control worker has not published its latest changes; look at its logs");
      }
      return ok(`version ${snapshot?.version ?? "?"} is the latest`);
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
      if (leaked.length) return fail(`${leaked.length} key(s) include private key material`, "rotate the signing keys at once: they are compromised");
      const refused = keys.filter((k) => typeof k.alg === "string" && !ACCEPTED_ALGORITHMS.includes(k.alg));
      if (refused.length) return fail(`key(s) with refused algorithms: ${refused.map((k) => String(k.alg)).join(", ")}`, "the mesh accepts ES256 (and ES384/RS256 when configured)");
      const kids = keys.map((k) => k.kid).filter((kid): kid is string => typeof kid === "string");
      if (kids.length !== keys.length || new Set(kids).size !== kids.length) return fail("keys without a kid, or kids repeated", "each key needs a unique kid");
      state.jwksKids = kids;
      return ok(`${keys.length} key${keys.length === 1 ? "" : "s"}`);
    },
  },
  {
    group: "identity",
    title: "the signing keys are within their rotation schedule",
    async run({ jwksKids, snapshot }) {
      if (!jwksKids) return warn("not checked: no trust bundle", "fix the check above");
      if (jwksKids.length > MAX_BUNDLE_KEYS) {
        return fail(`${jwksKids.length} keys published (at most ${MAX_BUNDLE_KEYS} expected)`, "retired keys are not being dropped: the control worker's rotation alarm may not be running");
      }
      const inSnapshot = new Set((snapshot?.jwks?.keys ?? []).map((k) => k.kid));
      const missing = jwksKids.filter((kid) => !inSnapshot.has(kid));
      if (snapshot && missing.length) return fail(`${missing.length} published key(s) not in the snapshot's trust bundle`, "the data plane cannot verify tokens signed by them; the snapshot is stale");
      return ok();
    },
  },
  {
    group: "data plane",
    title: "routers and sidecars have reported recently",
    async run(state) {
      let reporters;
      try {
        reporters = (await state.api.stats()).reporters;
      } catch (error) {
        return failureOf(error, "check the control plane");
      }
      if (reporters.length === 0) return warn("no router or sidecar has reported", "start the mesh (npm start) or deploy a router; they push metrics every few seconds");
      const stale = reporters.filter((r) => state.now - r.lastSeen > DEFAULT_REPORT_MAX_AGE_MS);
      if (stale.length) return fail(`${stale.length} of ${reporters.length} silent for over 10 minutes: ${stale.map((r) => r.id).slice(0, 5).join(", ")}`, "those routers or sidecars cannot reach the control plane, or have stopped");
      const behind = state.snapshot ? reporters.filter((r) => r.configVersion !== undefined && r.configVersion < state.snapshot!.version) : [];
      if (behind.length) return warn(`${behind.length} on an older config version than ${state.snapshot!.version}`, "they pick up new snapshots within seconds; if this persists they cannot read it");
      return ok(`${reporters.length} reporting`);
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
