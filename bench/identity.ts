/**
 * Identity benchmark: what a token costs, per operation, in Node and in workerd.
 *
 * - sign: `issuer.mint()` (claims, header, ES256 signature through WebCrypto, jose's encoding);
 * - bare: `crypto.subtle.verify` of the same signatures over the same signing inputs, decoded
 *   beforehand: the floor a verifier cannot go below;
 * - jose alone: `jwtVerify(token, key)` with no options, to show what jose itself adds;
 * - cold verify: `verifier.verify()` of a token it has not seen (jose's parsing, the algorithm
 *   allow-list, key lookup, the signature, every claim check), the key already imported;
 * - warm verify: `verifier.verify()` of a token it has verified before (the cache);
 * - for scale, `crypto.subtle.digest("SHA-256")` of a token: what keying the cache by a
 *   cryptographic hash would add to every warm verify.
 *
 * Each figure is the median over rounds of a batch run one operation at a time (awaited), so it
 * is latency per operation, not throughput. The same code runs in Node and, bundled by esbuild,
 * in workerd through Miniflare. Targets: warm verify under 5 µs; cold verify within 1.5× bare.
 *
 * Run: sh scripts/node.sh node bench/identity.ts
 */
import { jwtVerify } from "jose";
import { createIssuer, createTrustBundle, createVerifier, memoryKeyStore } from "../src/identity/index.ts";

const ISSUER = "http://127.0.0.1:8788";
const TRUST_DOMAIN = "weft.local";
const SUBJECT = "spiffe://weft.local/ns/shop/sa/web";
const ROUNDS = 7;
/** Tokens per round, and per bare/cold block: Node's clock is fine, workerd's moves in ms. */
const NODE = { batch: 400, block: 20 };
const WORKERD = { batch: 1000, block: 100 };
const WARM_BATCH = 50_000;

/** Per-operation medians, in microseconds. */
export interface Figures {
  sign_us: number;
  bare_verify_us: number;
  /** jose's `jwtVerify` alone with the key in hand: how much of cold verify is jose's. */
  jose_verify_us: number;
  cold_verify_us: number;
  warm_verify_us: number;
  digest_us: number;
  /** Median over rounds of (cold verify time ÷ bare verify time), measured in pairs. */
  cold_to_bare: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Runs every measurement here, in whatever runtime this is; used by Node and by the worker. */
export async function measure(rounds: number, batch: number, block: number, warmBatch: number): Promise<Figures> {
  const issuer = createIssuer({ issuer: ISSUER, trustDomain: TRUST_DOMAIN, keys: memoryKeyStore() });
  const bundle = createTrustBundle({ fetchJwks: () => issuer.jwks() });
  await bundle.refresh();
  const newVerifier = () => createVerifier({ bundle, issuer: ISSUER, audience: "orders", trustDomain: TRUST_DOMAIN });
  const encoder = new TextEncoder();
  const figures: Record<Exclude<keyof Figures, "cold_to_bare">, number[]> = { sign_us: [], bare_verify_us: [], jose_verify_us: [], cold_verify_us: [], warm_verify_us: [], digest_us: [] };
  const ratios: number[] = [];
  const perOp = (start: number, count: number) => ((performance.now() - start) * 1000) / count;

  // Warm-up: let the engine compile every path before anything is timed.
  const warmup = newVerifier();
  for (let i = 0; i < 100; i++) await warmup.verify(await issuer.mint(SUBJECT, "orders"));

  for (let round = 0; round < rounds; round++) {
    const tokens: string[] = [];
    let start = performance.now();
    for (let i = 0; i < batch; i++) tokens.push(await issuer.mint(SUBJECT, "orders"));
    figures.sign_us.push(perOp(start, batch));

    const kid = JSON.parse(new TextDecoder().decode(fromBase64url(tokens[0]!.split(".")[0]!))).kid as string;
    const key = bundle.get(kid)!.key;
    const prepared = tokens.map((token) => {
      const dot = token.lastIndexOf(".");
      return { input: encoder.encode(token.slice(0, dot)), signature: fromBase64url(token.slice(dot + 1)) };
    });
    // Bare verify, jose alone and Weft's cold verify are timed in interleaved blocks of `block`
    // operations, the order rotating every block, so load from elsewhere on the machine falls
    // on all three alike. Blocks, not single operations, because workerd's clock moves in
    // whole milliseconds.
    const verifier = newVerifier();
    const totals = { bare: 0, jose: 0, cold: 0 };
    const kinds: Record<keyof typeof totals, (i: number) => Promise<unknown>> = {
      bare: async (i) => {
        const { input, signature } = prepared[i]!;
        if (!(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, input))) throw new Error("bare verify failed");
      },
      jose: (i) => jwtVerify(tokens[i]!, key, { algorithms: ["ES256"] }),
      cold: (i) => verifier.verify(tokens[i]!),
    };
    const order = Object.keys(kinds) as (keyof typeof totals)[];
    for (let from = 0, n = 0; from < batch; from += block, n++) {
      const to = Math.min(batch, from + block);
      for (let k = 0; k < order.length; k++) {
        const kind = order[(n + k) % order.length]!;
        const start = performance.now();
        for (let i = from; i < to; i++) await kinds[kind](i);
        totals[kind] += performance.now() - start;
      }
    }
    const bareTotal = totals.bare;
    const coldTotal = totals.cold;
    figures.jose_verify_us.push((totals.jose * 1000) / batch);
    figures.bare_verify_us.push((bareTotal * 1000) / batch);
    figures.cold_verify_us.push((coldTotal * 1000) / batch);
    ratios.push(coldTotal / bareTotal);

    start = performance.now();
    for (let i = 0; i < warmBatch; i++) await verifier.verify(tokens[i % batch]!);
    figures.warm_verify_us.push(perOp(start, warmBatch));

    start = performance.now();
    for (const token of tokens) await crypto.subtle.digest("SHA-256", encoder.encode(token));
    figures.digest_us.push(perOp(start, batch));
  }
  return {
    sign_us: median(figures.sign_us),
    bare_verify_us: median(figures.bare_verify_us),
    jose_verify_us: median(figures.jose_verify_us),
    cold_verify_us: median(figures.cold_verify_us),
    warm_verify_us: median(figures.warm_verify_us),
    digest_us: median(figures.digest_us),
    cold_to_bare: median(ratios),
  };
}

/** The worker run in workerd: `GET /` measures and answers with the figures as JSON. */
const WORKER = `
import { measure } from "./identity.ts";
export default {
  async fetch() {
    return Response.json(await measure(${ROUNDS}, ${WORKERD.batch}, ${WORKERD.block}, ${WARM_BATCH}));
  },
};
`;

async function inWorkerd(): Promise<Figures> {
  const { build } = await import("esbuild");
  const { Miniflare, convertV4MiniflareOptions } = await import("miniflare");
  const { join, resolve } = await import("node:path");
  const root = resolve(import.meta.dirname, "..");
  const bundled = await build({
    stdin: { contents: WORKER, resolveDir: join(root, "bench"), sourcefile: "identity-worker.ts", loader: "ts" },
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    external: ["esbuild", "miniflare", "node:*"],
    target: "es2022",
    logLevel: "error",
  });
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      name: "identity-bench",
      // Under the project folder, as workerd refuses module paths outside its starting directory.
      modules: [{ type: "ESModule", path: join(root, ".bench/identity-worker.js"), contents: bundled.outputFiles[0]!.text }],
      modulesRoot: root,
      compatibilityDate: "2026-11-01",
      cf: false,
    }),
  );
  try {
    await mf.ready;
    const response = await mf.dispatchFetch("http://bench/");
    if (!response.ok) throw new Error(`the worker answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as Figures;
  } finally {
    await mf.dispose();
  }
}

if (import.meta.main) {
  const node = await measure(ROUNDS, NODE.batch, NODE.block, WARM_BATCH);
  const workerd = await inWorkerd();
  const ratio = (f: Figures) => f.cold_to_bare;
  const rows: [string, (f: Figures) => string][] = [
    ["sign (issuer.mint)", (f) => f.sign_us.toFixed(1)],
    ["bare crypto.subtle.verify (baseline)", (f) => f.bare_verify_us.toFixed(1)],
    ["jose jwtVerify alone, key in hand", (f) => f.jose_verify_us.toFixed(1)],
    ["cold verify (jose + every check)", (f) => f.cold_verify_us.toFixed(1)],
    ["warm verify (cached)", (f) => f.warm_verify_us.toFixed(2)],
    ["cold verify ÷ bare verify", (f) => `${ratio(f).toFixed(2)}×`],
    ["SHA-256 of a token, for scale", (f) => f.digest_us.toFixed(1)],
  ];
  console.log(`identity: µs per operation, one at a time, median of ${ROUNDS} rounds (tokens per round: node ${NODE.batch}, workerd ${WORKERD.batch}; warm ${WARM_BATCH})`);
  console.log(`${"".padEnd(38)}${"node".padStart(10)}${"workerd".padStart(10)}`);
  for (const [label, cell] of rows) console.log(`${label.padEnd(38)}${cell(node).padStart(10)}${cell(workerd).padStart(10)}`);
  const verdict = (f: Figures, where: string) =>
    `${where}: warm verify ${f.warm_verify_us < 5 ? "under" : "OVER"} 5 µs; cold verify ${ratio(f) <= 1.5 ? "within" : "OVER"} 1.5× bare`;
  console.log(`targets: ${verdict(node, "node")}; ${verdict(workerd, "workerd")}`);
  const round = (n: number, digits: number) => Number(n.toFixed(digits));
  console.log(
    JSON.stringify({
      bench: "identity",
      sign_us: round(node.sign_us, 1),
      cold_verify_us: round(node.cold_verify_us, 1),
      warm_verify_us: round(node.warm_verify_us, 2),
      cold_verify_ratio_to_webcrypto: round(ratio(node), 2),
    }),
  );
}
