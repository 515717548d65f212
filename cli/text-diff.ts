/**
 * A line diff in the unified format (`diff -u`, `kubectl diff`), for `weft diff`: the longest
 * common subsequence of lines, then hunks with three lines of context.
 */

/** Lines of context around each change, as `diff -u` prints by default. */
export const DEFAULT_CONTEXT_LINES = 3;

type Edit = { op: " " | "-" | "+"; line: string };

/** The edit script from `a` to `b` (longest common subsequence; resources are small). */
export function lineEdits(a: string[], b: string[]): Edit[] {
  const n = a.length;
  const m = b.length;
  // lengths[i][j]: LCS length of a[i..] and b[j..].
  const lengths: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lengths[i]![j] = a[i] === b[j] ? lengths[i + 1]![j + 1]! + 1 : Math.max(lengths[i + 1]![j]!, lengths[i]![j + 1]!);
    }
  }
  const edits: Edit[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      edits.push({ op: " ", line: a[i]! });
      i++;
      j++;
    } else if (lengths[i + 1]![j]! >= lengths[i]![j + 1]!) edits.push({ op: "-", line: a[i++]! });
    else edits.push({ op: "+", line: b[j++]! });
  }
  while (i < n) edits.push({ op: "-", line: a[i++]! });
  while (j < m) edits.push({ op: "+", line: b[j++]! });
  return edits;
}

/** How to print a diff: labels for the two sides, context lines, colours. */
export interface DiffOptions {
  from: string;
  to: string;
  context?: number;
  paint?: { removed(text: string): string; added(text: string): string; hunk(text: string): string };
}

/** A unified diff of `before` and `after` (texts ending in newlines); "" when they are equal. */
export function unifiedDiff(before: string, after: string, options: DiffOptions): string {
  if (before === after) return "";
  const split = (text: string) => (text === "" ? [] : text.replace(/\n$/, "").split("\n"));
  const edits = lineEdits(split(before), split(after));
  const context = options.context ?? DEFAULT_CONTEXT_LINES;
  const paint = options.paint ?? { removed: (t: string) => t, added: (t: string) => t, hunk: (t: string) => t };
  const out = [paint.removed(`--- ${options.from}`), paint.added(`+++ ${options.to}`)];

  const changed = edits.map((e, k) => (e.op === " " ? -1 : k)).filter((k) => k >= 0);
  let k = 0;
  while (k < changed.length) {
    // Grow a hunk while the next change is within 2 × context lines of this one.
    let end = k;
    while (end + 1 < changed.length && changed[end + 1]! - changed[end]! <= 2 * context) end++;
    const start = Math.max(0, changed[k]! - context);
    const stop = Math.min(edits.length, changed[end]! + context + 1);
    let aLine = 1;
    let bLine = 1;
    for (let e = 0; e < start; e++) {
      if (edits[e]!.op !== "+") aLine++;
      if (edits[e]!.op !== "-") bLine++;
    }
    const slice = edits.slice(start, stop);
    const aCount = slice.filter((e) => e.op !== "+").length;
    const bCount = slice.filter((e) => e.op !== "-").length;
    // `diff -u` numbers an empty side by the line before it.
    out.push(paint.hunk(`@@ -${aCount ? aLine : aLine - 1},${aCount} +${bCount ? bLine : bLine - 1},${bCount} @@`));
    for (const e of slice) {
      const text = `${e.op}${e.line}`;
      out.push(e.op === "-" ? paint.removed(text) : e.op === "+" ? paint.added(text) : text);
    }
    k = end + 1;
  }
  return out.join("\n") + "\n";
}
