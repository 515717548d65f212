/** `weft get`: services, routes and authorization policies, as a table, YAML, JSON or names. */
import type { Command, Context } from "../command.ts";
import { CliError, EXIT, outputFormat, outputOption, UsageError } from "../command.ts";
import type { KindedResource, StoredResource } from "../control-api.ts";
import type { KindInfo } from "../kinds.ts";
import { KIND_WORDS, KINDS, kindOf } from "../kinds.ts";
import { json } from "../output.ts";
import { asDocument, resourceTable } from "../resource-view.ts";

const FORMATS = ["table", "yaml", "json", "name"] as const;

/** `KIND [NAME...]`, `KIND/NAME...` or `all`, as the kinds and names asked for. */
export function parseTargets(positionals: string[]): { kinds: readonly KindInfo[]; names: string[] } {
  const [first, ...rest] = positionals;
  if (first === undefined) throw new UsageError(`which kind? One of ${KIND_WORDS}, all`);
  if (first.toLowerCase() === "all") {
    if (rest.length) throw new UsageError("`weft get all` takes no names");
    return { kinds: KINDS, names: [] };
  }
  if (first.includes("/")) {
    const pairs = positionals.map((p) => {
      const [word, name, extra] = p.split("/");
      const kind = word === undefined ? undefined : kindOf(word);
      if (!kind || !name || extra !== undefined) throw new UsageError(`"${p}" is not KIND/NAME (kinds: ${KIND_WORDS})`);
      return { kind, name };
    });
    const kinds = [...new Set(pairs.map((p) => p.kind))];
    if (kinds.length > 1) throw new UsageError("give names of one kind at a time");
    return { kinds, names: pairs.map((p) => p.name) };
  }
  const kind = kindOf(first);
  if (!kind) throw new UsageError(`unknown kind "${first}"; one of ${KIND_WORDS}, all`);
  return { kinds: [kind], names: rest };
}

async function run(ctx: Context): Promise<number> {
  const format = outputFormat(ctx, FORMATS);
  const { kinds, names } = parseTargets(ctx.positionals);
  const api = await ctx.api();

  const found: { kind: KindInfo; resources: StoredResource[] }[] = [];
  const missing: string[] = [];
  for (const kind of kinds) {
    if (names.length === 0) {
      const resources = (await api.list(kind)).sort((a, b) => a.name.localeCompare(b.name));
      found.push({ kind, resources });
      continue;
    }
    const results = await Promise.all(names.map((name) => api.get(kind, name)));
    const resources: StoredResource[] = [];
    results.forEach((r, i) => (r ? resources.push(r) : missing.push(`${kind.singular} "${names[i]}" not found`)));
    found.push({ kind, resources });
  }

  const documents: KindedResource[] = found.flatMap(({ kind, resources }) => resources.map((r) => asDocument(kind, r)));
  if (format === "json") {
    // One name: the document itself; otherwise a list, which `weft apply -f` also reads.
    ctx.io.stdout.write(json(names.length === 1 && documents.length === 1 ? documents[0] : documents));
  } else if (format === "yaml") {
    if (documents.length) {
      const { stringify } = await import("yaml");
      ctx.io.stdout.write(documents.map((d) => stringify(d, { lineWidth: 0 })).join("---\n"));
    }
  } else if (format === "name") {
    for (const { kind, resources } of found) for (const r of resources) ctx.io.stdout.write(`${kind.singular}/${r.name}\n`);
  } else {
    const tables = found.filter((f) => f.resources.length > 0).map(({ kind, resources }) => (kinds.length > 1 ? ctx.style.bold(`${kind.path}:`) + "\n" : "") + resourceTable(kind, resources, ctx.style));
    ctx.io.stdout.write(tables.join("\n"));
    if (documents.length === 0 && missing.length === 0) ctx.io.stderr.write(`No ${kinds.length > 1 ? "resources" : kinds[0]!.path} found at ${api.connection.url}.\n`);
  }
  if (missing.length) throw new CliError(missing.join("; "));
  return EXIT.ok;
}

/** `weft get`. */
export const command: Command = {
  name: "get",
  usage: ["get KIND [NAME...] [-o table|yaml|json|name]", "get KIND/NAME... [-o ...]", "get all [-o ...]"],
  description: `Shows resources held by the control plane. KIND is one of ${KIND_WORDS}.
With -o yaml or -o json the output is documents with their kind and version, which
\`weft apply -f\` reads back; applying a document with a version fails if the resource
changed since (precondition-failed).`,
  options: { output: outputOption([...FORMATS]) },
  examples: [
    ["weft get services", "List every service"],
    ["weft get route web -o yaml", "One route as YAML"],
    ["weft get all -o yaml > mesh.yaml", "Everything, as files weft apply reads"],
  ],
  run,
};
