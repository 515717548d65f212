/** `weft apply`: creates or updates the resources in files, all or none, through `POST /v1/apply`. */
import type { Command, Context } from "../command.ts";
import { EXIT } from "../command.ts";
import { ControlError } from "../control-api.ts";
import { kindOf } from "../kinds.ts";
import { FILE_OPTIONS, placeApiIssues, problemsError, resourcesFromFlags } from "../resource-files.ts";

async function run(ctx: Context): Promise<number> {
  const loaded = await resourcesFromFlags(ctx, "applied");
  const api = await ctx.api();
  let applied;
  try {
    applied = await api.apply(loaded.map((l) => l.written));
  } catch (error) {
    // The control API checks what no file alone shows (a route's service exists); place its findings in the files.
    if (error instanceof ControlError && error.issues.length) throw problemsError(placeApiIssues(error.issues, loaded), "applied");
    throw error;
  }
  for (const result of applied.results) {
    const singular = kindOf(result.kind)?.singular ?? result.kind.toLowerCase();
    const paint = result.outcome === "unchanged" ? ctx.style.dim : result.outcome === "created" ? ctx.style.green : ctx.style.cyan;
    ctx.io.stdout.write(`${singular}/${result.name} ${paint(result.outcome)}\n`);
  }
  ctx.io.stderr.write(ctx.errStyle.dim(`config version ${applied.version}\n`));
  return EXIT.ok;
}

/** `weft apply`. */
export const command: Command = {
  name: "apply",
  usage: ["apply -f FILE|DIR [-f ...] [-R]"],
  description: `Creates or updates every resource in the files: YAML or JSON, several documents per
file (separated by ---, or a list), each with a kind (Service, Route or AuthorizationPolicy)
and the fields of the config model. Every document is checked first, and every problem is
reported with its file, line, document and field path; then all are applied at once through
the control API, all or none. Resources not in the files are left alone.`,
  options: FILE_OPTIONS,
  examples: [
    ["weft apply -f mesh.yaml", "Apply one file"],
    ["weft apply -f deploy/weft/", "Apply every .yaml, .yml and .json file in a folder"],
    ["weft get all -o yaml | weft apply -f -", "Read documents from standard input"],
  ],
  run,
};
