/**
 * The table of `weft` commands: a name, the one line `weft --help` shows, and a loader, so
 * a command's module (and what it imports) loads only when that command runs. A new command
 * is one module here and one row below.
 */
import type { Command } from "../command.ts";

/** One row of the command table. */
export interface CommandEntry {
  name: string;
  /** One line for `weft --help`. */
  summary: string;
  load(): Promise<Command>;
}

/** Every command, in the order `weft --help` lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  { name: "dev", summary: "run the whole mesh locally: control plane and the demo services", load: async () => (await import("./dev.ts")).command },
  { name: "check", summary: "check that the control plane, identity and data plane are healthy", load: async () => (await import("./check.ts")).command },
  { name: "stat", summary: "golden metrics per service and route: success rate, RPS, latency", load: async () => (await import("./stat.ts")).command },
  { name: "tap", summary: "stream live request events of a service from every router and sidecar", load: async () => (await import("./tap.ts")).command },
  { name: "dashboard", summary: "open the web dashboard the control plane serves", load: async () => (await import("./dashboard.ts")).command },
  { name: "get", summary: "show services, routes or authorization policies", load: async () => (await import("./get.ts")).command },
  { name: "apply", summary: "create or update resources from YAML or JSON files, all or none", load: async () => (await import("./apply.ts")).command },
  { name: "diff", summary: "show what `weft apply` would change, changing nothing", load: async () => (await import("./diff.ts")).command },
  { name: "delete", summary: "delete a service, route or authorization policy", load: async () => (await import("./delete.ts")).command },
  { name: "inject", summary: "add the Weft sidecar to Kubernetes workloads (Deployment, StatefulSet, Job, ...)", load: async () => (await import("./inject.ts")).command },
  { name: "identity", summary: "decode a workload identity token: subject, audience, expiry, key", load: async () => (await import("./identity.ts")).command },
];

/** The command named `name`, or undefined. */
export function findCommand(name: string): CommandEntry | undefined {
  return COMMANDS.find((c) => c.name === name);
}
