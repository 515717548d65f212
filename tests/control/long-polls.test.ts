/**
 * The store's cap on waiting long-polls, against the worker in workerd with real HTTP clients
 * (one `node:http` connection each): past the cap a poll is answered at once with 503
 * `overloaded`, `retry-after` and a JSON body, the polls already waiting are still answered
 * when a version lands, and twice the cap at once is answered cleanly. The local runner sets
 * the cap from its open-file limit, so twice the cap fits in the descriptors workerd may open.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FDS_PER_LONG_POLL, RESERVED_FDS } from "../../workers/control/local.ts";
import type { TestControl } from "./helpers.ts";
import { ADMIN, call, eventually, service, startTestControl } from "./helpers.ts";

/** What a client read of one long-poll. */
interface PollAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One long-poll on its own connection (no pooling), as a data-plane host sends it. */
function longPoll(base: string, etag: string, waitS = 60): { answer: Promise<PollAnswer>; answered: () => boolean } {
  let done = false;
  const answer = new Promise<PollAnswer>((resolve, reject) => {
    const req = request(`${base}/v1/snapshot?wait=${waitS}`, { agent: false, headers: { authorization: `Bearer ${ADMIN}`, "if-none-match": etag } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => {
        done = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
  return { answer, answered: () => done };
}

/**
 * Opens twice `cap` long-polls at once and checks the contract: exactly `cap` refused with
 * 503 `overloaded` (retry-after, JSON), the others held until a write, then all answered 200
 * with the new version, and the control plane still answering.
 */
async function twiceTheCap(base: string, cap: number): Promise<void> {
  const current = await call(base, "GET", "/v1/snapshot");
  const etag = current.headers.get("etag")!;
  const polls = Array.from({ length: 2 * cap }, () => longPoll(base, etag));
  // The refusals come without waiting for anything: the held half is still unanswered when they are all in.
  await eventually(async () => (polls.filter((p) => p.answered()).length >= cap ? true : undefined), 60_000);
  const early = await Promise.all(polls.filter((p) => p.answered()).map((p) => p.answer));
  expect(early).toHaveLength(cap);
  for (const refused of early) {
    expect(refused.status).toBe(503);
    expect(refused.headers["weft-error"]).toBe("overloaded");
    expect(refused.headers["retry-after"]).toBe("1");
    expect(refused.headers["content-type"]).toContain("application/json");
    expect(JSON.parse(refused.body).error.code).toBe("overloaded");
  }
  const held = polls.filter((p) => !p.answered());
  expect(held).toHaveLength(cap);

  // A write still succeeds while the cap is held, and wakes every held poll with its version.
  const write = await call(base, "PUT", `/v1/services/wake-${cap}`, { body: service() });
  expect(write.status).toBe(201);
  for (const answer of await Promise.all(held.map((p) => p.answer))) {
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).version).toBeGreaterThanOrEqual(write.json.version);
  }
  // Nothing crashed: a plain read answers, and with the slots free a poll is held again, not refused.
  const after = await call(base, "GET", "/v1/snapshot");
  expect(after.status).toBe(200);
  const again = longPoll(base, after.headers.get("etag")!, 0.5);
  expect((await again.answer).status).toBe(304);
}

describe("long-poll cap", () => {
  let control: TestControl;

  beforeAll(async () => {
    control = await startTestControl({ maxLongPolls: 50 }, null);
  });

  afterAll(async () => {
    await control?.destroy();
  });

  it("holds the first 50 of 100 long-polls, refuses the other 50 at once with 503 overloaded, and wakes the held ones with a write", async () => {
    expect(control.maxLongPolls).toBe(50);
    await twiceTheCap(control.url, 50);
  }, 120_000);

  it("gets and deletes routes and policies by name like services", async () => {
    await control.call("POST", "/v1/apply", {
      body: {
        resources: [
          { kind: "Service", name: "fam" },
          { kind: "Route", name: "fam-route", service: "fam", backends: [{ service: "fam" }] },
          { kind: "AuthorizationPolicy", name: "fam-policy", target: { service: "fam" }, action: "AUDIT" },
        ],
      },
    });
    for (const [family, name, kind] of [["policies", "fam-policy", "AuthorizationPolicy"], ["routes", "fam-route", "Route"], ["services", "fam", "Service"]]) {
      const got = await control.call("GET", `/v1/${family}/${name}`);
      expect(got.status, family).toBe(200);
      expect(got.json).toMatchObject({ kind, name });
      expect((await control.call("DELETE", `/v1/${family}/${name}`, { headers: { "if-match": got.headers.get("etag")! } })).status, family).toBe(200);
      expect((await control.call("GET", `/v1/${family}/${name}`)).status, family).toBe(404);
    }
  });
});

describe("the local runner's default cap", () => {
  /** The open-file limit the control plane process is started under. */
  const FD_LIMIT = 700;
  /** The cap that limit allows: twice the cap's descriptors, with the reserve, within the limit. */
  const EXPECTED_CAP = Math.floor((FD_LIMIT - RESERVED_FDS) / (2 * FDS_PER_LONG_POLL));
  let child: ChildProcess | undefined;
  let started: { url: string; maxLongPolls: number } | undefined;
  let stderr = "";

  beforeAll(async () => {
    const script = join(import.meta.dirname, "control-process.ts");
    child = spawn("sh", ["-c", `ulimit -n ${FD_LIMIT} && exec "$0" "$1"`, process.execPath, script], { stdio: ["ignore", "pipe", "pipe"] });
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    started = await new Promise((resolve, reject) => {
      let out = "";
      child!.stdout!.on("data", (chunk) => {
        out += chunk;
        if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]!));
      });
      child!.once("exit", (code) => reject(new Error(`the control process exited (${code}): ${stderr}`)));
    });
  });

  afterAll(async () => {
    if (child?.exitCode === null) {
      const exited = new Promise((resolve) => child!.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
  });

  it(`sets its cap from a limit of ${FD_LIMIT} open files and answers twice the cap cleanly`, async () => {
    expect(started!.maxLongPolls).toBe(EXPECTED_CAP);
    await twiceTheCap(started!.url, EXPECTED_CAP);
    expect(child!.exitCode, stderr).toBeNull();
    expect(stderr).not.toMatch(/EMFILE|Too many open files/i);
  }, 120_000);
});
