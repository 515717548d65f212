/**
 * No lost update: eight writers make 500 edits each to the same two services at once, through
 * `PUT` with `If-Match` and through `POST /v1/apply` with versions. Every edit either succeeds
 * and is visible in the final state and the audit log, or gets 412; the store's version goes
 * up by exactly the number of successes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Answer, TestControl } from "./helpers.ts";
import { startTestControl } from "./helpers.ts";

const WRITERS = 8;
const EDITS = 500;
const NAMES = ["hot-a", "hot-b"] as const;

let control: TestControl;

beforeAll(async () => {
  control = await startTestControl({}, null);
});

afterAll(async () => {
  await control?.destroy();
});

/** One successful edit: the version it made and the timeout it wrote to each service it touched. */
interface Success {
  version: number;
  wrote: Partial<Record<(typeof NAMES)[number], string>>;
}

describe("concurrent writers", () => {
  it("lose no update: every edit is a success that shows in state and audit, or a 412", async () => {
    for (const name of NAMES) await control.call("PUT", `/v1/services/${name}`, { body: { timeout: "1ms" } });
    const start = (await control.call("GET", "/v1/snapshot")).json.version as number;
    const successes: Success[] = [];
    const statuses = new Map<number, number>();
    const count = (answer: Answer) => statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);

    const writer = async (w: number) => {
      const known = new Map<string, number>();
      const versionOf = async (name: string) => {
        if (!known.has(name)) known.set(name, (await control.call("GET", `/v1/services/${name}`)).json.version);
        return known.get(name)!;
      };
      for (let i = 0; i < EDITS; i++) {
        // A value no other edit writes, so the final state shows whose edit was last.
        const timeout = `${w * 10_000 + i + 2}ms`;
        if (i % 5 === 4) {
          const resources = await Promise.all(NAMES.map(async (name) => ({ kind: "Service", name, timeout, version: await versionOf(name) })));
          const answer = await control.call("POST", "/v1/apply", { body: { resources } });
          count(answer);
          if (answer.status === 200) {
            successes.push({ version: answer.json.version, wrote: { "hot-a": timeout, "hot-b": timeout } });
            for (const name of NAMES) known.set(name, answer.json.version);
          } else for (const name of NAMES) known.delete(name);
        } else {
          const name = NAMES[(w + i) % NAMES.length]!;
          const answer = await control.call("PUT", `/v1/services/${name}`, { body: { timeout }, headers: { "if-match": `"${await versionOf(name)}"` } });
          count(answer);
          if (answer.status === 200) {
            successes.push({ version: answer.json.version, wrote: { [name]: timeout } });
            known.set(name, answer.json.version);
          } else known.delete(name);
        }
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));

    // Every answer was a success or a 412, and there was contention.
    expect([...statuses.keys()].sort()).toEqual([200, 412].filter((s) => statuses.has(s)));
    expect(statuses.get(200)! + (statuses.get(412) ?? 0)).toBe(WRITERS * EDITS);
    expect(successes.length).toBe(statuses.get(200));

    // The version went up by one per success, and each success has its own version.
    const final = (await control.call("GET", "/v1/snapshot")).json;
    expect(final.version - start).toBe(successes.length);
    const versions = successes.map((s) => s.version).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: successes.length }, (_, i) => start + 1 + i));

    // The final state is the last successful write to each service.
    for (const name of NAMES) {
      const last = successes.filter((s) => s.wrote[name] !== undefined).sort((a, b) => b.version - a.version)[0]!;
      expect(final.services.find((s: { name: string }) => s.name === name).timeout).toBe(last.wrote[name]);
    }

    // The audit log has exactly one entry per success, from version v-1 to v, with what it wrote.
    const entries: { toVersion: number; fromVersion: number; actor: string; changes: { name: string }[] }[] = [];
    for (let after = 0; ; ) {
      const page = (await control.call("GET", `/v1/audit?after=${after}&limit=1000`)).json;
      entries.push(...page.entries);
      if (page.next === null) break;
      after = page.next;
    }
    const audited = new Map(entries.filter((e) => e.toVersion > start).map((e) => [e.toVersion, e]));
    expect(audited.size).toBe(successes.length);
    for (const success of successes) {
      const entry = audited.get(success.version)!;
      expect(entry.fromVersion).toBe(success.version - 1);
      expect(entry.actor).toBe("admin");
      expect(entry.changes.map((c) => c.name).sort()).toEqual(Object.keys(success.wrote).sort());
    }
    console.log(`concurrency: ${successes.length} successes, ${statuses.get(412) ?? 0} precondition failures`);
  }, 120_000);
});
