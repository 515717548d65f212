/**
 * Mutual TLS between sidecars (docs/identity.md, "Mutual TLS"): the pod's own key and
 * X.509-SVID (made here, signed by the control plane's CA, renewed at two-thirds of its life),
 * the inbound port's protocol detection (TLS with a mesh client certificate, or plain HTTP
 * for callers outside the mesh), the check of a peer's SPIFFE ID, and the handshake metrics.
 */
import { X509Certificate } from "node:crypto";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { SecureContextOptions, Server as TlsServer, TLSSocket } from "node:tls";
import { parseSpiffeId } from "../src/identity/index.ts";
import { generateWorkloadKey } from "../src/identity/workload-key.ts";
import { reason, type Log } from "./log.ts";
import { pem } from "./pem.ts";

/** Renewal at two-thirds of a certificate's life, as tokens (SPEC.md section 4) and Linkerd's proxy do. */
export const DEFAULT_CERT_RENEW_AT = 2 / 3;

/** A failed renewal is tried again after 10 s, as a token renewal is (`DEFAULT_RENEW_RETRY_MS`). */
export const DEFAULT_CERT_RETRY_MS = 10_000;

/** The first byte of a TLS record carrying a handshake (RFC 8446 section 5.1, `ContentType.handshake`). */
const TLS_HANDSHAKE = 0x16;

/** What the control plane answers a certificate request with. */
export interface CertificateAnswer {
  certificate: string;
  chain: string[];
  trustAnchors: string[];
  /** ISO 8601. */
  notBefore: string;
  expiresAt: string;
}

/** The credentials a TLS context is made from, and their generation (bumped on every change). */
export interface MtlsCredentials {
  /** PKCS #8 PEM: the pod's key, made in this process; it never leaves it. */
  key: string;
  /** The leaf, then its chain (PEM). */
  cert: string;
  /** Trust anchors (PEM): the snapshot's when it has them, else the certificate answer's. */
  ca: string[];
  id: string;
  /** Epoch ms. */
  notAfter: number;
  generation: number;
}

/** Handshake counts by direction, failures by reason, for `/metrics`. */
export interface HandshakeStats {
  success(direction: "inbound" | "outbound"): void;
  failure(direction: "inbound" | "outbound", reason: string): void;
  /** The exposition of `weft_tls_*` metrics (Prometheus text). */
  expose(expirySeconds: number | undefined): string;
}

/** Creates the handshake counters. Per process. */
export function createHandshakeStats(): HandshakeStats {
  const ok = { inbound: 0, outbound: 0 };
  const failures = new Map<string, number>();
  return {
    success: (direction) => void ok[direction]++,
    failure(direction, why) {
      const key = `direction="${direction}",reason="${why}"`;
      failures.set(key, (failures.get(key) ?? 0) + 1);
    },
    expose(expirySeconds) {
      const lines = [
        "# HELP weft_tls_handshakes_total Mutual TLS handshakes completed with a verified mesh peer.",
        "# TYPE weft_tls_handshakes_total counter",
        `weft_tls_handshakes_total{direction="inbound"} ${ok.inbound}`,
        `weft_tls_handshakes_total{direction="outbound"} ${ok.outbound}`,
        "# HELP weft_tls_handshake_failures_total Mutual TLS handshakes refused or failed, by reason.",
        "# TYPE weft_tls_handshake_failures_total counter",
        ...[...failures].map(([labels, n]) => `weft_tls_handshake_failures_total{${labels}} ${n}`),
      ];
      if (expirySeconds !== undefined) {
        lines.push(
          "# HELP weft_tls_certificate_expiry_seconds Seconds until this pod's certificate expires.",
          "# TYPE weft_tls_certificate_expiry_seconds gauge",
          `weft_tls_certificate_expiry_seconds ${Math.round(expirySeconds)}`,
        );
      }
      return `${lines.join("\n")}\n`;
    },
  };
}

/** A handshake error as a short reason label: what went wrong, never data from the peer. */
export function handshakeReason(error: unknown): string {
  const e = error as { code?: string; message?: string } | undefined;
  const code = e?.code ?? "";
  const message = (e?.message ?? "").toLowerCase();
  if (code === "ERR_WEFT_PEER_IDENTITY") return "peer-identity";
  if (code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE" || message.includes("peer did not return a certificate")) return "no-client-certificate";
  if (code === "CERT_HAS_EXPIRED" || message.includes("certificate expired") || message.includes("certificate has expired")) return "certificate-expired";
  if (/UNABLE_TO_(GET_ISSUER|VERIFY_LEAF)|SELF_SIGNED|CERT_SIGNATURE_FAILURE/.test(code) || message.includes("unknown ca") || message.includes("certificate verify failed")) return "certificate-untrusted";
  if (code === "ECONNRESET" || code === "ERR_SSL_WRONG_VERSION_NUMBER" || message.includes("wrong version number")) return "protocol";
  if (code === "ERR_TLS_HANDSHAKE_TIMEOUT") return "timeout";
  return "other";
}

/**
 * The SPIFFE ID a peer certificate proves: its one URI SAN, a SPIFFE ID of `trustDomain`;
 * undefined for anything else (no URI, several, another trust domain, not SPIFFE).
 */
export function spiffeIdOf(cert: X509Certificate | undefined, trustDomain: string): string | undefined {
  const san = cert?.subjectAltName;
  if (!san) return undefined;
  const uris = san.split(", ").filter((entry) => entry.startsWith("URI:"));
  if (uris.length !== 1) return undefined;
  const id = uris[0]!.slice(4);
  return parseSpiffeId(id)?.trustDomain === trustDomain ? id : undefined;
}

/** Options of `createCertificates`. */
export interface CertificatesOptions {
  /** Asks the control plane to sign `csr` (with the pod's bootstrap credential). */
  request: (csr: string, lifetime?: string) => Promise<CertificateAnswer>;
  /** The mesh's trust domain: a certificate for an ID outside it is not taken. */
  trustDomain: string;
  log: Log;
  /** A shorter lifetime to ask for (`WEFT_CERT_LIFETIME`); the CA's 24 h otherwise. */
  lifetime?: string | undefined;
  now?: () => number;
}

/** The pod's certificate, renewed in the background. Per process. */
export interface Certificates {
  /** The credentials in force, or undefined before the first certificate. */
  current(): MtlsCredentials | undefined;
  /** Gets the first certificate (retrying every 10 s until it has one) and starts renewal. */
  start(): Promise<void>;
  /** Sets the trust anchors from a snapshot; a change makes a new generation. */
  setAnchors(anchors: readonly string[] | undefined): void;
  /** Called after every new generation (renewal, anchors). */
  onChange(listener: (credentials: MtlsCredentials) => void): void;
  /** Seconds until the certificate expires, or undefined before the first. */
  expirySeconds(): number | undefined;
  stop(): void;
}

/** Creates the pod's certificate source; its key pair is made once, here, and never leaves. */
export function createCertificates(options: CertificatesOptions): Certificates {
  const now = options.now ?? Date.now;
  const listeners: ((credentials: MtlsCredentials) => void)[] = [];
  let keyPem: string | undefined;
  let csr: string | undefined;
  let held: MtlsCredentials | undefined;
  let anchors: string[] | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let generation = 0;

  const publish = (next: Omit<MtlsCredentials, "generation">) => {
    held = { ...next, generation: ++generation };
    for (const listener of listeners) listener(held);
  };

  const prepare = async () => {
    if (csr !== undefined) return;
    const keys = await generateWorkloadKey();
    keyPem = pem("PRIVATE KEY", (await crypto.subtle.exportKey("pkcs8", keys.privateKey)) as ArrayBuffer);
    // Loaded here, once, and only with mutual TLS on: the ASN.1 schemas the request needs.
    const { writeCsr } = await import("./csr.ts");
    csr = await writeCsr(keys);
  };

  const schedule = (ms: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void renew(), Math.max(0, ms));
    timer.unref();
  };

  const renew = async (): Promise<boolean> => {
    try {
      await prepare();
      const answer = await options.request(csr!, options.lifetime);
      const notBefore = Date.parse(answer.notBefore);
      const notAfter = Date.parse(answer.expiresAt);
      const id = spiffeIdOf(new X509Certificate(answer.certificate), options.trustDomain);
      if (id === undefined) throw new Error("the control plane's certificate has no SPIFFE ID of this trust domain");
      publish({ key: keyPem!, cert: [answer.certificate, ...answer.chain].map((p) => `${p.trim()}\n`).join(""), ca: anchors ?? answer.trustAnchors, id, notAfter });
      // Measured from now, not from notBefore (backdated by the CA's skew allowance), so a
      // pod clock that disagrees with the CA's neither renews in a loop nor too late.
      schedule((notAfter - Math.max(notBefore, now() - 1)) * DEFAULT_CERT_RENEW_AT);
      options.log("info", "certificate-renewed", { id, expiresAt: answer.expiresAt });
      return true;
    } catch (error) {
      options.log("warn", "certificate-renewal-failed", { reason: reason(error), holding: held !== undefined && held.notAfter > now() });
      schedule(DEFAULT_CERT_RETRY_MS);
      return false;
    }
  };

  return {
    current: () => held,
    async start() {
      while (!stopped && !(await renew())) await new Promise((resolve) => setTimeout(resolve, DEFAULT_CERT_RETRY_MS).unref());
    },
    setAnchors(next) {
      if (!next || next.length === 0) return;
      const list = [...next];
      const same = (a: readonly string[] | undefined) => a !== undefined && a.length === list.length && a.every((x, i) => x === list[i]);
      if (same(anchors)) return;
      anchors = list;
      // A new generation only when the TLS settings change: not for the anchors held already.
      if (held && !same(held.ca)) publish({ ...held, ca: list });
    },
    onChange: (listener) => void listeners.push(listener),
    expirySeconds: () => (held === undefined ? undefined : (held.notAfter - now()) / 1000),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** The TLS settings of a sidecar's end of a mutual TLS connection. */
export function tlsOptions(credentials: MtlsCredentials): SecureContextOptions {
  return {
    key: credentials.key,
    cert: credentials.cert,
    ca: credentials.ca,
    // TLS 1.3 only: every peer is a Weft sidecar, and 1.3 encrypts the certificates.
    minVersion: "TLSv1.3",
  };
}

/** An HTTP listener that serves connections a front accepted (`WireListener`). */
export interface ConnectionSink {
  accept(socket: Socket): void;
  close(): void;
  closeIdleConnections(): void;
  closeAllConnections(): void;
  /** A connection was refused over the cap, counted for this listener. */
  dropped(): void;
}

/** Options of `createInboundFront`. */
export interface InboundFrontOptions {
  /** The plain HTTP listener (callers outside the mesh; the policy decides). */
  plain: ConnectionSink;
  /** The TLS listener (requestCert, verified against the anchors): its handshakes. */
  secure: TlsServer;
  /** The HTTP listener of the TLS connections, once verified. */
  secureHttp: ConnectionSink;
  trustDomain: string;
  stats: HandshakeStats;
  maxConnections: number;
  /**
   * Time a new connection has to send its first byte: the inbound listener's idle timeout,
   * as its HTTP listeners give a connection with no request under way (`sidecar/http1`).
   */
  idleTimeoutMs: number;
  log: Log;
}

/** The inbound port (4143): one TCP listener that hands each connection to TLS or plain HTTP by its first byte. */
export interface InboundFront {
  server: NetServer;
  /** The verified peer's SPIFFE ID of a connection the TLS listener accepted. */
  peerOf(socket: Socket): string | undefined;
  /** New TLS settings (a renewed certificate, new anchors); connections open keep theirs. */
  update(credentials: MtlsCredentials): void;
  close(): void;
  closeIdleConnections(): void;
  closeAllConnections(): void;
}

/**
 * Creates the inbound front, as Linkerd's proxy detects TLS on its inbound port. A TLS client
 * must present a certificate that chains to an anchor, is valid now, and whose one URI SAN
 * is a SPIFFE ID of the trust domain: checked once the handshake is done (TLS 1.3 lets the
 * client finish first), and the connection closed before any request is read.
 */
export function createInboundFront(options: InboundFrontOptions): InboundFront {
  const { plain, secure, secureHttp, stats } = options;
  const peers = new WeakMap<Socket, string>();
  // Half-open as node:http's own server is, so a client that ends its side still gets its answer.
  const server = createNetServer({ noDelay: true, pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
    socket.setTimeout(options.idleTimeoutMs, () => socket.destroy());
    socket.once("readable", () => {
      socket.setTimeout(0);
      const first = socket.read(1) as Buffer | null;
      if (first === null) return void socket.destroy();
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) {
        // As a socket of node:https's own listener: not half-open. Half-open under TLS, a client
        // that closed right after its handshake left this side open until the header timeout
        // (a flood of handshakes held hundreds of sockets and 100 MB).
        socket.allowHalfOpen = false;
        secure.emit("connection", socket);
      } else plain.accept(socket);
      socket.resume();
    });
    socket.on("error", () => socket.destroy());
    socket.resume();
    socket.pause();
  });
  server.maxConnections = options.maxConnections;
  // Connections over the cap are refused here; the plain listener logs them as it would its own.
  server.on("drop", () => plain.dropped());
  // Before node:https's own listener, which starts reading requests: the peer is known first.
  secure.prependListener("secureConnection", (socket: TLSSocket) => {
    // Node's own refusal of a bad chain closes the socket without saying why, so the TLS
    // listener lets every chain through to here (`rejectUnauthorized: false`), and this
    // refuses, counting the reason: no certificate, one that does not chain to an anchor
    // or has expired, or one that is no SPIFFE ID of the trust domain.
    const cert = socket.getPeerX509Certificate();
    const why = cert === undefined ? "no-client-certificate" : !socket.authorized ? handshakeReason({ code: String(socket.authorizationError) }) : undefined;
    const id = why === undefined ? spiffeIdOf(cert, options.trustDomain) : undefined;
    if (id === undefined) {
      stats.failure("inbound", why ?? "peer-identity");
      socket.destroy();
      return;
    }
    peers.set(socket, id);
    stats.success("inbound");
  });
  // Then the verified connection goes to its HTTP listener.
  secure.on("secureConnection", (socket: TLSSocket) => {
    if (!socket.destroyed) secureHttp.accept(socket);
  });
  // A failed handshake is closed here, as node:https's own listener does: Node closes one that
  // failed in OpenSSL, but not one whose handshake timed out, which would stay open.
  secure.on("tlsClientError", (error: Error, socket: TLSSocket) => {
    stats.failure("inbound", handshakeReason(error));
    socket.destroy();
  });
  return {
    server,
    peerOf: (socket) => peers.get(socket),
    update(credentials) {
      try {
        secure.setSecureContext(tlsOptions(credentials));
      } catch (error) {
        options.log("error", "tls-context-failed", { reason: reason(error) });
      }
    },
    close() {
      server.close();
      plain.close();
      secureHttp.close();
    },
    closeIdleConnections() {
      plain.closeIdleConnections();
      secureHttp.closeIdleConnections();
    },
    closeAllConnections() {
      plain.closeAllConnections();
      secureHttp.closeAllConnections();
    },
  };
}
