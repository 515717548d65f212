/**
 * Resource files for `weft apply` and `weft diff`: YAML or JSON, several documents per file
 * (or a list of them), read from files, folders or standard input, checked against the config
 * schemas before anything is sent. Every problem is reported at once with its file, line,
 * document and field path, as `kubectl apply` does with strict field validation.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import type { Document as YamlDocument, Node as YamlNode } from "yaml";
import { isMap, isNode, isSeq, LineCounter, parseAllDocuments } from "yaml";
import type { Resource } from "../src/core/config/index.ts";
import { ResourceSchema, validate } from "../src/core/config/index.ts";
import type { Context, OptionSpec } from "./command.ts";
import { CliError, UsageError } from "./command.ts";
import { fieldPath } from "./output.ts";

/** Where a document came from: its file, its place in the file, and a way to find a field's line. */
export interface SourceDocument {
  /** The file as given, relative to the working folder, or `-` for standard input. */
  file: string;
  /** The document's place in its file, from 0. */
  index: number;
  value: unknown;
  /**
   * The line and column, from 1, of the value at `path` (or of its nearest ancestor); with
   * `key`, of the field's name instead, for a field that should not be there.
   */
  locate(path: readonly (string | number)[], options?: { key?: boolean }): { line: number; column: number } | undefined;
}

/** One problem in the files: where it is and what is wrong. */
export interface Problem {
  file: string;
  /** The document's place in its file, from 0; undefined for a problem with the whole file. */
  index: number | undefined;
  line: number | undefined;
  column: number | undefined;
  /** `Service "orders"`, when the document names itself. */
  label: string | undefined;
  path: (string | number)[];
  message: string;
}

/** A checked document: the resource as the schema read it (defaults filled), and as written. */
export interface LoadedResource {
  source: SourceDocument;
  /** The document as written, sent to the control API (which fills defaults itself). */
  written: Record<string, unknown> & { kind: Resource["kind"]; name: string };
  /** The document after the schema: defaults filled, for comparing with what is live. */
  resource: Resource;
}

/** What `readResources` needs besides the paths. */
export interface ReadOptions {
  cwd: string;
  /** Read folders' subfolders too (`-R`). */
  recursive?: boolean;
  readStdin(): Promise<string>;
}

const KINDS = ["Service", "Route", "AuthorizationPolicy", "ExternalService", "Tracing"] as const;
const EXTENSIONS = /\.(ya?ml|json)$/i;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

function labelOf(value: unknown): string | undefined {
  if (!isRecord(value)) return undefined;
  const kind = typeof value.kind === "string" ? value.kind : undefined;
  const name = typeof value.name === "string" ? JSON.stringify(value.name) : undefined;
  return kind && name ? `${kind} ${name}` : (kind ?? (name ? `name ${name}` : undefined));
}

/** The files `path` names: itself, or a folder's YAML and JSON files in name order. */
async function filesOf(path: string, recursive: boolean): Promise<string[]> {
  const info = await stat(path);
  if (!info.isDirectory()) return [path];
  const entries = await readdir(path, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith(".")) continue;
    const full = join(path, entry.name);
    if (entry.isDirectory() && recursive) files.push(...(await filesOf(full, true)));
    else if (entry.isFile() && EXTENSIONS.test(entry.name)) files.push(full);
  }
  return files;
}

/** The node at `path` in a YAML document, or its nearest ancestor that exists (`exact` false). */
function nodeAt(doc: YamlDocument, path: readonly (string | number)[]): { node: YamlNode | undefined; exact: boolean } {
  let node: unknown = doc.contents;
  let found = isNode(node) ? node : undefined;
  let depth = 0;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isNode(p.key) ? (p.key as { value?: unknown }).value : p.key) === key);
      if (!pair) break;
      node = pair.value;
      // A key with no value still has a place: the key's own.
      found = isNode(pair.value) ? pair.value : isNode(pair.key) ? pair.key : found;
    } else if (isSeq(node) && typeof key === "number") {
      node = node.items[key];
      if (!isNode(node)) break;
      found = node;
    } else break;
    depth++;
  }
  return { node: found, exact: depth === path.length };
}

/** The key node of `key` in the map at `path`, for pointing at a field itself. */
function keyNodeAt(doc: YamlDocument, path: readonly (string | number)[], key: string): YamlNode | undefined {
  const { node: map, exact } = nodeAt(doc, path);
  if (!exact || !isMap(map)) return undefined;
  const pair = map.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === key);
  return pair && isNode(pair.key) ? pair.key : undefined;
}

/** Parses one file's text into documents; a list at the top of a document is several documents. */
function parseSource(file: string, text: string): { documents: SourceDocument[]; problems: Problem[] } {
  const lines = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const documents: SourceDocument[] = [];
  const problems: Problem[] = [];
  if (!Array.isArray(parsed)) return { documents, problems };
  let index = 0;
  for (const doc of parsed) {
    const position = (node: YamlNode | undefined) => {
      const start = node?.range?.[0];
      if (start === undefined) return undefined;
      const pos = lines.linePos(start);
      return { line: pos.line, column: pos.col };
    };
    if (doc.errors.length) {
      for (const error of doc.errors) {
        const pos = error.linePos?.[0];
        problems.push({ file, index, line: pos?.line, column: pos?.col, label: undefined, path: [], message: `not valid YAML or JSON: ${error.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}` });
      }
      index++;
      continue;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    const items = Array.isArray(value) ? value : [value];
    items.forEach((item, i) => {
      const prefix = Array.isArray(value) ? [i] : [];
      documents.push({
        file,
        index: index++,
        value: item,
        locate(path, options) {
          const last = path[path.length - 1];
          if (options?.key && typeof last === "string") {
            const key = keyNodeAt(doc, [...prefix, ...path.slice(0, -1)], last);
            if (key) return position(key);
          }
          return position(nodeAt(doc, [...prefix, ...path]).node);
        },
      });
    });
  }
  return { documents, problems };
}

/** Reads every document from `paths` (files, folders, or `-` for standard input). */
export async function readSources(paths: string[], options: ReadOptions): Promise<{ documents: SourceDocument[]; problems: Problem[]; files: string[] }> {
  const files: string[] = [];
  const documents: SourceDocument[] = [];
  const problems: Problem[] = [];
  const fileProblem = (file: string, message: string) => void problems.push({ file, index: undefined, line: undefined, column: undefined, label: undefined, path: [], message });
  for (const path of paths) {
    files.push(path);
    if (path === "-") {
      const result = parseSource("-", await options.readStdin());
      documents.push(...result.documents);
      problems.push(...result.problems);
      continue;
    }
    const absolute = resolve(options.cwd, path);
    let found: string[];
    try {
      found = await filesOf(absolute, options.recursive ?? false);
    } catch (error) {
      fileProblem(path, `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      continue;
    }
    if (found.length === 0) fileProblem(path, "no .yaml, .yml or .json files in this folder");
    for (const full of found) {
      const shown = relative(options.cwd, full) || full;
      files.push(shown);
      let text: string;
      try {
        text = await readFile(full, "utf8");
      } catch (error) {
        fileProblem(shown, `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        continue;
      }
      const result = parseSource(shown, text);
      if (result.documents.length === 0 && result.problems.length === 0) fileProblem(shown, "holds no documents");
      documents.push(...result.documents);
      problems.push(...result.problems);
    }
  }
  return { documents, problems, files };
}

/** zod reports unknown fields on their object; this reports each on the field itself. */
function splitUnknownKeys(path: (string | number)[], message: string): { path: (string | number)[]; message: string; key?: boolean }[] {
  const match = /^Unrecognized keys?: (.*)$/.exec(message);
  if (!match) return [{ path, message }];
  const keys = [...match[1]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
  if (keys.length === 0) return [{ path, message }];
  return keys.map((key) => ({ path: [...path, key], message: "unknown field (misspelt, or not in this kind: see docs/cli.md)", key: true }));
}

/** Checks each document against the resource schema and the set for duplicate names. */
export function checkDocuments(documents: SourceDocument[]): { resources: LoadedResource[]; problems: Problem[] } {
  const resources: LoadedResource[] = [];
  const problems: Problem[] = [];
  const seen = new Map<string, SourceDocument>();
  for (const source of documents) {
    const label = labelOf(source.value);
    const problem = (path: (string | number)[], message: string, key = false) => {
      const at = source.locate(path, { key });
      problems.push({ file: source.file, index: source.index, line: at?.line, column: at?.column, label, path, message });
    };
    const value = source.value;
    if (!isRecord(value)) {
      problem([], "a document must be a mapping with a kind (Service, Route, AuthorizationPolicy, ExternalService or Tracing)");
      continue;
    }
    if (!KINDS.includes(value.kind as (typeof KINDS)[number])) {
      problem(["kind"], value.kind === undefined ? `missing: one of ${KINDS.join(", ")}` : `must be one of ${KINDS.join(", ")} (got ${JSON.stringify(value.kind)})`);
      continue;
    }
    const result = validate(ResourceSchema, value);
    if (!result.ok) {
      // One problem per field: a second issue on the same field (a bad duration is also "not at most 24h") is noise.
      const reported = new Set<string>();
      for (const issue of result.issues) {
        for (const split of splitUnknownKeys(issue.path, issue.message)) {
          const key = JSON.stringify(split.path);
          if (reported.has(key)) continue;
          reported.add(key);
          problem(split.path, split.message, split.key);
        }
      }
      continue;
    }
    const key = `${result.value.kind}/${result.value.name}`;
    const first = seen.get(key);
    if (first) {
      problem(["name"], `${result.value.kind} "${result.value.name}" is defined twice (also in ${first.file}, document ${first.index + 1})`);
      continue;
    }
    seen.set(key, source);
    resources.push({ source, written: value as LoadedResource["written"], resource: result.value });
  }
  return { resources, problems };
}

/** Reads and checks the resources in `paths`: every problem found, or the resources. */
export async function loadResources(paths: string[], options: ReadOptions): Promise<{ resources: LoadedResource[]; problems: Problem[] }> {
  const read = await readSources(paths, options);
  const checked = checkDocuments(read.documents);
  // In the order the files were read, then by document and line, whichever step found them.
  const order = new Map<string, number>();
  for (const file of read.files) if (!order.has(file)) order.set(file, order.size);
  const problems = [...read.problems, ...checked.problems].sort(
    (a, b) => (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) || (a.index ?? -1) - (b.index ?? -1) || (a.line ?? 0) - (b.line ?? 0),
  );
  return { resources: checked.resources, problems };
}

/**
 * Problems the control API found in a `POST /v1/apply` body, placed back in the files: a path
 * `["resources", i, ...field]` (or `[i, ...]`) names the i-th document sent, and
 * `[Kind, name, ...field]` (a check across resources) names a document by kind and name.
 * Other paths (about resources not in the files) are kept as they are.
 */
export function placeApiIssues(issues: { path: (string | number)[]; message: string }[], sent: LoadedResource[]): Problem[] {
  return issues.map((issue) => {
    const [head, second, ...rest] = issue.path;
    let target: LoadedResource | undefined;
    let path: (string | number)[] = issue.path;
    if (typeof head === "number") {
      target = sent[head];
      path = issue.path.slice(1);
    } else if (head === "resources" && typeof second === "number") {
      target = sent[second];
      path = rest;
    } else if (typeof head === "string" && typeof second === "string") {
      target = sent.find((l) => l.resource.kind === head && l.resource.name === second);
      path = rest;
    }
    if (!target) return { file: "(control API)", index: undefined, line: undefined, column: undefined, label: undefined, path: issue.path, message: issue.message };
    const at = target.source.locate(path);
    return { file: target.source.file, index: target.source.index, line: at?.line, column: at?.column, label: labelOf(target.written), path, message: issue.message };
  });
}

/** One line per problem: `file:line:col: document N (Kind "name"): field.path: message`. */
export function formatProblem(problem: Problem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}:${problem.column ?? 1}`;
  const doc = problem.index === undefined ? "" : ` document ${problem.index + 1}${problem.label ? ` (${problem.label})` : ""}:`;
  const field = problem.path.length ? ` ${fieldPath(problem.path)}:` : "";
  return `${where}:${doc}${field} ${problem.message}`;
}

/** The `-f` and `-R` flags of `weft apply` and `weft diff`. */
export const FILE_OPTIONS = {
  filename: { type: "string", short: "f", multiple: true, value: "FILE|DIR", description: "YAML or JSON file, a folder of them, or - for standard input" },
  recursive: { type: "boolean", short: "R", description: "read folders' subfolders too" },
} as const satisfies Record<string, OptionSpec>;

/**
 * The resources the `-f` flags of `ctx` name, checked; a `CliError` listing every problem
 * (with `verb` saying what did not happen) when there is any.
 */
export async function resourcesFromFlags(ctx: Context, verb: string): Promise<LoadedResource[]> {
  const paths = (ctx.values.filename as string[] | undefined) ?? [];
  if (paths.length === 0) throw new UsageError("give the resources with -f FILE|DIR (or -f - for standard input)");
  if (ctx.positionals.length) throw new UsageError(`unexpected argument "${ctx.positionals[0]}"; files go after -f`);
  const { resources, problems } = await loadResources(paths, { cwd: ctx.io.cwd, recursive: ctx.values.recursive === true, readStdin: ctx.io.readStdin });
  if (problems.length) throw problemsError(problems, verb);
  if (resources.length === 0) throw new CliError(`no resources in ${paths.join(", ")}`);
  return resources;
}

/** The error for `problems`, one line each, saying nothing was `verb`. */
export function problemsError(problems: Problem[], verb: string): CliError {
  const files = new Set(problems.map((p) => p.file)).size;
  return new CliError(`${problems.length} problem${problems.length === 1 ? "" : "s"} in ${files} file${files === 1 ? "" : "s"}; nothing was ${verb}`, {
    details: problems.map(formatProblem),
  });
}
