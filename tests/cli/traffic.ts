/**
 * Traffic for the CLI's tests, counted the way a router counts it: calls through the real
 * metrics layer to a fake upstream, then the delta pushed to `POST /v1/stats` as a router does.
 */
import { stack } from "../../src/core/fetch.ts";
import { createRegistry, metrics } from "../../src/core/metrics/index.ts";
import { fakeUpstream } from "../../src/testing/index.ts";
import type { CliFixture } from "./helpers.ts";

/** Sends `ok` calls answered 200 and `failed` answered 503 to `service` (inbound, route `route`), and pushes them as host `host`. */
export async function sendTraffic(t: CliFixture, options: { service: string; route: string; ok: number; failed: number; host: string; configVersion: number }): Promise<void> {
  const registry = createRegistry();
  const answers = [...Array<number>(options.ok).fill(200), ...Array<number>(options.failed).fill(503)];
  const app = stack(fakeUpstream(answers), metrics({ registry, direction: "inbound", dst_service: options.service, route: options.route }));
  for (let i = 0; i < answers.length; i++) await app(new Request(`http://${options.service}/api/items/${i}`));
  registry.setConfigVersion(options.configVersion);
  const pushed = await t.admin("POST", `/v1/stats?host=${encodeURIComponent(options.host)}`, registry.takeDelta());
  if (pushed.status !== 202) throw new Error(`the stats push answered ${pushed.status}: ${JSON.stringify(pushed.body)}`);
}
