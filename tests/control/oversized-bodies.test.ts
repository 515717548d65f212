/**
 * Oversized request bodies from real HTTP clients (curl, Python's urllib, Node's fetch): each
 * reads the control plane's 413 `payload-too-large` JSON, whatever path, method or credential
 * the request had, instead of a broken pipe. A ~2 MB body is read and dropped before the answer,
 * so the client is never still writing when the connection closes.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestControl } from "./helpers.ts";
import { ADMIN, startTestControl } from "./helpers.ts";

const run = promisify(execFile);

/** ~2 MB of JSON: twice the 1 MiB limit, the size of the failing requests. */
const BODY = `{"balancer":"${"a".repeat(2 * 1024 * 1024)}"}`;

/** Requests that each reach a different refusal when the body is small: 405, 404, 401, or the body check itself. */
const CASES: { name: string; method: string; path: string; token: string | null }[] = [
  { name: "a wrong method (PUT /v1/apply)", method: "PUT", path: "/v1/apply", token: ADMIN },
  { name: "a wrong method (POST /v1/routes/orders)", method: "POST", path: "/v1/routes/orders", token: ADMIN },
  { name: "an unknown path", method: "PUT", path: "/v1/nowhere", token: ADMIN },
  { name: "no credential", method: "PUT", path: "/v1/services/orders", token: null },
  { name: "a resource write", method: "PUT", path: "/v1/services/orders", token: ADMIN },
  { name: "an apply", method: "POST", path: "/v1/apply", token: ADMIN },
];

/** Each case is sent this many times per client: an early close showed up in about one of ten. */
const REPEATS = 3;

let control: TestControl;
let dir: string;
let bodyFile: string;

beforeAll(async () => {
  control = await startTestControl({}, null);
  await control.call("PUT", "/v1/services/orders", { body: { balancer: "round-robin" } });
  dir = mkdtempSync(join(tmpdir(), "weft-oversized-"));
  bodyFile = join(dir, "body.json");
  writeFileSync(bodyFile, BODY);
});

afterAll(async () => {
  await control?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What a client read: the status, the `weft-error` header and the body's error code (or what went wrong). */
interface Read {
  status: number | string;
  header: string | null;
  code: string | null;
}

const expected: Read = { status: 413, header: "payload-too-large", code: "payload-too-large" };

const codeOf = (text: string): string | null => {
  try {
    return JSON.parse(text)?.error?.code ?? null;
  } catch {
    return null;
  }
};

/** Sends one case with curl and reports what it read (curl's exit status when it read nothing). */
async function curl(method: string, path: string, token: string | null, chunked = false): Promise<Read> {
  const headersFile = join(dir, `headers-${Math.random().toString(36).slice(2)}`);
  const args = ["-sS", "-X", method, "-H", "content-type: application/json", "--data-binary", `@${bodyFile}`, "-D", headersFile, "-w", "\n%{http_code}", `${control.url}${path}`];
  if (token !== null) args.push("-H", `authorization: Bearer ${token}`);
  if (chunked) args.push("-H", "transfer-encoding: chunked");
  try {
    const { stdout } = await run("curl", args, { maxBuffer: 1024 * 1024, timeout: 60_000 });
    const lines = stdout.split("\n");
    const status = Number(lines.at(-1));
    const headers = readFileSync(headersFile, "utf8");
    const header = /^weft-error:\s*(\S+)/im.exec(headers)?.[1] ?? null;
    return { status, header, code: codeOf(lines.slice(0, -1).join("\n")) };
  } catch (error) {
    return { status: `curl failed: ${(error as { stderr?: string }).stderr?.trim() ?? String(error)}`, header: null, code: null };
  } finally {
    rmSync(headersFile, { force: true });
  }
}

/** Python's urllib: one process sends every case `REPEATS` times and prints what it read as JSON lines. */
const PYTHON = `
import json, sys, urllib.request, urllib.error
base, body_file, cases, repeats, chunked = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
body = open(body_file, "rb").read()
for case in cases:
    for _ in range(repeats):
        headers = {"content-type": "application/json"}
        if case["token"] is not None:
            headers["authorization"] = "Bearer " + case["token"]
        data = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
        if chunked:
            headers["transfer-encoding"] = "chunked"
        request = urllib.request.Request(base + case["path"], data=data, method=case["method"], headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                print(json.dumps({"status": response.status, "header": response.headers.get("weft-error"), "text": response.read().decode()}))
        except urllib.error.HTTPError as error:
            print(json.dumps({"status": error.code, "header": error.headers.get("weft-error"), "text": error.read().decode()}))
        except Exception as error:
            print(json.dumps({"status": "urllib failed: " + type(error).__name__ + ": " + str(error), "header": None, "text": ""}))
`;

async function python(cases: typeof CASES, repeats: number, chunked = false): Promise<Read[]> {
  const { stdout } = await run("python3", ["-c", PYTHON, control.url, bodyFile, JSON.stringify(cases), String(repeats), chunked ? "1" : "0"], { timeout: 120_000 });
  return stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { status: number | string; header: string | null; text: string })
    .map((r) => ({ status: r.status, header: r.header, code: codeOf(r.text) }));
}

/** Node's fetch (undici), each request on the pool as an application would send it. */
async function nodeFetch(method: string, path: string, token: string | null): Promise<Read> {
  try {
    const response = await fetch(`${control.url}${path}`, {
      method,
      headers: { "content-type": "application/json", ...(token !== null && { authorization: `Bearer ${token}` }) },
      body: BODY,
    });
    return { status: response.status, header: response.headers.get("weft-error"), code: codeOf(await response.text()) };
  } catch (error) {
    return { status: `fetch failed: ${(error as { cause?: { code?: string } }).cause?.code ?? String(error)}`, header: null, code: null };
  }
}

describe("an oversized body", () => {
  it("is answered 413 JSON that curl reads, on every path, method and credential", async () => {
    for (const { name, method, path, token } of CASES) {
      for (let i = 0; i < REPEATS; i++) expect(await curl(method, path, token), `${name}, try ${i + 1}`).toEqual(expected);
    }
  }, 120_000);

  it("is answered 413 JSON that Python's urllib reads, on every path, method and credential", async () => {
    const reads = await python(CASES, REPEATS);
    expect(reads).toHaveLength(CASES.length * REPEATS);
    reads.forEach((read, i) => expect(read, CASES[Math.floor(i / REPEATS)]!.name).toEqual(expected));
  }, 120_000);

  it("is answered 413 JSON that Node's fetch reads, on every path, method and credential", async () => {
    for (const { name, method, path, token } of CASES) {
      for (let i = 0; i < REPEATS; i++) expect(await nodeFetch(method, path, token), `${name}, try ${i + 1}`).toEqual(expected);
    }
  }, 120_000);

  it("sent chunked (no content-length) is read and refused 413 where the route reads it, and drained before any other answer", async () => {
    expect(await curl("PUT", "/v1/services/orders", ADMIN, true)).toEqual(expected);
    expect(await curl("PUT", "/v1/apply", ADMIN, true)).toEqual({ status: 405, header: "bad-request", code: "bad-request" });
    expect(await curl("PUT", "/v1/nowhere", ADMIN, true)).toEqual({ status: 404, header: "unknown-service", code: "unknown-service" });
    const chunkedCases = CASES.filter((c) => c.path === "/v1/services/orders" || c.path === "/v1/apply");
    const reads = await python(chunkedCases, 1, true);
    expect(reads.map((r) => r.status)).toEqual([405, 401, 413, 413]);
    for (const read of reads) expect(read.code).toBe(read.header);
  }, 120_000);

  it("leaves the control plane answering, with nothing written", async () => {
    const orders = await control.call("GET", "/v1/services/orders");
    expect(orders.status).toBe(200);
    expect(orders.json.balancer).toBe("round-robin");
  });
});
