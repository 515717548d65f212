import { describe, expect, it } from "vitest";
import type { Snapshot } from "../src/core/config/index.ts";
import { MeshError } from "../src/core/errors.ts";
import type { ControlClient } from "../src/proxy/index.ts";
import { createControlLink } from "./control-link.ts";
import type { Log } from "./log.ts";

const snapshot = (version: number): Snapshot => ({ version, services: [], routes: [], policies: [], jwks: { keys: [] } });

/** A control client whose answers the test scripts: `down` makes every call fail. */
function fakeClient() {
  const state = { down: false, version: 1, tokens: 0, registrations: 0, deregistered: 0, pushes: 0, polls: 0, waiting: [] as (() => void)[] };
  const unreachable = () => new MeshError("upstream-unreachable", "the control plane is down");
  const client: ControlClient = {
    tokens: {
      token: async () => {
        state.tokens++;
        if (state.down) throw unreachable();
        return "token";
      },
      held: () => [],
    },
    issuer: () => "http://control",
    certificate: () => Promise.reject(unreachable()),
    async snapshot({ version, wait, signal } = {}) {
      state.polls++;
      if (state.down) throw unreachable();
      if (version !== undefined && version >= state.version && wait) {
        // A long-poll: held until the version changes or the call is aborted.
        await new Promise<void>((resolve, reject) => {
          state.waiting.push(resolve);
          signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
        });
        if (state.down) throw unreachable();
      }
      return version === state.version ? undefined : snapshot(state.version);
    },
    async register() {
      if (state.down) throw unreachable();
      state.registrations++;
    },
    async deregister() {
      state.deregistered++;
    },
    async pushStats() {
      state.pushes++;
    },
    async pushTapEvents() {},
  };
  const publish = (version: number) => {
    state.version = version;
    for (const wake of state.waiting.splice(0)) wake();
  };
  return { client, state, publish };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(check()).toBe(true);
};

function link(fake: ReturnType<typeof fakeClient>, applied: number[], lines: string[] = []) {
  const log: Log = (_level, event) => void lines.push(event);
  return createControlLink({
    client: fake.client,
    service: "orders",
    endpointId: "orders-1",
    registration: { address: "http://10.0.0.1:4143", ttl: "3s" },
    leaseTtlMs: 3_000,
    snapshotWaitS: 30,
    statsIntervalMs: 60_000,
    apply: async (s) => void applied.push(s.version),
    takeStats: () => ({}) as never,
    log,
    backoff: { base: 1, max: 5 },
  });
}

describe("the control-plane link", () => {
  it("waits out an unreachable control plane at start, then loads identity and config and registers", async () => {
    const fake = fakeClient();
    fake.state.down = true;
    const applied: number[] = [];
    const running = link(fake, applied);
    const started = running.start();
    await until(() => fake.state.tokens >= 3);
    expect(running.status()).toMatchObject({ identity: false, version: -1 });
    fake.state.down = false;
    await started;
    await until(() => fake.state.registrations === 1);
    expect(running.status()).toMatchObject({ identity: true, version: 1, registered: true, connected: true });
    expect(applied).toEqual([1]);
    await running.stop();
  });

  it("applies each new version the long-poll brings, keeps the last one while the control plane is away, and reconnects", async () => {
    const fake = fakeClient();
    const applied: number[] = [];
    const lines: string[] = [];
    const running = link(fake, applied, lines);
    await running.start();
    fake.publish(2);
    await until(() => applied.includes(2));
    fake.state.down = true;
    fake.publish(3);
    await until(() => lines.includes("control-plane-unreachable"));
    expect(running.status()).toMatchObject({ version: 2, connected: false });
    fake.state.down = false;
    await until(() => applied.includes(3));
    expect(lines).toContain("control-plane-reconnected");
    expect(applied).toEqual([1, 2, 3]);
    await running.stop();
  });

  it("removes the endpoint on stop when asked, and stops polling", async () => {
    const fake = fakeClient();
    const running = link(fake, []);
    await running.start();
    await until(() => fake.state.registrations === 1);
    await running.stop({ deregister: true });
    expect(fake.state.deregistered).toBe(1);
    const polls = fake.state.polls;
    await new Promise((r) => setTimeout(r, 20));
    expect(fake.state.polls).toBe(polls);
  });
});
