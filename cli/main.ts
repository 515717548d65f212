/**
 * The `weft` command line: finds the command in the table, parses its flags with
 * `node:util` `parseArgs`, runs it, and turns what it throws into a message and an exit code
 * (0 ok, 1 failure, 2 usage). Run directly (`node cli/main.ts ...`) it is the program itself.
 */
import { readFileSync, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { parseArgs } from "node:util";
import type { Command, Context, Io, Values } from "./command.ts";
import { CliError, commandHelp, EXIT, GLOBAL_OPTIONS, UsageError } from "./command.ts";
import { COMMANDS, findCommand } from "./commands/index.ts";
import { colourEnabled, createStyle } from "./output.ts";

const TOP_HELP_TAIL = `Run 'weft help COMMAND' or 'weft COMMAND --help' for a command's flags.

Environment:
  WEFT_CONTROL_URL   the control API (default http://127.0.0.1:8788, the local mesh)
  WEFT_TOKEN         the admin credential (default: .weft/admin-token, for the local mesh)
  WEFT_CONFIG        a config file: {"controlUrl": "...", "token": "..." or "tokenFile": "..."}
  NO_COLOR           no colours, even on a terminal

Exit codes: 0 success, 1 failure, 2 usage error.
`;

/** The help `weft`, `weft help` and `weft --help` print: the command table and global flags. */
export function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const flags = [
    ...Object.entries(GLOBAL_OPTIONS).map(([name, spec]) => [`${spec.short ? `-${spec.short}, ` : "    "}--${name}${spec.value ? ` ${spec.value}` : ""}`, spec.description] as const),
    ["    --version", "print weft's version"] as const,
  ];
  const flagWidth = Math.max(...flags.map(([f]) => f.length));
  return [
    "weft: operate a Weft service mesh",
    "",
    "Usage:",
    "  weft COMMAND [ARGS] [flags]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${"help".padEnd(width)}  help for a command`,
    "",
    "Global flags:",
    ...flags.map(([f, d]) => `  ${f.padEnd(flagWidth)}  ${d}`),
    "",
    TOP_HELP_TAIL,
  ].join("\n");
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The command a mistyped name most likely meant, if any is close. */
export function suggest(name: string): string | undefined {
  const names = [...COMMANDS.map((c) => c.name), "help"];
  const best = names.map((n) => [n, n.startsWith(name) ? 0 : distance(name, n)] as const).sort((a, b) => a[1] - b[1])[0];
  return best && best[1] <= 2 ? best[0] : undefined;
}

/** The index of the command word in `argv`: the first token that is not a global flag or its value. */
function commandIndex(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--") return i + 1 < argv.length ? i + 1 : -1;
    if (!token.startsWith("-") || token === "-") return i;
    const name = token.replace(/^--?/, "").split("=")[0]!;
    const spec = GLOBAL_OPTIONS[name] ?? Object.values(GLOBAL_OPTIONS).find((s) => s.short === name);
    if (spec?.type === "string" && !token.includes("=")) i++;
  }
  return -1;
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

function report(error: unknown, io: Io, commandName: string | undefined): number {
  const style = createStyle(colourEnabled(io.stderr, io.env, false));
  if (error instanceof CliError) {
    const lines = [`${style.red("weft:")} ${error.message}`, ...error.details.map((d) => `  ${d}`)];
    if (error.hint) lines.push(`${style.yellow("hint:")} ${error.hint}`);
    if (error instanceof UsageError) lines.push(`Run 'weft ${commandName ? `${commandName} ` : ""}--help' for usage.`);
    io.stderr.write(lines.join("\n") + "\n");
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  io.stderr.write(`${style.red("weft:")} internal error: ${message}\n`);
  if (io.env.WEFT_DEBUG && error instanceof Error && error.stack) io.stderr.write(error.stack + "\n");
  return EXIT.failure;
}

/** Builds what a command's `run` is given. */
function contextFor(command: Command, values: Values, positionals: string[], io: Io): Context {
  let connection: ReturnType<Context["connection"]> | undefined;
  let api: ReturnType<Context["api"]> | undefined;
  const noColor = values["no-color"] === true;
  const errStyle = createStyle(colourEnabled(io.stderr, io.env, noColor));
  const ctx: Context = {
    io,
    values,
    positionals,
    style: createStyle(colourEnabled(io.stdout, io.env, noColor)),
    errStyle,
    connection() {
      connection ??= import("./connection.ts").then(({ resolveConnection }) =>
        resolveConnection({
          flags: {
            controlUrl: values["control-url"] as string | undefined,
            // A command with its own --token (identity: the token to decode) takes the admin credential from elsewhere.
            token: "token" in command.options ? undefined : (values.token as string | undefined),
            config: values.config as string | undefined,
          },
          env: io.env,
          cwd: io.cwd,
          home: io.home,
        }),
      );
      return connection;
    },
    api() {
      api ??= (async () => {
        const [{ createControlApi }, resolved, timeoutMs] = await Promise.all([import("./control-api.ts"), ctx.connection(), requestTimeout(values)]);
        return createControlApi({ connection: resolved, fetch: io.fetch, timeoutMs, warn: (m) => io.stderr.write(`${errStyle.yellow("warning:")} ${m}\n`) });
      })();
      return api;
    },
  };
  return ctx;
}

async function requestTimeout(values: Values): Promise<number | undefined> {
  const text = values["request-timeout"];
  if (typeof text !== "string") return undefined;
  // The duration parser alone, not the config index: that would load zod (~150 ms of start-up).
  const { parseDuration } = await import("../src/core/config/duration.ts");
  const parsed = parseDuration(text);
  if (!parsed.ok || parsed.ms <= 0) throw new UsageError(`--request-timeout must be a duration such as "5s" or "500ms" (got "${text}")`);
  return parsed.ms;
}

/**
 * Runs `weft` with `argv` (the arguments after the program name) and answers the exit code.
 * Never throws: every failure is reported on `io.stderr`.
 */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const at = commandIndex(argv);
  const name = at === -1 ? undefined : argv[at]!;
  const rest = at === -1 ? argv : [...argv.slice(0, at), ...argv.slice(at + 1)];
  try {
    if (name === undefined) {
      if (rest.includes("--version")) {
        io.stdout.write(`weft ${version()}\n`);
        return EXIT.ok;
      }
      const unknown = rest.find((t) => t.startsWith("-") && !["-h", "--help", "--no-color"].includes(t));
      if (unknown && !rest.some((t) => t === "-h" || t === "--help")) throw new UsageError(`${unknown} needs a command after it`);
      io.stdout.write(topHelp());
      return EXIT.ok;
    }
    if (name === "help") {
      const topic = rest.find((t) => !t.startsWith("-"));
      if (topic === undefined) {
        io.stdout.write(topHelp());
        return EXIT.ok;
      }
      const entry = findCommand(topic);
      if (!entry) throw unknownCommand(topic);
      io.stdout.write(commandHelp(await entry.load(), entry.summary));
      return EXIT.ok;
    }
    if (name === "version") {
      io.stdout.write(`weft ${version()}\n`);
      return EXIT.ok;
    }
    const entry = findCommand(name);
    if (!entry) throw unknownCommand(name);
    const command = await entry.load();
    let parsed: { values: Values; positionals: string[] };
    try {
      parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true }) as typeof parsed;
    } catch (error) {
      throw new UsageError(parseError(error));
    }
    if (parsed.values.help) {
      io.stdout.write(commandHelp(command, entry.summary));
      return EXIT.ok;
    }
    return await command.run(contextFor(command, parsed.values, parsed.positionals, io));
  } catch (error) {
    return report(error, io, name !== undefined && findCommand(name) ? name : undefined);
  }
}

function unknownCommand(name: string): UsageError {
  const guess = suggest(name);
  return new UsageError(`unknown command "${name}"${guess ? `; did you mean "${guess}"?` : ""}`);
}

/** `parseArgs`'s message, shortened to what a person needs. */
function parseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\. To specify a positional argument starting with a '-'.*$/s, "");
}

/** The `Io` of the running process: its streams, environment, folder, `fetch` and Ctrl-C. */
export function processIo(): Io {
  const controller = new AbortController();
  // Ctrl-C (or a SIGTERM from a supervisor) aborts the signal; a command that watches it
  // (`stat --watch`, `dev`, which stops workerd) gets up to 5 s to finish. A second Ctrl-C
  // exits at once, as a person pressing it twice expects.
  const stop = (code: number) => {
    if (controller.signal.aborted) process.exit(code);
    controller.abort();
    setTimeout(() => process.exit(code), 5_000).unref();
  };
  // Under cli/bin/weft.js on an older Node, Ctrl-C comes as the signal WEFT_INTERRUPT_SIGNAL
  // names (SIGUSR2): the wrapper gets a terminal's SIGINT too and passes it on, so this
  // process ignores its own copy and each Ctrl-C counts once. Not inherited by what it starts.
  const interrupt = process.env.WEFT_INTERRUPT_SIGNAL === "SIGUSR2" ? "SIGUSR2" : "SIGINT";
  delete process.env.WEFT_INTERRUPT_SIGNAL;
  if (interrupt !== "SIGINT") process.on("SIGINT", () => {});
  process.on(interrupt, () => stop(130));
  process.on("SIGTERM", () => stop(143));
  const stream = (s: NodeJS.WriteStream) => ({
    write: (text: string) => void s.write(text),
    get isTTY() {
      return s.isTTY === true;
    },
    get columns() {
      return s.columns;
    },
  });
  return {
    stdout: stream(process.stdout),
    stderr: stream(process.stderr),
    async readStdin() {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    },
    env: process.env,
    cwd: process.cwd(),
    home: homedir(),
    fetch: globalThis.fetch,
    signal: controller.signal,
    sleep: (ms, signal) =>
      new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        }
        signal.addEventListener("abort", done, { once: true });
      }),
    now: () => Date.now(),
  };
}

/** Runs `weft` as this process: arguments from `process.argv`, exit code to the shell. */
export async function run(): Promise<void> {
  // `weft get services | head` closes the pipe early: stop quietly, as other CLIs do.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
  });
  const code = await main(process.argv.slice(2));
  // Exit once output is flushed, without waiting for idle keep-alive sockets to close.
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.filename === safeRealpath(entry)) await run();

function safeRealpath(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}
