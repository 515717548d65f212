/**
 * `weft dev`: the whole mesh on this machine, on the embedded local runtime (workerd through
 * Miniflare): the control worker on 127.0.0.1:8788 and the demo `web → orders → inventory`,
 * each service behind its own router, with a little traffic so `weft stat` has numbers.
 */
import { isAbsolute, relative } from "node:path";
import type { Command, Context } from "../command.ts";
import { CliError, EXIT, UsageError } from "../command.ts";

const port = (ctx: Context, name: string, fallback: number): number => {
  const value = ctx.values[name];
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65_535) throw new UsageError(`--${name} must be a port number (got "${String(value)}")`);
  return n;
};

/** `path` as typed from `cwd`: relative when it lies inside it, else absolute. */
function pathFrom(cwd: string, path: string): string {
  const inside = relative(cwd, path);
  return inside.startsWith("..") || isAbsolute(inside) ? path : inside;
}

/** `word` quoted for a POSIX shell when it needs it. */
function shellWord(word: string): string {
  return /^[\w./:@%+=-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

async function run(ctx: Context): Promise<number> {
  const { DEMO_CONFIG_PATH, DEMO_CONTROL_PORT, DEMO_ENTRY_PORT, startDemoMesh } = await import("../../examples/demo/mesh.ts");
  const { isLocalDefault } = await import("../connection.ts");
  const entryPort = port(ctx, "entry-port", DEMO_ENTRY_PORT);
  const controlPort = port(ctx, "control-port", DEMO_CONTROL_PORT);
  const rps = ctx.values.load === undefined ? 5 : Number(ctx.values.load);
  if (!(rps >= 0 && rps <= 200)) throw new UsageError("--load must be requests per second from 0 to 200");
  const out = ctx.io.stdout;
  const s = ctx.style;
  out.write(`Starting the local mesh (state in ${ctx.io.cwd}/.weft/) ...\n`);
  let mesh;
  try {
    mesh = await startDemoMesh({ dir: ctx.io.cwd, entryPort, controlPort });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const hint = /EADDRINUSE|address already in use/i.test(message) ? `is another \`weft dev\` running? Ports ${entryPort} and ${controlPort} must be free.` : undefined;
    throw new CliError(`the local mesh did not start: ${message.split("\n")[0]}`, hint ? { hint } : {});
  }
  // The commands below must work as printed: on a port of its own, each names the control API
  // (the CLI's default is 8788), and the CLI sends .weft/admin-token there because
  // .weft/control-url records it.
  const weft = (args: string) => `npx weft ${args}${isLocalDefault(mesh.controlUrl) ? "" : ` --control-url ${mesh.controlUrl}`}`;
  out.write(
    [
      "",
      `${s.bold("Weft is running.")} The demo: web → orders (v1 90% / v2 10%) → inventory, each behind its router.`,
      "",
      `  Try it:           curl ${mesh.entryUrl}`,
      `  Control API:      ${mesh.controlUrl}  (admin token in ${mesh.adminTokenPath})`,
      `  Dashboard:        ${mesh.controlUrl}/dashboard  (log in with the admin token, or .weft/read-token; or: ${weft("dashboard")})`,
      `  Live requests:    ${weft("tap web")}`,
      `  Golden metrics:   ${weft("stat")}   (or: ${weft("stat --watch")})`,
      `  Health:           ${weft("check")}`,
      `  Config:           ${weft("get services")}; ${weft(`apply -f ${shellWord(pathFrom(ctx.io.cwd, DEMO_CONFIG_PATH))}`)}`,
      rps > 0 ? `  Traffic:          ${rps} requests/s to the entry, so there is something to see (--load 0 to stop)` : "",
      "",
      "Press Ctrl-C to stop. State is kept in .weft/ between runs.",
      "",
    ].join("\n"),
  );
  // A gentle load from this process, on loopback only, as Linkerd's demo apps ship a bot.
  let timer: ReturnType<typeof setInterval> | undefined;
  if (rps > 0) {
    timer = setInterval(() => {
      fetch(mesh.entryUrl, { signal: AbortSignal.timeout(5_000) })
        .then((r) => r.body?.cancel())
        .catch(() => {});
    }, 1000 / rps);
  }
  await new Promise<void>((resolve) => {
    if (ctx.io.signal.aborted) return resolve();
    ctx.io.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  if (timer) clearInterval(timer);
  out.write("\nStopping the local mesh ...\n");
  await mesh.stop();
  return EXIT.ok;
}

/** `weft dev`. */
export const command: Command = {
  name: "dev",
  usage: ["dev [--entry-port PORT] [--control-port PORT] [--load RPS]"],
  description: `Runs the whole mesh on this machine on the embedded local runtime (workerd): the control
plane on 127.0.0.1:8788 and the demo services behind their routers, with the demo's entry on
127.0.0.1:8787. Config, keys and metrics persist in .weft/ in this folder, with the admin token
and the URL it is for (.weft/control-url): other weft commands run in this folder send the
token to that URL only. With --control-port, the commands it prints name the URL with
--control-url. Stops on Ctrl-C.`,
  options: {
    "entry-port": { type: "string", value: "PORT", description: "port of the demo's entry (default 8787)" },
    "control-port": { type: "string", value: "PORT", description: "port of the control API (default 8788)" },
    load: { type: "string", value: "RPS", description: "requests per second of demo traffic (default 5; 0 for none)" },
  },
  examples: [
    ["weft dev", "Run the local mesh"],
    ["weft dev --load 0", "Run it with no demo traffic"],
  ],
  run,
};
