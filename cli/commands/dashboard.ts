/**
 * `weft dashboard`: prints the dashboard's URL (served by the control plane at `/dashboard`)
 * and opens it in the desktop's browser when there is a desktop.
 */
import type { Command, Context } from "../command.ts";
import { EXIT } from "../command.ts";

/** The program that opens a URL on this desktop, or undefined on a machine without one. */
function opener(env: Record<string, string | undefined>): string | undefined {
  if (process.platform === "darwin") return "open";
  if (process.platform === "win32") return undefined;
  return env.DISPLAY || env.WAYLAND_DISPLAY ? "xdg-open" : undefined;
}

async function run(ctx: Context): Promise<number> {
  const connection = await ctx.connection();
  const url = `${connection.url}/dashboard`;
  ctx.io.stdout.write(`${url}\n`);
  const local = connection.adminTokenPath ? ` (the local mesh's admin token is in ${connection.adminTokenPath}; a read-only one beside it)` : "";
  ctx.io.stderr.write(`Log in with an admin or read-only token${local}.\n`);
  const program = ctx.values.print === true ? undefined : opener(ctx.io.env);
  if (program) {
    const { spawn } = await import("node:child_process");
    const child = spawn(program, [url], { detached: true, stdio: "ignore" });
    child.on("error", () => ctx.io.stderr.write(`could not run ${program}; open the URL yourself\n`));
    child.unref();
  }
  return EXIT.ok;
}

/** `weft dashboard`. */
export const command: Command = {
  name: "dashboard",
  usage: ["dashboard [--print]"],
  description: `Opens the dashboard the control plane serves (overview, topology, a page per service,
freshness and the audit log, a live tap) in the browser, and prints its URL. On a machine
without a desktop it only prints the URL.`,
  options: { print: { type: "boolean", description: "only print the URL" } },
  examples: [["weft dashboard", "Open the local mesh's dashboard"]],
  run,
};
