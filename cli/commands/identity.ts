/**
 * `weft identity`: what a workload identity token says (subject, audience, issuer, expiry,
 * the key that signed it) and whether the control plane's trust bundle verifies it. Never
 * prints the token or its signature.
 */
import type { Command, Context } from "../command.ts";
import { CliError, EXIT, outputFormat, outputOption, UsageError } from "../command.ts";
import type { ControlApi } from "../control-api.ts";
import { json, span } from "../output.ts";
import type { DecodedToken } from "../token.ts";
import { ACCEPTED_ALGORITHMS, decodeToken } from "../token.ts";

const FORMATS = ["text", "json"] as const;

/** The audience `--service` asks for when none is given: the control plane's own (SPEC.md section 4). */
export const DEFAULT_AUDIENCE = "weft-control";

/** What checking a token against the trust bundle found. */
export type Verification =
  | { status: "verified"; detail: string }
  | { status: "unknown-key" | "invalid" | "rejected-algorithm"; detail: string }
  | { status: "unchecked"; detail: string };

/** Everything `weft identity` reports about a token. */
export interface IdentityReport {
  subject: string | undefined;
  audience: string | string[] | undefined;
  issuer: string | undefined;
  issuedAt: string | undefined;
  expiresAt: string | undefined;
  /** Seconds until expiry (negative once expired). */
  expiresInSeconds: number | undefined;
  expired: boolean;
  lifetimeSeconds: number | undefined;
  keyId: string | undefined;
  algorithm: string | undefined;
  tokenId: string | undefined;
  verification: Verification;
}

const str = (value: unknown) => (typeof value === "string" ? value : undefined);
const num = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : undefined);
const iso = (seconds: number | undefined) => (seconds === undefined ? undefined : new Date(seconds * 1000).toISOString());

/** Checks the token's signature against the trust bundle (`jose`, loaded only for this). */
export async function verify(token: string, decoded: DecodedToken, keys: Record<string, unknown>[]): Promise<Verification> {
  const { alg, kid } = decoded.header;
  if (alg === undefined || !ACCEPTED_ALGORITHMS.includes(alg)) {
    return { status: "rejected-algorithm", detail: `algorithm ${alg ?? "(none)"} is refused by the mesh (accepted: ${ACCEPTED_ALGORITHMS.join(", ")})` };
  }
  if (kid === undefined || !keys.some((k) => k.kid === kid)) return { status: "unknown-key", detail: `key ${kid ?? "(no kid)"} is not in the trust bundle` };
  const { compactVerify, createLocalJWKSet } = await import("jose");
  // SPIFFE bundles mark JWT keys `use: "jwt-svid"`, which jose's key selection (made for "sig") would skip.
  const usable = keys.filter((k) => k.use === undefined || k.use === "sig" || k.use === "jwt-svid").map(({ use: _use, ...k }) => k);
  try {
    await compactVerify(token.trim(), createLocalJWKSet({ keys: usable as never[] }), { algorithms: ACCEPTED_ALGORITHMS });
    return { status: "verified", detail: `signature verified with key ${kid}` };
  } catch (error) {
    return { status: "invalid", detail: `the signature does not verify with key ${kid} (${(error as { code?: string }).code ?? "invalid"})` };
  }
}

/** The report for `decoded` at wall-clock `nowMs`. */
export function reportOf(decoded: DecodedToken, verification: Verification, nowMs: number): IdentityReport {
  const { claims, header } = decoded;
  const exp = num(claims.exp);
  const iat = num(claims.iat);
  const aud = claims.aud;
  return {
    subject: str(claims.sub),
    audience: typeof aud === "string" || (Array.isArray(aud) && aud.every((a) => typeof a === "string")) ? (aud as string | string[]) : undefined,
    issuer: str(claims.iss),
    issuedAt: iso(iat),
    expiresAt: iso(exp),
    expiresInSeconds: exp === undefined ? undefined : Math.round(exp - nowMs / 1000),
    expired: exp !== undefined && exp * 1000 <= nowMs,
    lifetimeSeconds: exp !== undefined && iat !== undefined ? exp - iat : undefined,
    keyId: header.kid,
    algorithm: header.alg,
    tokenId: str(claims.jti),
    verification,
  };
}

/** A router worker's bootstrap secret: `--bootstrap-secret-file`, `WEFT_BOOTSTRAP_SECRET`, or the local mesh's `.weft/bootstrap/<service>`. */
async function bootstrapSecret(ctx: Context, service: string): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  const { join, resolve } = await import("node:path");
  const read = async (path: string) => (await readFile(path, "utf8")).trim();
  const file = ctx.values["bootstrap-secret-file"];
  if (typeof file === "string") {
    try {
      return await read(resolve(ctx.io.cwd, file));
    } catch (error) {
      throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }
  if (ctx.io.env.WEFT_BOOTSTRAP_SECRET) return ctx.io.env.WEFT_BOOTSTRAP_SECRET.trim();
  const { findWeftFolder } = await import("../connection.ts");
  const folder = await findWeftFolder(ctx.io.cwd);
  if (folder) {
    try {
      return await read(join(folder, "bootstrap", service));
    } catch {
      // not written by the local mesh: fall through to the hint
    }
  }
  throw new CliError(`no bootstrap secret for "${service}"`, {
    hint: "set WEFT_BOOTSTRAP_SECRET (the router's secret) or give --bootstrap-secret-file; the admin hands one out with PUT /v1/identity/workers/<service>",
  });
}

/** Exchanges `service`'s bootstrap secret for a token for `audience`, as its router does. */
async function tokenFor(ctx: Context, api: ControlApi, service: string, audience: string): Promise<string> {
  const secret = await bootstrapSecret(ctx, service);
  const answer = await api.call("POST", "/v1/identity/token", { auth: false, secretBody: true, body: { audience, worker: { service, secret } } });
  if (answer.status !== 200) {
    const { errorOf } = await import("../control-api.ts");
    throw errorOf(answer, api.connection);
  }
  const body = answer.body as Record<string, unknown> | undefined;
  const token = typeof body?.token === "string" ? body.token : undefined;
  if (!token) throw new CliError("the control API's answer held no token");
  return token;
}

function text(report: IdentityReport, ctx: Context): string {
  const { style } = ctx;
  const rows: [string, string][] = [
    ["Subject", report.subject ?? "(none)"],
    ["Audience", Array.isArray(report.audience) ? report.audience.join(", ") : (report.audience ?? "(none)")],
    ["Issuer", report.issuer ?? "(none)"],
  ];
  const now = ctx.io.now();
  if (report.issuedAt) rows.push(["Issued", `${report.issuedAt} (${span(now - Date.parse(report.issuedAt))} ago)`]);
  if (report.expiresAt && report.expiresInSeconds !== undefined) {
    const when = report.expired ? style.red(`expired ${span(-report.expiresInSeconds * 1000)} ago`) : `in ${span(report.expiresInSeconds * 1000)}`;
    const lifetime = report.lifetimeSeconds === undefined ? "" : `; lifetime ${span(report.lifetimeSeconds * 1000)}`;
    rows.push(["Expires", `${report.expiresAt} (${when}${lifetime})`]);
  } else rows.push(["Expires", style.red("never (no exp claim: the mesh refuses such a token)")]);
  rows.push(["Key", `${report.keyId ?? "(no kid)"} (${report.algorithm ?? "no alg"})`]);
  if (report.tokenId) rows.push(["Token ID", report.tokenId]);
  const v = report.verification;
  const mark = v.status === "verified" ? style.green("✓") : v.status === "unchecked" ? style.yellow("?") : style.red("✗");
  rows.push(["Signature", `${mark} ${v.detail}`]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, value]) => `${`${k}:`.padEnd(width)} ${value}`).join("\n") + "\n";
}

/** What `weft identity --cert` reports about a workload's X.509-SVID (docs/identity.md). */
export interface CertificateReport {
  id: string | undefined;
  issuer: string;
  notBefore: string;
  notAfter: string;
  expiresInSeconds: number;
  expired: boolean;
  lifetimeSeconds: number;
  fingerprint: string;
  chain: number;
  verification: { status: "verified" | "untrusted" | "unchecked"; detail: string };
}

/** The PEM certificates in `text`, leaf first. */
const pemBlocks = (text: string) => text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

/**
 * Reads a workload's certificate (the leaf, then its chain: what `openssl s_client
 * -showcerts` prints) and, unless offline, checks that it chains to the control plane's
 * trust anchors (`GET /v1/identity/trust-anchors.pem`).
 */
async function certificateReport(ctx: Context, pem: string): Promise<CertificateReport> {
  const { X509Certificate } = await import("node:crypto");
  const blocks = pemBlocks(pem);
  if (blocks.length === 0) throw new UsageError("--cert: no PEM certificate found (give the leaf first, then its chain)");
  let certs: InstanceType<typeof X509Certificate>[];
  try {
    certs = blocks.map((block) => new X509Certificate(block));
  } catch {
    throw new CliError("--cert: a certificate could not be read");
  }
  const leaf = certs[0]!;
  const uris = (leaf.subjectAltName ?? "").split(", ").filter((s) => s.startsWith("URI:"));
  const now = ctx.io.now();
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  let verification: CertificateReport["verification"] = { status: "unchecked", detail: "not checked (--offline)" };
  if (ctx.values.offline !== true) {
    try {
      const api = await ctx.api();
      const answer = await api.call("GET", "/v1/identity/trust-anchors.pem", { auth: false });
      const anchors = typeof answer.body === "string" ? pemBlocks(answer.body).map((block) => new X509Certificate(block)) : [];
      if (anchors.length === 0) throw new CliError("the control plane serves no trust anchors");
      // Walk up: each certificate signed by the next one given, the last by an anchor.
      let current = leaf;
      let verified = false;
      for (const next of [...certs.slice(1), undefined]) {
        const anchor = anchors.find((a) => current.checkIssued(a) && current.verify(a.publicKey));
        if (anchor) {
          verified = true;
          break;
        }
        if (!next || !current.checkIssued(next) || !current.verify(next.publicKey)) break;
        current = next;
      }
      verification = verified
        ? { status: "verified", detail: `chains to a trust anchor of ${api.connection.url}` }
        : { status: "untrusted", detail: `does not chain to the trust anchors of ${api.connection.url}` };
    } catch (error) {
      if (!(error instanceof CliError)) throw error;
      verification = { status: "unchecked", detail: `not checked: ${error.message}` };
    }
  }
  return {
    id: uris.length === 1 ? uris[0]!.slice(4) : undefined,
    issuer: leaf.issuer.replace(/\n/g, ", "),
    notBefore: new Date(notBefore).toISOString(),
    notAfter: new Date(notAfter).toISOString(),
    expiresInSeconds: Math.round((notAfter - now) / 1000),
    expired: notAfter <= now,
    lifetimeSeconds: Math.round((notAfter - notBefore) / 1000),
    fingerprint: leaf.fingerprint256,
    chain: certs.length - 1,
    verification,
  };
}

async function runCertificate(ctx: Context, file: string): Promise<number> {
  const format = outputFormat(ctx, FORMATS);
  const pem = file === "-" ? await ctx.io.readStdin() : await (await import("node:fs/promises")).readFile(file, "utf8");
  const report = await certificateReport(ctx, pem);
  if (format === "json") ctx.io.stdout.write(json(report));
  else {
    const mark = report.verification.status === "verified" ? "✓" : report.verification.status === "unchecked" ? "-" : "✗";
    const rows: [string, string][] = [
      ["SPIFFE ID", report.id ?? "(none: not one URI SAN)"],
      ["Issuer", report.issuer],
      ["Valid", `${report.notBefore} to ${report.notAfter} (${span(report.lifetimeSeconds * 1000)})`],
      ["Expires", report.expired ? `expired ${span(-report.expiresInSeconds * 1000)} ago` : `in ${span(report.expiresInSeconds * 1000)}`],
      ["Fingerprint", `SHA-256 ${report.fingerprint}`],
      ["Chain", `${report.chain} intermediate${report.chain === 1 ? "" : "s"}`],
      ["Trust", `${mark} ${report.verification.detail}`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length)) + 1;
    ctx.io.stdout.write(rows.map(([k, value]) => `${`${k}:`.padEnd(width)} ${value}`).join("\n") + "\n");
  }
  return report.expired || report.id === undefined || report.verification.status === "untrusted" ? EXIT.failure : EXIT.ok;
}

async function run(ctx: Context): Promise<number> {
  const format = outputFormat(ctx, FORMATS);
  if (typeof ctx.values.cert === "string") {
    if (ctx.values.token !== undefined || ctx.values.service !== undefined) throw new UsageError("--cert goes alone (not with --token or --service)");
    return runCertificate(ctx, ctx.values.cert);
  }
  const given = ctx.values.token as string | undefined;
  const service = ctx.values.service as string | undefined;
  // Not quoted: the stray argument may well be a token.
  if (ctx.positionals.length) throw new UsageError("unexpected argument; give the token with --token (or --token - to read it from standard input)");
  if ((given === undefined) === (service === undefined)) throw new UsageError("give either --token TOKEN (or --token -) or --service NAME");
  if (ctx.values.audience !== undefined && service === undefined) throw new UsageError("--audience goes with --service");

  let api: ControlApi | undefined;
  let token: string;
  if (given !== undefined) token = given === "-" ? (await ctx.io.readStdin()).trim() : given;
  else {
    api = await ctx.api();
    token = await tokenFor(ctx, api, service!, typeof ctx.values.audience === "string" ? ctx.values.audience : DEFAULT_AUDIENCE);
  }
  const decoded = decodeToken(token);

  let verification: Verification = { status: "unchecked", detail: "not checked (--offline)" };
  const { alg } = decoded.header;
  if (alg === undefined || !ACCEPTED_ALGORITHMS.includes(alg)) {
    // Refused by every hop whatever the keys say, so no need to fetch them, even online.
    verification = { status: "rejected-algorithm", detail: `algorithm ${alg ?? "(none)"} is refused by the mesh (accepted: ${ACCEPTED_ALGORITHMS.join(", ")})` };
  } else if (ctx.values.offline !== true) {
    try {
      api ??= await ctx.api();
      verification = await verify(token, decoded, (await api.jwks()).keys);
      if (verification.status !== "unchecked" && verification.status !== "rejected-algorithm") verification.detail += ` (trust bundle of ${api.connection.url})`;
    } catch (error) {
      if (!(error instanceof CliError)) throw error;
      verification = { status: "unchecked", detail: `not checked: ${error.message}` };
    }
  }
  const report = reportOf(decoded, verification, ctx.io.now());
  ctx.io.stdout.write(format === "json" ? json(report) : text(report, ctx));
  const bad = report.expired || report.expiresAt === undefined || ["invalid", "unknown-key", "rejected-algorithm"].includes(verification.status);
  return bad ? EXIT.failure : EXIT.ok;
}

/** `weft identity`. */
export const command: Command = {
  name: "identity",
  usage: [
    "identity --token TOKEN|- [--offline] [-o text|json]",
    "identity --service NAME [--audience NAME] [--bootstrap-secret-file FILE] [-o text|json]",
    "identity --cert FILE|- [--offline] [-o text|json]",
  ],
  description: `Decodes a workload identity token (a JWT-SVID-like token, docs/identity.md) and shows
its subject (the SPIFFE ID), audience, issuer, issue and expiry times, and the key that
signed it; unless --offline, it checks the signature against the control plane's trust
bundle (/.well-known/jwks.json). The token itself and its signature are never printed.
--token - reads the token from standard input (keeps it out of shell history).
--service NAME gets the token that service's router gets: it exchanges the router's
bootstrap secret (WEFT_BOOTSTRAP_SECRET, --bootstrap-secret-file, or .weft/bootstrap/NAME
written by the local mesh) at POST /v1/identity/token for --audience (default
${DEFAULT_AUDIENCE}); the secret is never printed. Here --token is the token to decode, not
the admin credential. Exits 1 when the token has expired, never expires, or does not verify.
--cert FILE shows a workload's mutual TLS certificate instead (PEM, the leaf then its chain,
as openssl s_client -showcerts prints what a sidecar's port 4143 presents): its SPIFFE ID,
issuer, validity and expiry, and whether it chains to the control plane's trust anchors;
exits 1 when it has expired, has no single SPIFFE ID, or does not chain.`,
  options: {
    token: { type: "string", value: "TOKEN", description: "the token to decode, or - to read it from standard input" },
    service: { type: "string", value: "NAME", description: "decode a token the control plane issues this service's router now" },
    audience: { type: "string", value: "NAME", description: `with --service: the token's audience (default ${DEFAULT_AUDIENCE})` },
    "bootstrap-secret-file": { type: "string", value: "FILE", description: "with --service: the router's bootstrap secret (default WEFT_BOOTSTRAP_SECRET)" },
    cert: { type: "string", value: "FILE", description: "show a workload's certificate (PEM: leaf, then chain), or - for standard input" },
    offline: { type: "boolean", description: "decode only; do not fetch the trust bundle" },
    output: outputOption([...FORMATS]),
  },
  examples: [
    ["weft identity --token \"$TOKEN\"", "Decode a token"],
    ["pbpaste | weft identity --token -", "Decode a token from standard input"],
    ["WEFT_BOOTSTRAP_SECRET=... weft identity --service orders --audience users", "The token the orders router gets for calling users"],
    ["openssl s_client -connect 10.0.0.12:4143 -showcerts -cert c.pem -key k.pem </dev/null | weft identity --cert -", "The certificate a pod's sidecar presents"],
  ],
  run,
};
