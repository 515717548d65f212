/**
 * Where the control API is and which admin credential to send it: flags first, then the
 * environment (`WEFT_CONTROL_URL`, `WEFT_TOKEN`), then the config file, then the local mesh's
 * defaults (`http://127.0.0.1:8788` and the `.weft/admin-token` it wrote, SPEC.md section 6),
 * as kubectl reads flags, then KUBECONFIG, then `~/.kube/config`. The local admin token goes
 * only to the URL the local mesh runs on, which `weft dev` writes beside it
 * (`.weft/control-url`; the default URL when that file is absent).
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { CliError, UsageError } from "./command.ts";

/** The local mesh's control API (SPEC.md section 9): what `npm start` serves. */
export const DEFAULT_CONTROL_URL = "http://127.0.0.1:8788";

/** The local mesh's admin credential, in its `.weft/` folder (SPEC.md section 6). */
export const ADMIN_TOKEN_FILE = "admin-token";

/** The URL the local mesh's control API runs on, written by `weft dev` beside `ADMIN_TOKEN_FILE`. */
export const CONTROL_URL_FILE = "control-url";

/** The config file read when neither `--config` nor `WEFT_CONFIG` names one (XDG base directories). */
export const DEFAULT_CONFIG_PATH = "weft/config.json";

/** Where the credential came from, for messages (the credential itself is never shown). */
export type TokenSource = "--token" | "WEFT_TOKEN" | "config file" | ".weft/admin-token" | "none";

/** The control API to talk to, and the admin credential for it. */
export interface Connection {
  /** The API's base URL, without a trailing slash. */
  url: string;
  /** The admin credential; never printed. */
  token: string | undefined;
  tokenSource: TokenSource;
  /** The `.weft/admin-token` file looked for or read, when the URL is the local mesh's. */
  adminTokenPath: string | undefined;
  /** The URL the local mesh found from the working folder runs on (`.weft/control-url`), when one is recorded. */
  localUrl?: string | undefined;
  /** The config file read, when one was. */
  configPath: string | undefined;
}

/** What `resolveConnection` reads. */
export interface ConnectionInput {
  /** `--control-url`, `--token`, `--config` (absent when not given). */
  flags: { controlUrl?: string | undefined; token?: string | undefined; config?: string | undefined };
  env: Record<string, string | undefined>;
  cwd: string;
  home: string;
}

/** The config file's fields; every one optional. */
interface ConfigFile {
  controlUrl?: string;
  token?: string;
  /** A file holding the token, relative to the config file's folder. */
  tokenFile?: string;
}

/** Whether `url` is the local mesh's control API: a loopback host on the default port. */
export function isLocalDefault(url: string): boolean {
  return isLocalMesh(url, DEFAULT_CONTROL_URL);
}

const LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"];

/**
 * Whether `url` is `local`, the loopback URL a local mesh runs on: same scheme and port, a
 * loopback host (any spelling), no path.
 */
export function isLocalMesh(url: string, local: string): boolean {
  const a = new URL(url);
  const b = new URL(local);
  const root = (u: URL) => u.pathname === "/" || u.pathname === "";
  return a.protocol === b.protocol && a.port === b.port && LOOPBACK_HOSTS.includes(a.hostname) && LOOPBACK_HOSTS.includes(b.hostname) && root(a) && root(b);
}

/** `text` as a control API base URL (http or https, no credentials, no query), or a usage error naming `from`. */
export function parseControlUrl(text: string, from: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${from} is not a URL: "${text.slice(0, 100)}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`${from} must be an http:// or https:// URL`);
  // A credential in the URL would end up in messages; the token has its own setting.
  if (url.username || url.password) throw new UsageError(`${from} must not hold a user name or password; give the credential as WEFT_TOKEN or --token`);
  if (url.search || url.hash) throw new UsageError(`${from} must not have a query or fragment`);
  return url.href.replace(/\/+$/, "");
}

/** Walks up from `start` to the first folder holding `.weft/`, answering that `.weft` path. */
export async function findWeftFolder(start: string): Promise<string | undefined> {
  const { stat } = await import("node:fs/promises");
  let dir = resolve(start);
  for (;;) {
    const candidate = join(dir, ".weft");
    try {
      if ((await stat(candidate)).isDirectory()) return candidate;
    } catch {
      // not here: keep walking up
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

async function readConfig(path: string, required: boolean): Promise<ConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CliError(`cannot read the config file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the text around the error, which may be the token.
    throw new CliError(`the config file ${path} is not valid JSON`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new CliError(`the config file ${path} must hold a JSON object`);
  const config = parsed as Record<string, unknown>;
  const known = new Set(["controlUrl", "token", "tokenFile"]);
  const problems: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    if (!known.has(key)) problems.push(`${key}: unknown setting (known: ${[...known].join(", ")})`);
    else if (typeof value !== "string" || value === "") problems.push(`${key}: must be a non-empty string`);
  }
  if (problems.length) throw new CliError(`the config file ${path} has ${problems.length} problem${problems.length === 1 ? "" : "s"}`, { details: problems });
  return config as ConfigFile;
}

async function readTokenFile(path: string): Promise<string | undefined> {
  try {
    const token = (await readFile(path, "utf8")).trim();
    return token === "" ? undefined : token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CliError(`cannot read the admin credential file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** Works out the control API URL and credential (see the module comment for the order). */
export async function resolveConnection(input: ConnectionInput): Promise<Connection> {
  const { flags, env, cwd, home } = input;
  const explicitConfig = flags.config ?? (env.WEFT_CONFIG || undefined);
  const configPath = explicitConfig
    ? resolve(cwd, explicitConfig)
    : join(env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(home, ".config"), DEFAULT_CONFIG_PATH);
  const config = await readConfig(configPath, explicitConfig !== undefined);

  const url =
    flags.controlUrl !== undefined
      ? parseControlUrl(flags.controlUrl, "--control-url")
      : env.WEFT_CONTROL_URL
        ? parseControlUrl(env.WEFT_CONTROL_URL, "WEFT_CONTROL_URL")
        : config?.controlUrl
          ? parseControlUrl(config.controlUrl, `controlUrl in ${configPath}`)
          : DEFAULT_CONTROL_URL;

  const base = { url, configPath: config ? configPath : undefined, adminTokenPath: undefined };
  if (flags.token !== undefined) {
    if (flags.token.trim() === "") throw new UsageError("--token is empty");
    return { ...base, token: flags.token.trim(), tokenSource: "--token" };
  }
  if (env.WEFT_TOKEN) return { ...base, token: env.WEFT_TOKEN.trim(), tokenSource: "WEFT_TOKEN" };
  if (config?.token) return { ...base, token: config.token.trim(), tokenSource: "config file" };
  if (config?.tokenFile) {
    const token = await readTokenFile(resolve(dirname(configPath), config.tokenFile));
    if (token) return { ...base, token, tokenSource: "config file" };
  }
  const folder = await findWeftFolder(cwd);
  const localUrl = folder ? await readLocalUrl(join(folder, CONTROL_URL_FILE)) : undefined;
  // The local admin token is for the local mesh alone: the URL it recorded, or else the default.
  if (localUrl !== undefined ? isLocalMesh(url, localUrl) : isLocalDefault(url)) {
    const adminTokenPath = folder ? join(folder, ADMIN_TOKEN_FILE) : undefined;
    const token = adminTokenPath ? await readTokenFile(adminTokenPath) : undefined;
    if (token) return { ...base, adminTokenPath, localUrl, token, tokenSource: ".weft/admin-token" };
    return { ...base, adminTokenPath, localUrl, token: undefined, tokenSource: "none" };
  }
  return { ...base, localUrl, token: undefined, tokenSource: "none" };
}

/**
 * The loopback URL recorded in `path`, or undefined when there is none: a file that is
 * missing, unreadable, or names anything but a loopback URL is ignored (and then the local
 * token goes only to the default URL, as before `weft dev` recorded one).
 */
async function readLocalUrl(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = (await readFile(path, "utf8")).trim();
  } catch {
    return undefined;
  }
  try {
    const url = new URL(text);
    if ((url.protocol !== "http:" && url.protocol !== "https:") || !LOOPBACK_HOSTS.includes(url.hostname)) return undefined;
    return url.href.replace(/\/+$/, "");
  } catch {
    return undefined;
  }
}

/** A hint on fixing a refused or missing credential, naming where the one sent came from. */
export function credentialHint(connection: Connection): string {
  switch (connection.tokenSource) {
    case "none":
      if (connection.localUrl !== undefined && !isLocalMesh(connection.url, connection.localUrl)) {
        return `the local mesh of this folder runs at ${connection.localUrl}: add --control-url ${connection.localUrl} (or set WEFT_CONTROL_URL) to use it, or set WEFT_TOKEN for ${connection.url}`;
      }
      return isLocalDefault(connection.url)
        ? "start the local mesh (npm start) from the project folder so it writes .weft/admin-token, or set WEFT_TOKEN"
        : `set WEFT_TOKEN (or --token, or "token" in the config file) to the admin credential of ${connection.url}`;
    case ".weft/admin-token":
      return `${connection.adminTokenPath} is not the admin credential of ${connection.url}; is another mesh running there? Set WEFT_TOKEN to override`;
    default:
      return `the credential from ${connection.tokenSource} is not accepted by ${connection.url}`;
  }
}
