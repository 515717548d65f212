/**
 * Writing a changed value back into the YAML document it was read from, node by node, so what
 * did not change keeps its comments, quoting, flow style and anchors (as `kubectl edit` and
 * kustomize keep them): only new or changed values get new nodes.
 */
import { isAlias, isMap, isNode, isScalar, isSeq } from "yaml";
import type { Document, Pair } from "yaml";

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/** Whether two plain values (what `toJS()` gives) are the same data. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => same(item, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && same(a[key], b[key]));
  }
  return false;
}

function keyText(pair: Pair): string {
  return String(isScalar(pair.key) ? pair.key.value : pair.key);
}

/** A `name` field, for matching list items that Kubernetes merges by name (containers, env, volumes). */
function nameOf(value: unknown): string | undefined {
  return isObject(value) && typeof value.name === "string" ? value.name : undefined;
}

/**
 * The node for `value`, reusing `node` (from `doc`) as far as the data allows: equal data keeps
 * the node untouched; a map keeps the pairs whose keys stay, in their places, and adds new
 * keys at its end; a sequence whose items all have distinct `name`s matches items by name,
 * any other by position; a scalar takes the new value in place, keeping its comments.
 */
export function updateNode(doc: Document, node: unknown, value: unknown): unknown {
  if (isNode(node) && same(node.toJS(doc), value)) return node;
  if (isAlias(node)) return doc.createNode(value);
  if (isMap(node) && isObject(value)) {
    for (const pair of [...node.items]) if (!Object.hasOwn(value, keyText(pair))) node.delete(pair.key);
    for (const [key, item] of Object.entries(value)) {
      const pair = node.items.find((p) => keyText(p) === key);
      if (pair) pair.value = updateNode(doc, pair.value, item);
      else node.items.push(doc.createPair(key, item));
    }
    return node;
  }
  if (isSeq(node) && Array.isArray(value)) {
    const old = node.items;
    let byName: Map<string, unknown> | undefined = new Map();
    for (const item of old) {
      const name = isNode(item) ? nameOf(item.toJS(doc)) : undefined;
      if (name === undefined || byName.has(name)) {
        byName = undefined;
        break;
      }
      byName.set(name, item);
    }
    const newNames = value.map(nameOf);
    if (newNames.some((n) => n === undefined) || new Set(newNames).size !== newNames.length) byName = undefined;
    node.items = value.map((item, i) => {
      const match = byName ? byName.get(nameOf(item)!) : old[i];
      return match === undefined ? doc.createNode(item) : updateNode(doc, match, item);
    });
    return node;
  }
  if (isScalar(node) && (value === null || typeof value !== "object")) {
    node.value = value;
    return node;
  }
  return doc.createNode(value);
}

/** Replaces `doc`'s contents with `value`, keeping every node whose data did not change. */
export function updateDocument(doc: Document, value: unknown): void {
  doc.contents = updateNode(doc, doc.contents, value) as Document["contents"];
}
