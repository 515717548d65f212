/** The `weft` command line as a library: run it, and the types a new command is built from. */
export { main, run, topHelp } from "./main.ts";
export { CliError, EXIT, GLOBAL_OPTIONS, UsageError, commandHelp, outputFormat, outputOption } from "./command.ts";
export type { Command, Context, Io, OptionSpec, Output, Values } from "./command.ts";
export { COMMANDS, findCommand } from "./commands/index.ts";
export type { CommandEntry } from "./commands/index.ts";
export { DEFAULT_CONTROL_URL, resolveConnection } from "./connection.ts";
export type { Connection, ConnectionInput } from "./connection.ts";
export { createControlApi } from "./control-api.ts";
export type { ControlApi, ControlApiOptions } from "./control-api.ts";
