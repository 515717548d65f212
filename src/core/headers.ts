/**
 * A light header map for the stack's own requests and responses: the `MeshHeaders` part of
 * Web `Headers` over one flat array, so a host that parsed headers from the wire hands them on
 * without building a `Headers`, and writes them out again in one call.
 */
import type { MeshHeaders } from "./fetch.ts";

/**
 * Headers as a flat `[name, value, name, value, ...]` array with lower-case names, in the order
 * they came. A lookup is a scan: a request has a dozen headers or so, where a scan beats a
 * hash. Values are kept as given; the host that parsed them has already refused invalid ones
 * (llhttp), and a Worker's `Headers` validates its own.
 */
export class HeaderList implements MeshHeaders {
  /** The flat array itself: hosts read it to write the headers out (names lower-case). */
  readonly flat: string[];

  /** `flat` is taken as it is: names must already be lower-case. */
  constructor(flat: string[] = []) {
    this.flat = flat;
  }

  /** A copy of `headers` (a `HeaderList`, a Web `Headers`, or any `MeshHeaders`). */
  static from(headers: MeshHeaders): HeaderList {
    if (headers instanceof HeaderList) return new HeaderList(headers.flat.slice());
    const flat: string[] = [];
    headers.forEach((value, name) => flat.push(name, value));
    return new HeaderList(flat);
  }

  get(name: string): string | null {
    const key = lower(name);
    const flat = this.flat;
    let found: string | null = null;
    for (let i = 0; i < flat.length; i += 2) {
      if (flat[i] === key) found = found === null ? flat[i + 1]! : `${found}, ${flat[i + 1]!}`;
    }
    return found;
  }

  has(name: string): boolean {
    const key = lower(name);
    const flat = this.flat;
    for (let i = 0; i < flat.length; i += 2) if (flat[i] === key) return true;
    return false;
  }

  set(name: string, value: string): void {
    const key = lower(name);
    const flat = this.flat;
    let at = -1;
    for (let i = 0; i < flat.length; i += 2) {
      if (flat[i] !== key) continue;
      if (at < 0) {
        at = i;
        flat[i + 1] = value;
      } else {
        flat.splice(i, 2);
        i -= 2;
      }
    }
    if (at < 0) flat.push(key, value);
  }

  append(name: string, value: string): void {
    this.flat.push(lower(name), value);
  }

  delete(name: string): void {
    const key = lower(name);
    const flat = this.flat;
    for (let i = 0; i < flat.length; i += 2) {
      if (flat[i] === key) {
        flat.splice(i, 2);
        i -= 2;
      }
    }
  }

  forEach(callback: (value: string, name: string) => void): void {
    const flat = this.flat;
    for (let i = 0; i < flat.length; i += 2) callback(flat[i + 1]!, flat[i]!);
  }

  /** Name-value pairs, as `Headers` iterates (but unsorted, and repeated names not joined). */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    const flat = this.flat;
    for (let i = 0; i < flat.length; i += 2) yield [flat[i]!, flat[i + 1]!];
  }
}

/** `name` in lower case; most names already are, and then no string is made. */
function lower(name: string): string {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return name.toLowerCase();
  }
  return name;
}

/** The headers of any `MeshHeaders` as a flat array with lower-case names (a `HeaderList`'s own array as it is). */
export function flatHeaders(headers: MeshHeaders): string[] {
  if (headers instanceof HeaderList) return headers.flat;
  const flat: string[] = [];
  headers.forEach((value, name) => flat.push(name, value));
  return flat;
}
