/** `weft delete`: removes a service, route or authorization policy. */
import type { Command, Context } from "../command.ts";
import { CliError, EXIT, UsageError } from "../command.ts";
import { KIND_WORDS } from "../kinds.ts";
import { parseTargets } from "./get.ts";

async function run(ctx: Context): Promise<number> {
  const [first] = ctx.positionals;
  if (first !== undefined && first.toLowerCase() === "all") throw new UsageError("`weft delete` takes KIND NAME, not all");
  const { kinds, names } = parseTargets(ctx.positionals);
  if (names.length === 0) throw new UsageError(`which ${kinds[0]?.singular ?? "resource"}? Give KIND NAME (kinds: ${KIND_WORDS})`);
  const kind = kinds[0]!;
  const api = await ctx.api();
  const missing: string[] = [];
  for (const name of names) {
    if (await api.remove(kind, name)) ctx.io.stdout.write(`${kind.singular}/${name} deleted\n`);
    else missing.push(`${kind.singular} "${name}" not found`);
  }
  if (missing.length && ctx.values["ignore-not-found"] !== true) throw new CliError(missing.join("; "));
  return EXIT.ok;
}

/** `weft delete`. */
export const command: Command = {
  name: "delete",
  usage: ["delete KIND NAME... [--ignore-not-found]", "delete KIND/NAME..."],
  description: `Deletes resources by kind and name. KIND is one of ${KIND_WORDS}. A name that
does not exist is an error (exit 1) unless --ignore-not-found is given.`,
  options: { "ignore-not-found": { type: "boolean", description: "succeed when the resource does not exist" } },
  examples: [
    ["weft delete route web-canary", "Delete a route"],
    ["weft delete policy/deny-all --ignore-not-found", "Delete if present"],
  ],
  run,
};
