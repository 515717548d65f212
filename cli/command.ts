/**
 * What a `weft` command is: its flags, its help text and its `run`, plus what every command
 * is given (streams, environment, the connection to the control API) and the two errors a
 * command throws to end with a message: `CliError` (exit 1) and `UsageError` (exit 2).
 * Kept free of heavy imports: `weft --help` loads this and the command table, nothing else.
 */
import type { Connection } from "./connection.ts";
import type { ControlApi } from "./control-api.ts";
import type { Style } from "./output.ts";

/** Exit codes: success, a failure (the control API said no, a check failed), a usage error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A stream a command writes to. */
export interface Output {
  write(text: string): void;
  /** True when a person is reading: colour and screen redraws only then. */
  isTTY: boolean;
  columns?: number;
}

/**
 * Everything a command touches outside itself, so tests can run `main()` in-process with
 * their own streams, environment, working folder and `fetch`.
 */
export interface Io {
  stdout: Output;
  stderr: Output;
  /** The whole of standard input (for `-f -` and `--token -`). */
  readStdin(): Promise<string>;
  env: Record<string, string | undefined>;
  cwd: string;
  /** The user's home folder, where the default config file lives. */
  home: string;
  fetch: typeof fetch;
  /** Aborted on Ctrl-C; long-running commands (`stat --watch`) stop cleanly on it. */
  signal: AbortSignal;
  /** Waits `ms` or until `signal` aborts (injected so `--watch` is testable without real time). */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** Wall-clock milliseconds, for token expiry and report ages. */
  now(): number;
}

/** One flag of a command, as `node:util` `parseArgs` takes it, plus what help shows. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** The placeholder help shows for the value (`URL`, `FILE`). */
  value?: string;
  description: string;
}

/** Parsed flag values, by long name. */
export type Values = Record<string, string | boolean | string[] | undefined>;

/** What a command's `run` is given. */
export interface Context {
  io: Io;
  /** Flags after parsing (global and the command's own). */
  values: Values;
  positionals: string[];
  /** Colours for standard output (off unless it is a terminal; NO_COLOR honoured). */
  style: Style;
  /** Colours for standard error. */
  errStyle: Style;
  /** The control API URL and credential from flags, environment, config file or `.weft/`. */
  connection(): Promise<Connection>;
  /** The control API client over `connection()`. */
  api(): Promise<ControlApi>;
}

/** A `weft` sub-command: one module under `cli/commands/`, loaded only when it runs. */
export interface Command {
  name: string;
  /** Usage lines, each after `weft `: `get KIND [NAME] [flags]`. */
  usage: string[];
  /** What the command does, a short paragraph for its help. */
  description: string;
  /** The command's own flags; the global ones are added for it. */
  options: Record<string, OptionSpec>;
  /** Example invocations with a comment each: `["weft get services", "List every service"]`. */
  examples: [string, string][];
  run(ctx: Context): Promise<number>;
}

/** A failure to report to the user: `weft: <message>`, detail lines, a hint; exit 1 by default. */
export class CliError extends Error {
  readonly hint: string | undefined;
  readonly details: string[];
  readonly exitCode: number;

  constructor(message: string, options: { hint?: string; details?: string[]; exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CliError";
    this.hint = options.hint;
    this.details = options.details ?? [];
    this.exitCode = options.exitCode ?? EXIT.failure;
  }
}

/** A command line that does not make sense: reported with a pointer to help, exit 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: EXIT.usage });
    this.name = "UsageError";
  }
}

/** Flags every command takes: where the control API is, the credential, config, colour, help. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  "control-url": { type: "string", value: "URL", description: "control API URL (env WEFT_CONTROL_URL; default http://127.0.0.1:8788)" },
  token: { type: "string", value: "TOKEN", description: "admin credential (env WEFT_TOKEN; default .weft/admin-token for the local mesh)" },
  config: { type: "string", value: "FILE", description: "config file (env WEFT_CONFIG; default ~/.config/weft/config.json)" },
  "request-timeout": { type: "string", value: "DURATION", description: "give up on the control API after this long (default 10s)" },
  "no-color": { type: "boolean", description: "no colours (also: NO_COLOR set in the environment)" },
  help: { type: "boolean", short: "h", description: "show help" },
};

/** The `--output`/`-o` flag, spelled the same wherever a command offers formats. */
export function outputOption(formats: string[]): OptionSpec {
  return { type: "string", short: "o", value: "FORMAT", description: `output format: ${formats.join(", ")} (default ${formats[0]})` };
}

/** The `-o` value of `ctx`, checked against `formats` (the first is the default). */
export function outputFormat<F extends string>(ctx: Context, formats: readonly F[]): F {
  const value = ctx.values.output;
  if (value === undefined) return formats[0]!;
  if (typeof value === "string" && (formats as readonly string[]).includes(value)) return value as F;
  throw new UsageError(`--output must be one of ${formats.join(", ")} (got "${String(value)}")`);
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  const left = Object.entries(options).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : "    "}--${name}${spec.value ? ` ${spec.value}` : ""}`;
    return [flag, spec.description + (spec.multiple ? " (repeatable)" : "")] as const;
  });
  const width = Math.max(...left.map(([flag]) => flag.length));
  return left.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`);
}

/** The help text of `command`: usage, description, its flags, global flags, examples. */
export function commandHelp(command: Command, summary: string): string {
  const lines = [`weft ${command.name}: ${summary}`, "", "Usage:", ...command.usage.map((u) => `  weft ${u}`), "", command.description.trim(), ""];
  if (Object.keys(command.options).length) lines.push("Flags:", ...optionLines(command.options), "");
  const globals = Object.fromEntries(Object.entries(GLOBAL_OPTIONS).filter(([name]) => !(name in command.options)));
  lines.push("Global flags:", ...optionLines(globals), "");
  if (command.examples.length) {
    lines.push("Examples:");
    for (const [example, comment] of command.examples) lines.push(`  # ${comment}`, `  ${example}`, "");
  }
  return lines.join("\n");
}
