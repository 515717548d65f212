import { describe, expect, it } from "vitest";
import { lineEdits, unifiedDiff } from "./text-diff.ts";

describe("the unified diff", () => {
  it("is empty for equal texts", () => {
    expect(unifiedDiff("a\nb\n", "a\nb\n", { from: "a", to: "b" })).toBe("");
  });

  it("prints hunks with three lines of context, as diff -u does", () => {
    const before = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"].join("\n") + "\n";
    const after = ["1", "2", "3", "4", "five", "6", "7", "8", "9", "10", "11", "12", "13"].join("\n") + "\n";
    expect(unifiedDiff(before, after, { from: "live", to: "file" })).toBe(
      ["--- live", "+++ file", "@@ -2,7 +2,7 @@", " 2", " 3", " 4", "-5", "+five", " 6", " 7", " 8", "@@ -10,3 +10,4 @@", " 10", " 11", " 12", "+13", ""].join("\n"),
    );
  });

  it("shows a new resource as every line added", () => {
    expect(unifiedDiff("", "kind: Service\nname: a\n", { from: "none", to: "file" })).toBe("--- none\n+++ file\n@@ -0,0 +1,2 @@\n+kind: Service\n+name: a\n");
  });

  it("keeps every common line and changes only the rest", () => {
    const edits = lineEdits(["a", "b", "c", "d"], ["a", "x", "c", "d", "e"]);
    expect(edits.filter((e) => e.op === " ").map((e) => e.line)).toEqual(["a", "c", "d"]);
    expect(edits.filter((e) => e.op !== " ").map((e) => `${e.op}${e.line}`)).toEqual(["-b", "+x", "+e"]);
  });
});
