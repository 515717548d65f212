/**
 * The config's regular expressions in a linear-time dialect: RE2's syntax, checked when
 * config is applied and matched by RE2's automata (re2js, a pure-JavaScript port of RE2 that
 * runs wherever the core does), so no pattern and no input can make matching backtrack.
 */
import { RE2JS } from "re2js";

/** The longest regex source: Gateway API's `maxLength` for an HTTPRoute path match value. */
export const DEFAULT_MAX_REGEX_LENGTH = 1024;

/**
 * The largest compiled program (RE2's "program size", its count of automaton instructions,
 * a rough measure of the work per input character): Envoy's default
 * `re2.max_program_size.error_level`. Typical route patterns stay far below it (`/items/[0-9]+`
 * is 11, a UUID path 53); RE2 itself also caps a counted repetition at 1000.
 */
export const DEFAULT_MAX_REGEX_PROGRAM_SIZE = 100;

/** Limits on a regex, beyond RE2's own (repetition counts at most 1000, nesting depth). */
export interface RegexLimits {
  /** Longest source, in characters; default `DEFAULT_MAX_REGEX_LENGTH`. */
  maxLength?: number;
  /** Largest program size; default `DEFAULT_MAX_REGEX_PROGRAM_SIZE`. */
  maxProgramSize?: number;
}

/** Whether a source is a regex this dialect accepts, and if not, why, in words for the user. */
export type RegexCheck = { ok: true; programSize: number } | { ok: false; message: string };

/** Says whether the whole of a value matches; built once per pattern, called per request. */
export type ValueTest = (value: string) => boolean;

const LINEAR = "RE2 syntax, which matches in linear time";

/**
 * Checks `source` against RE2's syntax and `limits`; never throws. Refuses what RE2 refuses,
 * which includes everything that needs backtracking (backreferences, lookahead and
 * lookbehind, possessive quantifiers), with a message that names the construct.
 */
export function checkRegex(source: string, limits: RegexLimits = {}): RegexCheck {
  const maxLength = limits.maxLength ?? DEFAULT_MAX_REGEX_LENGTH;
  const maxProgramSize = limits.maxProgramSize ?? DEFAULT_MAX_REGEX_PROGRAM_SIZE;
  if (source.length > maxLength) return { ok: false, message: `must be at most ${maxLength} characters` };
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(source);
  } catch (error) {
    return { ok: false, message: `must be ${LINEAR}: ${unsupported(source) ?? reasonOf(error)}` };
  }
  const programSize = compiled.programSize();
  if (programSize > maxProgramSize) {
    return { ok: false, message: `is too complex: its RE2 program size is ${programSize}, the limit ${maxProgramSize} (Envoy's default); simplify it or split it over several matches` };
  }
  return { ok: true, programSize };
}

/**
 * Compiles `source` (which `checkRegex` accepted) into a test of whole values, as Gateway API
 * and Envoy's `safe_regex` match: the pattern must cover the value from start to end.
 * Patterns that are plain literals, or a literal then `.*`, become string comparisons (same
 * answers, a fraction of the cost: `npm run bench:regex`); the rest run on RE2's automata.
 * Throws the engine's error for a source RE2 refuses: validated config never has one.
 */
export function wholeMatch(source: string): ValueTest {
  const literal = literalOf(source);
  if (literal !== undefined) {
    const { text, rest } = literal;
    if (!rest) return (value) => value === text;
    // RE2's `.` matches anything but a newline, unless the pattern sets (?s).
    return (value) => value.startsWith(text) && value.indexOf("\n", text.length) === -1;
  }
  const compiled = RE2JS.compile(source);
  return (value) => compiled.testExact(value);
}

/** A clearer word than the parser's for the constructs users bring from JavaScript or PCRE. */
function unsupported(source: string): string | undefined {
  if (/\(\?<?[=!]/.test(source)) return "lookahead and lookbehind ((?=…), (?!…), (?<=…), (?<!…)) are not supported";
  if (/\\([1-9]|k<)/.test(source)) return "backreferences (\\1, \\k<name>) are not supported";
  if (/[*+?}][+]/.test(source)) return "possessive quantifiers (a++, a*+) are not supported";
  return undefined;
}

function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^error parsing regexp: /, "");
}

// RE2's metacharacters: outside them, a character stands for itself.
const META = new Set([..."\\.+*?()|[]{}^$"]);

/**
 * The literal a pattern spells, if it is one: characters that stand for themselves, or
 * punctuation escaped with `\`, optionally anchored with `^` and `$` (a whole match anyway),
 * and optionally ending in `.*` (`rest`). Undefined for anything else.
 */
function literalOf(source: string): { text: string; rest: boolean } | undefined {
  let body = source;
  if (body.startsWith("^")) body = body.slice(1);
  if (body.endsWith("$") && !body.endsWith("\\$")) body = body.slice(0, -1);
  let rest = false;
  if (body.endsWith(".*") && !body.endsWith("\\.*")) {
    rest = true;
    body = body.slice(0, -2);
  }
  let text = "";
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === "\\") {
      const next = body[i + 1];
      // Only escaped punctuation is a literal; `\d`, `\b`, `\x41`, `\Q` and the like are not.
      if (next === undefined || /[A-Za-z0-9]/.test(next) || next.charCodeAt(0) > 0x7e) return undefined;
      text += next;
      i++;
    } else if (META.has(c)) {
      return undefined;
    } else {
      text += c;
    }
  }
  return { text, rest };
}
