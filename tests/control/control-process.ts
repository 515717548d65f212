/**
 * The local control plane as a process of its own, for tests that must set its process limits
 * (`ulimit -n`) apart from the test runner's: starts it on a free loopback port with the admin
 * secret of `helpers.ts` and the local runner's defaults, prints one JSON line
 * `{"url", "maxLongPolls"}`, and stops on SIGTERM or SIGINT.
 * Run: `node tests/control/control-process.ts`.
 */
import { startControl } from "../../workers/control/local.ts";
import { ADMIN } from "./helpers.ts";

const control = await startControl({ adminToken: ADMIN, port: 0 });
process.stdout.write(`${JSON.stringify({ url: control.url, maxLongPolls: control.maxLongPolls })}\n`);
const stop = () => {
  void control.stop().finally(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
