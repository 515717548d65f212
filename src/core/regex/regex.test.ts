import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_REGEX_LENGTH, DEFAULT_MAX_REGEX_PROGRAM_SIZE, checkRegex, wholeMatch } from "./index.ts";

describe("checkRegex", () => {
  it("accepts RE2 syntax and reports the program size", () => {
    const checked = checkRegex("/items/[0-9]+");
    expect(checked.ok).toBe(true);
    if (checked.ok) expect(checked.programSize).toBeGreaterThan(0);
    expect(checkRegex("(?i)/admin/(?P<page>[a-z]+)").ok).toBe(true);
  });

  it.each([
    ["(a)\\1", /backreferences/],
    ["(?<n>a)\\k<n>", /backreferences/],
    ["a(?=b)", /lookahead and lookbehind/],
    ["a(?!b)", /lookahead and lookbehind/],
    ["(?<=a)b", /lookahead and lookbehind/],
    ["(?<!a)b", /lookahead and lookbehind/],
    ["a*+", /possessive/],
    ["[a-", /missing closing \]/],
    ["\\cA", /invalid escape sequence/],
  ])("refuses %s with a message naming why", (source, why) => {
    const checked = checkRegex(source);
    expect(checked.ok).toBe(false);
    if (!checked.ok) {
      expect(checked.message).toMatch(/^must be RE2 syntax, which matches in linear time: /);
      expect(checked.message).toMatch(why);
    }
  });

  it("refuses sources over the length limit and programs over the size limit, each as configured", () => {
    expect(checkRegex("a".repeat(DEFAULT_MAX_REGEX_LENGTH)).ok).toBe(false); // within length, over size
    expect(checkRegex("a".repeat(DEFAULT_MAX_REGEX_LENGTH + 1))).toEqual({ ok: false, message: `must be at most ${DEFAULT_MAX_REGEX_LENGTH} characters` });
    expect(checkRegex("a".repeat(DEFAULT_MAX_REGEX_PROGRAM_SIZE - 10)).ok).toBe(true);
    expect(checkRegex("a".repeat(DEFAULT_MAX_REGEX_PROGRAM_SIZE + 10)).ok).toBe(false);
    expect(checkRegex("[a-z]{500}", { maxProgramSize: 1_000 }).ok).toBe(true);
    expect(checkRegex("abc", { maxLength: 2 }).ok).toBe(false);
  });
});

describe("wholeMatch", () => {
  it("matches the whole value only", () => {
    const test = wholeMatch("/items/[0-9]+");
    expect(test("/items/42")).toBe(true);
    expect(test("/items/42/x")).toBe(false);
    expect(test("/v1/items/42")).toBe(false);
  });

  it("answers as RE2 does for literals, literal prefixes and anchors, which skip the automaton", () => {
    const cases: [string, string, boolean][] = [
      ["/health", "/health", true],
      ["/health", "/healthz", false],
      ["^/health$", "/health", true],
      ["/static/.*", "/static/app.css", true],
      ["/static/.*", "/static/", true],
      ["/static/.*", "/static", false],
      ["/static/.*", "/static/a\nb", false], // `.` stops at a newline in RE2
      ["/v1\\.0/x", "/v1.0/x", true],
      ["/v1\\.0/x", "/v1x0/x", false],
      ["/a\\.*", "/a...", true], // an escaped dot repeated: not a literal prefix
      ["/a\\$", "/a$", true],
      ["/a\\d", "/a7", true], // a class escape, not a literal
      ["/é/.*", "/é/x", true],
    ];
    for (const [source, value, expected] of cases) expect(wholeMatch(source)(value), `${source} on ${JSON.stringify(value)}`).toBe(expected);
  });

  it("finishes the classic catastrophic patterns on 100,000-character inputs with the right answer", () => {
    const run = "a".repeat(100_000);
    for (const source of ["(a+)+$", "(a|aa)+", "(a|a?)+", "(.*a){20}", "^(\\w+\\s?)*$", "(x+x+)+y|a+"]) {
      const test = wholeMatch(source);
      expect(test(run), source).toBe(true);
      expect(test(`${run}!`), source).toBe(false);
    }
    expect(wholeMatch("/api/([a-z]+/?)+")(`/api/${run}!`)).toBe(false);
  });
});
