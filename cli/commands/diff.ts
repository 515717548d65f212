/** `weft diff`: what `weft apply` would change, as a unified diff, changing nothing. */
import type { Command, Context } from "../command.ts";
import { EXIT } from "../command.ts";
import { plan } from "../resource-diff.ts";
import { FILE_OPTIONS, resourcesFromFlags } from "../resource-files.ts";

/** The exit code of `weft diff --exit-code` when applying would change something (1 and 2 mean failure and usage). */
export const CHANGES_EXIT_CODE = 3;

async function run(ctx: Context): Promise<number> {
  const loaded = await resourcesFromFlags(ctx, "compared");
  const changes = await plan(await ctx.api(), loaded, ctx.style);
  for (const change of changes) ctx.io.stdout.write(change.diff);
  const count = (action: string) => changes.filter((c) => c.action === action).length;
  const created = count("create");
  const changed = count("change");
  ctx.io.stderr.write(`${created} to create, ${changed} to change, ${count("unchanged")} unchanged.\n`);
  return ctx.values["exit-code"] === true && created + changed > 0 ? CHANGES_EXIT_CODE : EXIT.ok;
}

/** `weft diff`. */
export const command: Command = {
  name: "diff",
  usage: ["diff -f FILE|DIR [-f ...] [-R] [--exit-code]"],
  description: `Shows what \`weft apply\` with the same files would change, as a unified diff of each
resource (live, then as the files have it), without changing anything. Both sides are read
through the config schema, so a default written out or left out is no difference, and the
live version number is left out. A summary goes to standard error.`,
  options: {
    ...FILE_OPTIONS,
    "exit-code": { type: "boolean", description: `exit ${CHANGES_EXIT_CODE} when applying would change something, 0 when not` },
  },
  examples: [
    ["weft diff -f mesh.yaml", "What applying mesh.yaml would change"],
    ["weft diff -f deploy/weft/ --exit-code || echo drifted", "Detect drift in a script"],
  ],
  run,
};
