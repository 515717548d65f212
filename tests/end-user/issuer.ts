/**
 * An end-user token issuer Weft did not write, for the end-user authentication tests: keys
 * made by `openssl genpkey`, tokens signed by Python's `jwt` module (PyJWT, Debian's
 * python3-jwt), and its JWKS served by a plain `node:http` server on loopback that counts its
 * fetches and can rotate keys. `scripts/system-deps.sh` installs python3-jwt and openssl.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Debian's interpreter, where python3-jwt installs; a python3 on PATH may be another one.
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const SCRIPT = join(import.meta.dirname, "issuer.py");

/** One token to sign. `mode` "none" is unsigned; "hs-public" is HS256 keyed with the public key's PEM. */
export interface TokenSpec {
  kid: string;
  claims: Record<string, unknown>;
  alg?: "RS256" | "ES256";
  mode?: "none" | "hs-public";
}

/** A running external issuer. */
export interface ExternalIssuer {
  /** The `iss` of its tokens. */
  issuer: string;
  /** Its JWKS URL on loopback. */
  jwksUri: string;
  /** How many times its JWKS has been fetched. */
  fetches(): number;
  /** Makes a new key `kid` (RSA, or EC P-256 for "ES256"); it is published only when `publish` lists it. */
  addKey(kid: string, alg?: "RS256" | "ES256"): void;
  /** The keys the JWKS serves from now on. */
  publish(kids: string[]): void;
  /** Signs tokens with PyJWT, one Python run for all of them. */
  sign(specs: TokenSpec[]): string[];
  /** Claims of a token valid now for `minutes`: iss, sub, aud, iat, exp, plus `extra`. */
  claims(sub: string, aud: string | string[], extra?: Record<string, unknown>, minutes?: number): Record<string, unknown>;
  stop(): Promise<void>;
}

function python(request: unknown): any {
  return JSON.parse(execFileSync(PYTHON, [SCRIPT], { input: JSON.stringify(request), encoding: "utf8" }));
}

/** Starts an issuer named `issuer` with key `k1` (RS256) published. */
export async function startExternalIssuer(issuer = "https://login.example.test/"): Promise<ExternalIssuer> {
  const dir = mkdtempSync(join(tmpdir(), "weft-issuer-"));
  const pems = new Map<string, { pem: string; alg: "RS256" | "ES256" }>();
  let jwks = JSON.stringify({ keys: [] });
  let fetches = 0;
  const server: Server = createServer((req, res) => {
    fetches++;
    res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=600" });
    res.end(jwks);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const self: ExternalIssuer = {
    issuer,
    jwksUri: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    fetches: () => fetches,
    addKey(kid, alg = "RS256") {
      const pem = join(dir, `${kid}.pem`);
      const args = alg === "RS256" ? ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem] : ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pem];
      execFileSync("openssl", args, { stdio: "ignore" });
      pems.set(kid, { pem, alg });
    },
    publish(kids) {
      jwks = JSON.stringify(python({ jwks: kids.map((kid) => ({ kid, pem: pems.get(kid)!.pem })) }));
    },
    sign(specs) {
      return python({ sign: specs.map((s) => ({ kid: s.kid, pem: pems.get(s.kid)!.pem, alg: s.alg ?? pems.get(s.kid)!.alg, claims: s.claims, mode: s.mode ?? "" })) }).tokens;
    },
    claims(sub, aud, extra = {}, minutes = 10) {
      const now = Math.floor(Date.now() / 1000);
      return { iss: issuer, sub, aud, iat: now, exp: now + minutes * 60, ...extra };
    },
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  self.addKey("k1");
  self.publish(["k1"]);
  return self;
}
