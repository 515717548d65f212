/**
 * Durations as config writes them (`"250ms"`, `"10s"`, `"1m"`, `"1h"`, SPEC.md section 3),
 * parsed into milliseconds. Kept free of zod so layers and hosts can use it anywhere.
 */

/** A duration string: a non-negative decimal number and a unit of ms, s, m or h. */
export const DURATION_PATTERN = /^(\d{1,9}(?:\.\d{1,3})?)(ms|s|m|h)$/;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** The result of parsing a duration: milliseconds, or why the text is not one. */
export type DurationResult = { ok: true; ms: number } | { ok: false; error: string };

/** Parses `"250ms"`, `"1.5s"`, `"10m"`, `"1h"` into milliseconds (rounded to whole ms). */
export function parseDuration(text: string): DurationResult {
  const match = DURATION_PATTERN.exec(text);
  if (!match) return { ok: false, error: `"${text.slice(0, 40)}" is not a duration such as "250ms", "10s", "1m" or "1h"` };
  const ms = Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
  return { ok: true, ms };
}

/**
 * Milliseconds of a duration the config schema has already checked. Throws on bad text, as
 * that can only be a bug: every duration reaching the data plane went through the schema.
 */
export function durationMs(text: string): number {
  const result = parseDuration(text);
  if (!result.ok) throw new TypeError(result.error);
  return result.ms;
}

/** Writes milliseconds back as the shortest exact duration string (`1500` → `"1500ms"`, `60000` → `"1m"`). */
export function formatDuration(ms: number): string {
  const whole = Math.max(0, Math.round(ms));
  if (whole !== 0 && whole % UNIT_MS.h === 0) return `${whole / UNIT_MS.h}h`;
  if (whole !== 0 && whole % UNIT_MS.m === 0) return `${whole / UNIT_MS.m}m`;
  if (whole !== 0 && whole % UNIT_MS.s === 0) return `${whole / UNIT_MS.s}s`;
  return `${whole}ms`;
}
