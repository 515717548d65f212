/**
 * The sidecar's log: one JSON object per line on standard error, as container runtimes
 * collect it. Lines carry an event name and plain fields; never a token or a secret.
 */

/** How loud a line is. */
export type Level = "debug" | "info" | "warn" | "error";

/** Writes one log line. */
export type Log = (level: Level, event: string, fields?: Record<string, unknown>) => void;

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A log writing lines at `least` and above to `write` (standard error by default). */
export function createLog(least: Level = "info", write: (line: string) => void = (line) => process.stderr.write(line)): Log {
  return (level, event, fields = {}) => {
    if (ORDER[level] < ORDER[least]) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })}\n`);
  };
}

/** The message of an error, for a log field (never its stack, which may quote inputs). */
export function reason(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`.slice(0, 300);
  }
  return String(error).slice(0, 300);
}
