/**
 * The two identity layers: `attachIdentity` puts the workload's token on outbound calls, and
 * `requireIdentity` verifies the caller's token on inbound calls and applies authorization.
 */
import type { AuthorizationPolicy, AuthzDecision, AuthzInput, DefaultPolicy } from "../core/authz/index.ts";
import { authorize } from "../core/authz/index.ts";
import { MeshError } from "../core/errors.ts";
import { metaOf, withHeaders, withMeta, type Layer, type MeshHeaders, type MeshRequest } from "../core/fetch.ts";
import type { TokenSource } from "./token-source.ts";
import type { Verifier } from "./verifier.ts";

/** The header carrying the caller's token (SPEC.md section 1). */
export const IDENTITY_HEADER = "weft-identity";

/** The header carrying the verified caller's SPIFFE ID to the app (SPEC.md section 1). */
export const CLIENT_ID_HEADER = "weft-client-id";

/** Options of `attachIdentity`. */
export interface AttachIdentityOptions {
  tokens: TokenSource;
  /** The destination's audience (its service name, or `weft-control`), or how to get it from the request. */
  audience: string | ((request: MeshRequest) => string);
}

/**
 * Outbound, at the endpoint level (innermost, so each try carries a token valid when it is
 * sent): sets `weft-identity` to this workload's token for the destination's audience,
 * replacing any the app set. Fails the call with `unauthenticated` when no valid token can be
 * had, rather than send it without one.
 */
export function attachIdentity(options: AttachIdentityOptions): Layer {
  return (next) => async (request) => {
    const audience = typeof options.audience === "function" ? options.audience(request) : options.audience;
    const token = await options.tokens.token(audience);
    return next(withHeaders(request, (headers) => headers.set(IDENTITY_HEADER, token)));
  };
}

/** The authorization config in force: read on every call, since it changes at run time. */
export interface PolicyView {
  policies: readonly AuthorizationPolicy[];
  defaultPolicy: DefaultPolicy;
}

/**
 * Removes every header whose name has an underscore. CGI, WSGI, PHP and Rack hand headers to
 * the app as `HTTP_*` variables with `-` turned into `_`, so `weft_client_id` and
 * `weft-client-id` both arrive as `HTTP_WEFT_CLIENT_ID`: a caller could pose as a verified
 * identity. nginx drops such headers by default (`underscores_in_headers off`), and Envoy's
 * edge guidance rejects them (`headers_with_underscores_action`).
 */
function dropUnderscored(headers: MeshHeaders): void {
  const names: string[] = [];
  headers.forEach((_, name) => {
    if (name.includes("_")) names.push(name);
  });
  for (const name of names) headers.delete(name);
}

/** Options of `requireIdentity`. */
export interface RequireIdentityOptions {
  verifier: Verifier;
  /** This service's name, as policies target it. */
  service: string;
  /** The current policies and default policy for this service. */
  policy: () => PolicyView;
  /** The route the request matched, for route-targeted policies. */
  route?: (request: MeshRequest) => string | undefined;
  /** Sees every decision (AUDIT matches included), for logs and metrics. */
  onDecision?: (decision: AuthzDecision, input: AuthzInput) => void;
}

/**
 * Inbound, outermost after metrics: always removes `weft-client-id` from the request, every
 * header with an underscore in its name (see `dropUnderscored`), and `weft-identity` too once
 * read; verifies the token if there is one and only then sets `weft-client-id` to the
 * verified SPIFFE ID; then applies the authorization policy.
 *
 * Answers (as thrown `MeshError`s): a token that is present but not valid is `unauthenticated`
 * (401) whatever the policy, since a caller that sends a bad token has a fault worth seeing
 * rather than being treated as anonymous; no token where the policy wants one is
 * `unauthenticated` (401); a policy denial is `forbidden` (403).
 */
export function requireIdentity(options: RequireIdentityOptions): Layer {
  return (next) => async (request) => {
    const token = request.headers.get(IDENTITY_HEADER);
    // The stack's own copy: the caller's claims are removed before anything else reads it.
    const owned = withHeaders(request, (headers) => {
      headers.delete(CLIENT_ID_HEADER);
      dropUnderscored(headers);
      headers.delete(IDENTITY_HEADER);
    });
    let identity: string | undefined;
    // A mutual TLS hop: the client certificate says who calls, and a token, if any, is not read.
    const peer = metaOf(request).peer;
    if (peer !== undefined) {
      identity = peer;
      owned.headers.set(CLIENT_ID_HEADER, identity);
      withMeta(owned, { client: identity });
    } else if (token !== null) {
      identity = (await options.verifier.verify(token)).id;
      owned.headers.set(CLIENT_ID_HEADER, identity);
      withMeta(owned, { client: identity });
    }
    const input: AuthzInput = { service: options.service, method: request.method, path: new URL(request.url).pathname };
    const route = options.route?.(request);
    if (route !== undefined) input.route = route;
    if (identity !== undefined) input.identity = identity;
    const { endUser } = metaOf(owned);
    if (endUser !== undefined) input.endUser = endUser;
    const { policies, defaultPolicy } = options.policy();
    const decision = authorize(policies, defaultPolicy, input);
    options.onDecision?.(decision, input);
    if (!decision.allowed) {
      const code = decision.code ?? (identity === undefined ? "unauthenticated" : "forbidden");
      throw new MeshError(code, code === "unauthenticated" ? `${options.service} requires a verified identity` : `${options.service} does not allow this call`);
    }
    return next(owned);
  };
}
