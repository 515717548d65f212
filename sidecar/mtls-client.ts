/**
 * The client end of mutual TLS between sidecars: keep-alive pools per peer (origin and the
 * SPIFFE ID the control plane says serves it), each connection presenting this pod's
 * certificate and checking the server's. New credentials (a renewal, new anchors) make a new
 * pool at the peer's next request; the old one finishes its requests and closes, so no
 * request is dropped.
 */
import type { X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import type { Pool } from "undici";
import { MeshError } from "../src/core/errors.ts";
import type { Fetch } from "../src/core/fetch.ts";
import { handshakeReason, spiffeIdOf, tlsOptions, type HandshakeStats, type MtlsCredentials } from "./mtls.ts";
import { UndiciPool } from "./undici-pool.ts";
import { dispatch, sidecarPoolOptions } from "./upstream.ts";

/**
 * Time allowed to open a mutual TLS connection to another sidecar, TCP and handshake: 5 s.
 * The 1 s TCP connect timeout (`DEFAULT_OUTBOUND_CONNECT_TIMEOUT_MS`) is too short once a
 * handshake is in it: each side makes an ECDSA signature and checks a chain on one thread, so
 * a burst of new connections to a busy peer queues (the faults test opens 48 at once).
 */
export const DEFAULT_MTLS_CONNECT_TIMEOUT_MS = 5_000;

/** Options of `createMtlsUpstreams`. */
export interface MtlsUpstreamOptions {
  credentials: () => MtlsCredentials | undefined;
  trustDomain: string;
  stats: HandshakeStats;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/** Pools to other sidecars' inbound ports over mutual TLS. Per process. */
export interface MtlsUpstreams {
  /** A `Fetch` to `origin` (`https://host:port`) that accepts only a server proving `identity`. */
  fetch(origin: string, identity: string): Fetch;
  /** Closes (gracefully) the pools of peers not in `keep` (`origin identity` keys). */
  retain(keep: ReadonlySet<string>): void;
  destroy(): Promise<void>;
}

/** The key of a peer: its origin and the identity it must prove. */
export const peerKey = (origin: string, identity: string) => `${origin} ${identity}`;

/** Creates the pools. */
export function createMtlsUpstreams(options: MtlsUpstreamOptions): MtlsUpstreams {
  const pools = new Map<string, { pool: Pool; generation: number }>();

  const poolFor = (origin: string, identity: string): Pool => {
    const credentials = options.credentials();
    if (!credentials) throw new MeshError("unauthenticated", "this sidecar has no certificate yet (waiting for the control plane)");
    const key = peerKey(origin, identity);
    const held = pools.get(key);
    if (held && held.generation === credentials.generation) return held.pool;
    if (held) held.pool.close().catch(() => {});
    const connect = {
      ...tlsOptions(credentials),
      timeout: options.connectTimeoutMs ?? DEFAULT_MTLS_CONNECT_TIMEOUT_MS,
      noDelay: true,
      // The server is named by its SPIFFE ID, not its host name: Node calls this after the
      // chain verified against the anchors.
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        const presented = spiffeIdOf({ subjectAltName: cert.subjectaltname } as X509Certificate, options.trustDomain);
        if (presented === identity) return undefined;
        const error = new Error(`the endpoint at ${new URL(origin).host} presented ${presented ?? "no SPIFFE ID of this trust domain"}, not ${identity}, which the control plane says serves it`);
        (error as Error & { code: string }).code = "ERR_WEFT_PEER_IDENTITY";
        return error;
      },
    };
    const pool = new UndiciPool(origin, sidecarPoolOptions(connect, options.idleTimeoutMs));
    pool.on("connect", () => options.stats.success("outbound"));
    pool.on("connectionError", (_origin, _targets, error) => options.stats.failure("outbound", handshakeReason(error)));
    pools.set(key, { pool, generation: credentials.generation });
    return pool;
  };

  return {
    fetch(origin, identity) {
      return async (request) => {
        try {
          return await dispatch(poolFor(origin, identity), request);
        } catch (error) {
          // Say plainly when the peer is not who the control plane says it is.
          const cause = error instanceof MeshError ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
          if (cause?.code === "ERR_WEFT_PEER_IDENTITY") throw new MeshError("upstream-unreachable", cause.message ?? "the endpoint's identity is wrong", { cause });
          throw error;
        }
      };
    },
    retain(keep) {
      for (const [key, { pool }] of pools) {
        if (keep.has(key)) continue;
        pools.delete(key);
        pool.close().catch(() => {});
      }
    },
    async destroy() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map(({ pool }) => pool.destroy().catch(() => {})));
    },
  };
}
