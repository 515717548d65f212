/**
 * The sidecar process: `node sidecar/main.ts`, configured by `WEFT_*` environment variables
 * (docs/sidecar.md). A bad configuration exits 78 (EX_CONFIG) naming every problem; SIGTERM
 * drains and exits 0.
 */
import { loadConfig } from "./config.ts";
import { createLog, reason } from "./log.ts";
import { createSidecar } from "./sidecar.ts";

/** Exit status for a configuration the sidecar cannot run with (sysexits.h `EX_CONFIG`). */
export const EXIT_CONFIG = 78;

const loaded = loadConfig(process.env);
if (!loaded.ok) {
  const lines = loaded.problems.map((problem) => `  - ${problem}`).join("\n");
  process.stderr.write(`weft-sidecar: cannot start, the configuration has ${loaded.problems.length} problem${loaded.problems.length === 1 ? "" : "s"}:\n${lines}\n`);
  process.exit(EXIT_CONFIG);
}
const config = loaded.config;
const log = createLog(config.logLevel);
const sidecar = createSidecar({ config, log });

// A promise nobody handled is a bug; it is logged, and the sidecar keeps serving.
process.on("unhandledRejection", (error) => log("error", "unhandled-rejection", { reason: reason(error) }));

let signals = 0;
const onSignal = (signal: NodeJS.Signals) => {
  signals++;
  if (signals > 1) {
    log("warn", "exit-forced", { signal });
    process.exit(1);
  }
  log("info", "signal", { signal });
  void sidecar.drain();
};
process.on("SIGTERM", onSignal);
process.on("SIGINT", onSignal);

sidecar.drained().then(() => process.exit(0));

try {
  await sidecar.start();
} catch (error) {
  log("error", "listen-failed", { reason: reason(error) });
  process.exit(1);
}
