/** The config model of SPEC.md section 3: zod schemas, their types, durations and validation. */
export * from "./schema.ts";
export { DURATION_PATTERN, durationMs, formatDuration, parseDuration } from "./duration.ts";
export type { DurationResult } from "./duration.ts";
export { issuesOf, referenceIssues, validate } from "./validate.ts";
export type { Validated } from "./validate.ts";
