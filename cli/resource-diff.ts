/**
 * What applying some documents would change: each document beside its live resource, both
 * read through the schema (so defaults written or left out compare equal), as YAML with keys
 * in one order, and the line diff between them.
 */
import { stringify } from "yaml";
import { ResourceSchema, validate } from "../src/core/config/index.ts";
import type { ControlApi, StoredResource } from "./control-api.ts";
import { kindInfo } from "./kinds.ts";
import type { Style } from "./output.ts";
import type { LoadedResource } from "./resource-files.ts";
import { unifiedDiff } from "./text-diff.ts";

/** What applying one document would do. */
export interface Change {
  loaded: LoadedResource;
  /** `service/orders`. */
  ref: string;
  action: "create" | "change" | "unchanged";
  live: StoredResource | undefined;
  /** The unified diff, "" when unchanged. */
  diff: string;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * `value` with `kind` and `name` first and undefined fields dropped; other keys keep their
 * order, which is the schema's for both sides, since both were read through it.
 */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (!isRecord(value)) return value;
  const rank = (k: string) => (k === "kind" ? 0 : k === "name" ? 1 : 2);
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort((a, b) => rank(a) - rank(b));
  return Object.fromEntries(keys.map((k) => [k, canonical(value[k])]));
}

/**
 * The live resource as a document comparable with a file's: its `version` (bookkeeping, not
 * config) left out, read through the schema so stored defaults match. Fields the schema does
 * not know (added by a newer control plane) are kept, so they show in the diff.
 */
function comparableLive(kind: LoadedResource["resource"]["kind"], live: StoredResource): unknown {
  const { version: _version, kind: _kind, ...fields } = live;
  const result = validate(ResourceSchema, { kind, ...fields });
  return result.ok ? result.value : { kind, ...fields };
}

function comparableDesired(resource: LoadedResource["resource"]): unknown {
  const { version: _version, ...fields } = resource;
  return fields;
}

/** `document` as the YAML both sides of a diff use. */
export function diffText(document: unknown): string {
  return stringify(canonical(document), { lineWidth: 0 });
}

/** Compares every loaded document with what the control API holds now. */
export async function plan(api: ControlApi, loaded: LoadedResource[], style: Style): Promise<Change[]> {
  const lives = await Promise.all(loaded.map((l) => api.get(kindInfo(l.resource.kind), l.resource.name)));
  return loaded.map((l, i) => {
    const live = lives[i];
    const kind = kindInfo(l.resource.kind);
    const ref = `${kind.singular}/${l.resource.name}`;
    const before = live ? diffText(comparableLive(l.resource.kind, live)) : "";
    const after = diffText(comparableDesired(l.resource));
    const diff = unifiedDiff(before, after, {
      from: live ? `${ref} (live${live.version === undefined ? "" : `, version ${live.version}`})` : `${ref} (does not exist)`,
      to: `${ref} (${l.source.file}, document ${l.source.index + 1})`,
      paint: { removed: style.red, added: style.green, hunk: style.cyan },
    });
    return { loaded: l, ref, live, diff, action: live === undefined ? "create" : diff === "" ? "unchanged" : "change" };
  });
}
