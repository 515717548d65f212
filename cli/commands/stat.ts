/**
 * `weft stat`: golden metrics per service and route over the last minute (success rate, RPS,
 * latency p50/p95/p99), as `linkerd viz stat` shows them; `--watch` refreshes the table.
 */
import type { Command, Context } from "../command.ts";
import { CliError, EXIT, outputFormat, outputOption, UsageError } from "../command.ts";
import type { ControlApi, RouteStats, StatsAnswer } from "../control-api.ts";
import { kindInfo } from "../kinds.ts";
import type { Cell, Style } from "../output.ts";
import { json, latency, percent, rps, table } from "../output.ts";

const FORMATS = ["table", "json"] as const;

/** How often `--watch` refreshes: watch(1)'s default interval. */
export const DEFAULT_WATCH_INTERVAL_MS = 2_000;

/** The name `weft stat` shows for calls that matched no route, as Linkerd shows `[default]`. */
export const DEFAULT_ROUTE_LABEL = "[default]";

/** What one refresh shows: the stats, and services known to the control plane without traffic. */
export interface StatView {
  windowSeconds: number;
  routes: RouteStats[];
  /** Services in the config with no calls in the window (shown with `-`). */
  idle: string[];
}

/** The rows of the stat table for `view`, sorted by service, route, direction. */
export function statTable(view: StatView, style: Style): string {
  const rows: { key: string; cells: Cell[] }[] = view.routes.map((r) => {
    const rate = r.successRate ?? (r.requests > 0 ? r.successes / r.requests : null);
    const paint = rate === null ? undefined : rate >= 0.99 ? style.green : rate >= 0.95 ? style.yellow : style.red;
    return {
      key: `${r.dst_service}\0${r.route === "" ? "\uffff" : r.route}\0${r.direction}`,
      cells: [
        r.dst_service,
        r.route === "" ? DEFAULT_ROUTE_LABEL : r.route,
        r.direction,
        String(r.requests),
        paint ? { text: percent(rate), paint } : percent(rate),
        rps(r.rps),
        latency(r.latencyMs?.p50),
        latency(r.latencyMs?.p95),
        latency(r.latencyMs?.p99),
      ],
    };
  });
  for (const service of view.idle) rows.push({ key: `${service}\0`, cells: [service, "-", "-", "0", "-", "-", "-", "-", "-"] });
  rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return table(["SERVICE", "ROUTE", "DIRECTION", "REQUESTS", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"], rows.map((r) => r.cells), style);
}

/** Stats for `service` (or all), and the services in the config that had no calls. */
export async function collect(api: ControlApi, service: string | undefined, direction: string): Promise<StatView> {
  const [stats, services] = await Promise.all([api.stats(), api.list(kindInfo("Service"))]);
  return viewOf(stats, services.map((s) => s.name), service, direction);
}

/** The part of `stats` for `service` and `direction`, plus services without traffic. */
export function viewOf(stats: StatsAnswer, known: string[], service: string | undefined, direction: string): StatView {
  const routes = stats.routes.filter((r) => (service === undefined || r.dst_service === service) && (direction === "all" || r.direction === direction));
  const active = new Set(routes.map((r) => r.dst_service));
  const idle = known.filter((name) => !active.has(name) && (service === undefined || name === service));
  return { windowSeconds: stats.windowSeconds, routes, idle };
}

async function run(ctx: Context): Promise<number> {
  const format = outputFormat(ctx, FORMATS);
  if (ctx.positionals.length > 1) throw new UsageError("give at most one service");
  const service = ctx.positionals[0];
  const direction = typeof ctx.values.direction === "string" ? ctx.values.direction : "all";
  if (!["all", "inbound", "outbound"].includes(direction)) throw new UsageError(`--direction must be inbound, outbound or all (got "${direction}")`);
  let intervalMs = DEFAULT_WATCH_INTERVAL_MS;
  if (typeof ctx.values.interval === "string") {
    const { parseDuration } = await import("../../src/core/config/duration.ts");
    const parsed = parseDuration(ctx.values.interval);
    if (!parsed.ok || parsed.ms < 100) throw new UsageError(`--interval must be a duration of at least 100ms, such as "2s" (got "${ctx.values.interval}")`);
    intervalMs = parsed.ms;
  }
  const api = await ctx.api();

  const render = (view: StatView) => {
    if (format === "json") return JSON.stringify({ windowSeconds: view.windowSeconds, routes: view.routes, idle: view.idle }) + "\n";
    return statTable(view, ctx.style);
  };

  if (ctx.values.watch !== true) {
    const view = await collect(api, service, direction);
    if (service !== undefined && view.routes.length === 0 && view.idle.length === 0) {
      throw new CliError(`service "${service}" not found and no calls to it in the last ${view.windowSeconds}s`);
    }
    ctx.io.stdout.write(format === "json" ? json({ windowSeconds: view.windowSeconds, routes: view.routes, idle: view.idle }) : render(view));
    return EXIT.ok;
  }

  const { signal } = ctx.io;
  const redraw = format === "table" && ctx.io.stdout.isTTY;
  while (!signal.aborted) {
    let text: string;
    try {
      text = render(await collect(api, service, direction));
    } catch (error) {
      // A dashboard outlives a control plane restart: show the failure and try again next time.
      if (!(error instanceof CliError)) throw error;
      text = format === "json" ? JSON.stringify({ error: error.message }) + "\n" : `${ctx.style.red("error:")} ${error.message}\n`;
    }
    if (signal.aborted) break;
    const heading = `Every ${intervalMs / 1000}s: weft stat${service ? ` ${service}` : ""}    ${new Date(ctx.io.now()).toISOString()}\n\n`;
    ctx.io.stdout.write(redraw ? `\x1b[H\x1b[2J${heading}${text}` : format === "table" ? `${heading}${text}\n` : text);
    await ctx.io.sleep(intervalMs, signal);
  }
  return EXIT.ok;
}

/** `weft stat`. */
export const command: Command = {
  name: "stat",
  usage: ["stat [SERVICE] [--watch] [-o table|json]"],
  description: `Shows golden metrics over the last minute for every service and route, as routers
and sidecars reported them to the control plane: REQUESTS (calls completed in the window),
SUCCESS (share not failed: a 5xx or a mesh error is a failure), RPS, and latency p50, p95
and p99. Calls that matched no route show as ${DEFAULT_ROUTE_LABEL}. DIRECTION is inbound (seen
by the service's own router or sidecar) or outbound (seen by its callers'). Services with no
calls are listed with "-". --watch redraws every --interval until Ctrl-C; with -o json it
prints one JSON object per line.`,
  options: {
    output: outputOption([...FORMATS]),
    watch: { type: "boolean", short: "w", description: "refresh until Ctrl-C" },
    interval: { type: "string", value: "DURATION", description: `how often --watch refreshes (default ${DEFAULT_WATCH_INTERVAL_MS / 1000}s)` },
    direction: { type: "string", value: "DIR", description: "inbound, outbound or all (default all)" },
  },
  examples: [
    ["weft stat", "Every service and route"],
    ["weft stat orders --watch", "One service, refreshed every 2s"],
    ["weft stat -o json | jq '.routes[] | select(.successRate < 0.99)'", "For scripts"],
  ],
  run,
};
