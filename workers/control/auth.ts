/**
 * Who is calling the control API: the admin (a bearer secret the worker knows only by its
 * SHA-256, or a control-plane token of an identity listed as admin) or a workload (its
 * identity token for audience `weft-control`). Every failure looks the same to the caller.
 */
import { MAX_TOKEN_LENGTH } from "../../src/identity/index.ts";

/** The audience of tokens for calls to the control plane (SPEC.md section 4). */
export const CONTROL_AUDIENCE = "weft-control";

/**
 * What a credential may do: `admin` everything; `read-only` read config, stats and the audit
 * log (and log in to the dashboard); `tap` run `weft tap` sessions and nothing else;
 * `workload` what data planes do (snapshot, tokens, leases, pushes).
 */
export type CallerKind = "admin" | "read-only" | "tap" | "workload";

/** A verified caller: `id` is `admin`, `read-only` or `tap` for those bearer secrets, else the caller's SPIFFE ID. */
export interface Caller {
  id: string;
  admin: boolean;
  kind: CallerKind;
}

/** Finds the caller of a request, or undefined when it has no acceptable credential. */
export type Authenticate = (request: Request) => Promise<Caller | undefined>;

/** Options of `createAuthenticator`. */
export interface AuthOptions {
  /** SHA-256 (lower-case hex) of the admin bearer secret; absent disables it. */
  adminTokenSha256?: string | undefined;
  /** SHA-256 (lower-case hex) of the read-only bearer secret (issue 14); absent disables it. */
  readTokenSha256?: string | undefined;
  /** SHA-256 (lower-case hex) of the tap-only bearer secret (issue 14); absent disables it. */
  tapTokenSha256?: string | undefined;
  /** SPIFFE IDs whose control-plane tokens count as admin. */
  adminIdentities?: readonly string[];
  /** Verifies an identity token addressed to `weft-control`, resolving to its SPIFFE ID; throws when it does not verify. */
  verifyToken?: (token: string) => Promise<{ id: string }>;
}

/** `Bearer <credential>`: the credential is any run of visible ASCII (a token68, a JWT, a secret). */
const BEARER = /^Bearer +([\x21-\x7e]+) *$/i;

/** The bearer token of `authorization`, or undefined when absent, malformed or too long. */
export function bearerOf(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  if (header === null || header.length > MAX_TOKEN_LENGTH + 16) return undefined;
  return BEARER.exec(header)?.[1];
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

function hexBytes(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

/** Constant-time equality of two byte strings of the same length. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}

/**
 * Creates the control API's authenticator. The admin secret is compared as SHA-256 digests
 * in constant time, so neither its content nor its length shows in the timing; anything that
 * looks like a JWT is then tried as an identity token.
 */
export function createAuthenticator(options: AuthOptions): Authenticate {
  const secrets: [hash: Uint8Array, kind: "admin" | "read-only" | "tap"][] = [];
  if (options.adminTokenSha256) secrets.push([hexBytes(options.adminTokenSha256), "admin"]);
  if (options.readTokenSha256) secrets.push([hexBytes(options.readTokenSha256), "read-only"]);
  if (options.tapTokenSha256) secrets.push([hexBytes(options.tapTokenSha256), "tap"]);
  const adminIds = new Set(options.adminIdentities ?? []);
  return async (request) => {
    const token = bearerOf(request);
    if (token === undefined) return undefined;
    if (secrets.length) {
      const digest = await sha256(token);
      // Every secret is compared, so the timing does not tell which kind matched.
      let kind: "admin" | "read-only" | "tap" | undefined;
      for (const [hash, k] of secrets) if (sameBytes(digest, hash)) kind ??= k;
      if (kind) return { id: kind, admin: kind === "admin", kind };
    }
    if (!options.verifyToken || token.split(".").length !== 3) return undefined;
    try {
      const { id } = await options.verifyToken(token);
      return adminIds.has(id) ? { id, admin: true, kind: "admin" } : { id, admin: false, kind: "workload" };
    } catch {
      return undefined;
    }
  };
}

/**
 * The service a workload identity may speak for when it registers endpoints or pushes stats:
 * `<service>` of `spiffe://<td>/worker/<service>` (a router worker) or of
 * `spiffe://<td>/ns/<namespace>/sa/<service>` (a pod whose service account is named after
 * its service, the Kubernetes convention Linkerd and Istio rely on too).
 */
export function serviceOf(id: string, trustDomain: string): string | undefined {
  const prefix = `spiffe://${trustDomain}/`;
  if (!id.startsWith(prefix)) return undefined;
  const parts = id.slice(prefix.length).split("/");
  if (parts.length === 2 && parts[0] === "worker") return parts[1];
  if (parts.length === 4 && parts[0] === "ns" && parts[2] === "sa") return parts[3];
  return undefined;
}
