/**
 * `weft tap`: live request events of a service, as `linkerd viz tap` shows them. Starts a tap
 * session at the control plane (the tap permission: a tap or admin token), prints each
 * sampled call as it arrives from every router and sidecar carrying the service's traffic,
 * and ends the session on Ctrl-C.
 */
import type { Command, Context } from "../command.ts";
import { CliError, EXIT, outputFormat, outputOption, UsageError } from "../command.ts";
import { errorOf } from "../control-api.ts";
import type { TapEvent as CoreTapEvent } from "../../src/core/tap/index.ts";

const FORMATS = ["text", "json"] as const;

/** Seconds each events long-poll is held at the control plane. */
const WAIT_SECONDS = 5;

/** An event as the control plane passes it on: src/core/tap's own, read by the fields printed here. */
type TapEvent = Pick<CoreTapEvent, "kind" | "at" | "call" | "direction" | "host" | "method" | "authority" | "path" | "src" | "dst" | "route" | "trace_id" | "attempt" | "status" | "error" | "latencyMs">;

/** One line of text output for `event`, Linkerd style: `req` for a start, `end` for an end. */
export function eventLine(event: TapEvent): string {
  const who = `host=${event.host} dir=${event.direction} src=${event.src || "-"} dst=${event.dst}`;
  const what = `:method=${event.method} :authority=${event.authority} :path=${event.path}`;
  if (event.kind === "start") return `req ${who} ${what}${event.trace_id ? ` trace_id=${event.trace_id}` : ""}`;
  const latency = event.latencyMs === undefined ? "-" : `${Math.round(event.latencyMs * 10) / 10}ms`;
  return `end ${who} ${what} :status=${event.status ?? "-"}${event.error ? ` weft-error=${event.error}` : ""} latency=${latency}${event.route ? ` route=${event.route}` : ""}${event.attempt ? ` attempt=${event.attempt}` : ""}`;
}

function positive(ctx: Context, name: string, max: number): number | undefined {
  const value = ctx.values[name];
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`--${name} must be a whole number from 1 to ${max} (got "${String(value)}")`);
  return n;
}

async function run(ctx: Context): Promise<number> {
  const format = outputFormat(ctx, FORMATS);
  if (ctx.positionals.length !== 1) throw new UsageError("give the service to tap: weft tap SERVICE");
  const body: Record<string, unknown> = { service: ctx.positionals[0] };
  for (const [flag, field] of [["to", "to"], ["route", "route"], ["method", "method"], ["path-prefix", "pathPrefix"]] as const) {
    const value = ctx.values[flag];
    if (typeof value === "string") body[field] = value;
  }
  const maxRps = positive(ctx, "max-rps", 10_000);
  if (maxRps !== undefined) body.maxRps = maxRps;
  const seconds = positive(ctx, "seconds", 3_600);
  if (seconds !== undefined) body.seconds = seconds;

  const api = await ctx.api();
  const started = await api.call("POST", "/v1/taps", { body });
  if (started.status !== 201) throw errorOf(started, api.connection);
  const tap = started.body as { id: string; expiresAt: string };
  const { stdout, stderr } = ctx.io;
  stderr.write(`Tapping ${String(body.service)} (session ${tap.id}, until ${tap.expiresAt}); Ctrl-C to stop.\n`);

  let after = 0;
  let dropped = 0;
  let shown = 0;
  const { signal } = ctx.io;
  try {
    while (!signal.aborted) {
      const answer = await api.call("GET", `/v1/taps/${tap.id}/events?wait=${WAIT_SECONDS}&after=${after}`, { signal });
      if (signal.aborted) break;
      if (answer.status === 404) {
        stderr.write("The tap session ended.\n");
        return EXIT.ok;
      }
      if (answer.status !== 200) throw errorOf(answer, api.connection);
      const page = answer.body as { events: TapEvent[]; next: number; dropped: number };
      after = page.next;
      for (const event of page.events) {
        stdout.write(format === "json" ? `${JSON.stringify(event)}\n` : `${eventLine(event)}\n`);
        if (event.kind === "end") shown++;
      }
      if (page.dropped > dropped) {
        dropped = page.dropped;
        stderr.write(`weft tap: ${dropped} call(s) not shown so far: the tap's rate limit (--max-rps) or a full buffer dropped them\n`);
      }
    }
  } catch (error) {
    if (!(error instanceof CliError) || !signal.aborted) throw error;
  } finally {
    // End the session whatever happened, so data planes stop sampling for it.
    const ended = await api.call("DELETE", `/v1/taps/${tap.id}`).catch(() => undefined);
    if (ended && ended.status !== 200 && ended.status !== 404) stderr.write(`weft tap: could not end session ${tap.id} (${ended.status}); it ends by itself at ${tap.expiresAt}\n`);
  }
  stderr.write(`Stopped: ${shown} call(s) shown, ${dropped} dropped by the rate limit.\n`);
  return EXIT.ok;
}

/** `weft tap`. */
export const command: Command = {
  name: "tap",
  usage: ["tap SERVICE [--to SERVICE] [--route ROUTE] [--method METHOD] [--path-prefix PATH] [--max-rps N] [-o text|json]"],
  description: `Streams live request events of SERVICE from every router and sidecar carrying its traffic:
its inbound calls, its outbound calls, and other services' calls to it. Each call shows as a
"req" line when it starts and an "end" line with its status, weft-error and latency. Events
are sampled to --max-rps per host (default 100), so a tap cannot hurt the data plane; calls
past it are counted and reported. Header values of authorization, cookie, weft-identity and
a service's tapIgnoreHeaders are never shown. Needs a tap or admin token; every tap session
is in the audit log. Ends on Ctrl-C (or after --seconds, default 600).`,
  options: {
    to: { type: "string", value: "SERVICE", description: "only SERVICE's outbound calls to this service" },
    route: { type: "string", value: "ROUTE", description: "only calls that matched this route" },
    method: { type: "string", value: "METHOD", description: "only calls with this method" },
    "path-prefix": { type: "string", value: "PATH", description: "only paths that start with PATH" },
    "max-rps": { type: "string", value: "N", description: "calls sampled per second per host (default 100)" },
    seconds: { type: "string", value: "N", description: "end the session after N seconds (default 600, at most 3600)" },
    output: outputOption([...FORMATS]),
  },
  examples: [
    ["weft tap orders", "Every call to and from orders"],
    ["weft tap web --to orders --method POST", "web's POST calls to orders"],
    ["weft tap orders -o json", "One JSON event per line"],
  ],
  run,
};
