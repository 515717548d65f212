/**
 * Matching benchmark: what RE2's linear-time automaton (re2js, `src/core/regex`) costs against
 * V8's backtracking `RegExp` on typical route patterns and inputs, what the literal fast
 * paths of `wholeMatch` save, what the catastrophic patterns cost each engine, and what path
 * normalization (`src/core/path`) costs on a path already normal (the common case) and on
 * one it rewrites.
 *
 * Typical patterns are timed as whole-value matches (`^(?:…)$` for V8, `testExact` for
 * re2js) over the same inputs, interleaved over several rounds; medians are reported. The
 * catastrophic row runs V8 on a short input only (it doubles per character) and re2js on
 * 100,000 characters.
 *
 * Run: sh scripts/node.sh node bench/matching.ts [--quick]
 */
import { RE2JS } from "re2js";
import { normalizePath, normalizeRequest } from "../src/core/path/index.ts";
import { wholeMatch } from "../src/core/regex/index.ts";

const QUICK = process.argv.includes("--quick");
const ROUNDS = QUICK ? 3 : 7;
const CALLS = QUICK ? 50_000 : 200_000;

const TYPICAL: { pattern: string; inputs: string[] }[] = [
  { pattern: "/items/[0-9]+", inputs: ["/items/42", "/items/42/x", "/v1/items/42", "/orders/123456"] },
  { pattern: "/api/v[0-9]+/users/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", inputs: ["/api/v2/users/123e4567-e89b-12d3-a456-426614174000", "/api/v2/users/nope"] },
  { pattern: "/(users|orders|items)/[^/]+", inputs: ["/users/ann", "/orders/7/lines", "/carts/1"] },
  { pattern: "application/(json|grpc)", inputs: ["application/json", "text/html"] },
  { pattern: "/static/.*", inputs: ["/static/css/app.css", "/api/x"] },
  { pattern: "/health", inputs: ["/health", "/healthz"] },
];

/** ns per call of `test` over `inputs`, round-robin, `n` calls. */
function time(test: (value: string) => boolean, inputs: string[], n: number): number {
  let hits = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (test(inputs[i % inputs.length]!)) hits++;
  const ns = Number(process.hrtime.bigint() - start) / n;
  if (hits < 0) throw new Error("unreachable");
  return ns;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const rows: Record<string, string>[] = [];
const ratios: number[] = [];
const weftRatios: number[] = [];
for (const { pattern, inputs } of TYPICAL) {
  const v8 = new RegExp(`^(?:${pattern})$`);
  const re2 = RE2JS.compile(pattern);
  const weft = wholeMatch(pattern);
  const engines = { v8: (s: string) => v8.test(s), re2js: (s: string) => re2.testExact(s), weft } as const;
  for (const input of inputs) {
    const answers = Object.values(engines).map((test) => test(input));
    if (new Set(answers).size !== 1) throw new Error(`engines disagree on ${pattern} against ${input}: ${answers}`);
  }
  const samples: Record<keyof typeof engines, number[]> = { v8: [], re2js: [], weft: [] };
  for (const test of Object.values(engines)) time(test, inputs, CALLS);
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of Object.keys(engines) as (keyof typeof engines)[]) samples[name].push(time(engines[name], inputs, CALLS));
  }
  const v8Ns = median(samples.v8);
  const re2Ns = median(samples.re2js);
  const weftNs = median(samples.weft);
  ratios.push(re2Ns / v8Ns);
  weftRatios.push(weftNs / v8Ns);
  rows.push({
    pattern: pattern.length > 40 ? `${pattern.slice(0, 37)}...` : pattern,
    "V8 ns": v8Ns.toFixed(0),
    "re2js ns": re2Ns.toFixed(0),
    "weft ns": weftNs.toFixed(0),
    "re2js × V8": (re2Ns / v8Ns).toFixed(1),
    "weft × V8": (weftNs / v8Ns).toFixed(1),
  });
}
console.log(`whole-value matching, medians of ${ROUNDS} interleaved rounds × ${CALLS.toLocaleString("en-US")} calls; "weft" is wholeMatch (literals and literal.* as string tests, the rest re2js); node ${process.version}`);
console.table(rows);

// The catastrophic case: V8 doubles per character, so it gets a short input only.
const CATASTROPHIC = "/api/([a-z]+/?)+";
const v8Letters = QUICK ? 20 : 24;
const v8Start = process.hrtime.bigint();
const v8Match = new RegExp(`^(?:${CATASTROPHIC})$`).test(`/api/${"a".repeat(v8Letters)}!`);
const v8Ms = Number(process.hrtime.bigint() - v8Start) / 1e6;
const re2Letters = 100_000;
const re2Test = wholeMatch(CATASTROPHIC);
const re2Start = process.hrtime.bigint();
const re2Match = re2Test(`/api/${"a".repeat(re2Letters)}!`);
const re2Ms = Number(process.hrtime.bigint() - re2Start) / 1e6;
if (v8Match || re2Match) throw new Error("the catastrophic input must not match");
console.log(`${CATASTROPHIC} against "/api/" + n × "a" + "!": V8 ${v8Ms.toFixed(0)} ms at n = ${v8Letters} (doubling per letter); re2js ${re2Ms.toFixed(1)} ms at n = ${re2Letters.toLocaleString("en-US")}`);

// Path normalization: the scan that lets a normal path through, and a rewrite.
const NORMAL = "/api/v2/users/123e4567-e89b-12d3-a456-426614174000/orders";
const REWRITTEN = "//api/v2/./users/%7eann/../123e4567/orders";
const pathRows: Record<string, string>[] = [];
const pathNs: Record<string, number> = {};
for (const [name, run] of [
  ["normalizePath, already normal", () => normalizePath(NORMAL).ok],
  ["normalizePath, rewritten", () => normalizePath(REWRITTEN).ok],
  ["new Request(url)", () => new Request(`http://orders${NORMAL}`).method === "GET"],
  // A fresh Request per call, as each request is (a copy links its signal to the original's,
  // so copying one Request over and over would measure that list growing instead).
  ["new Request + normalizeRequest, already normal", () => {
    const request = new Request(`http://orders${NORMAL}?page=2`);
    return normalizeRequest(request) === request;
  }],
  ["new Request + normalizeRequest, rewritten", () => {
    const request = new Request(`http://orders${REWRITTEN}?page=2`);
    return normalizeRequest(request) !== request;
  }],
] as const) {
  const calls = name.includes("Request") ? CALLS / 10 : CALLS;
  time(run, [""], calls);
  const samples: number[] = [];
  for (let round = 0; round < ROUNDS; round++) samples.push(time(run, [""], calls));
  pathNs[name] = median(samples);
  pathRows.push({ step: name, "ns/call": median(samples).toFixed(0) });
}
console.log("path normalization, medians (the normalizeRequest rows include the new Request each call makes)");
console.table(pathRows);

const geo = (values: number[]) => Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
console.log(
  JSON.stringify({
    bench: "matching",
    re2js_over_v8_geomean: round2(geo(ratios)),
    re2js_over_v8_max: round2(Math.max(...ratios)),
    weft_over_v8_geomean: round2(geo(weftRatios)),
    catastrophic_v8_ms: Math.round(v8Ms),
    catastrophic_v8_letters: v8Letters,
    catastrophic_re2js_ms: round2(re2Ms),
    catastrophic_re2js_letters: re2Letters,
    normalize_path_normal_ns: Math.round(pathNs["normalizePath, already normal"]!),
    normalize_path_rewritten_ns: Math.round(pathNs["normalizePath, rewritten"]!),
    // Over the `new Request(url)` every call makes anyway.
    normalize_request_normal_ns: Math.round(pathNs["new Request + normalizeRequest, already normal"]! - pathNs["new Request(url)"]!),
    normalize_request_rewritten_ns: Math.round(pathNs["new Request + normalizeRequest, rewritten"]! - pathNs["new Request(url)"]!),
  }),
);

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
