/**
 * The control API as the CLI uses it (SPEC.md section 6): one place that knows its paths and
 * the shapes of its answers, sends the admin credential, and turns transport failures and
 * `{"error": {...}}` bodies into errors people can act on.
 */
import { CliError } from "./command.ts";
import type { RouteStats } from "../src/core/metrics/index.ts";
import type { Connection } from "./connection.ts";
import { credentialHint, isLocalDefault, isLocalMesh } from "./connection.ts";
import type { KindInfo } from "./kinds.ts";

/** How long a control API call may take before the CLI gives up (kubectl's `--request-timeout` is unbounded; a CLI user wants an answer). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** One problem the control API found in a request body (SPEC.md section 2, `issues`). */
export interface ApiIssue {
  path: (string | number)[];
  message: string;
}

/** A `{"error": ...}` answer of the control API, with its status. */
export class ControlError extends CliError {
  readonly status: number;
  readonly code: string;
  readonly issues: ApiIssue[];

  constructor(status: number, code: string, message: string, issues: ApiIssue[], hint?: string) {
    super(message, hint === undefined ? {} : { hint });
    this.name = "ControlError";
    this.status = status;
    this.code = code;
    this.issues = issues;
  }
}

/** A resource as the control API stores it: the document's fields plus `version`. */
export type StoredResource = Record<string, unknown> & { name: string; version?: number };

/** A resource with its `kind`, as `weft get` prints it and `weft apply` reads it back. */
export type KindedResource = { kind: string } & StoredResource;

/** Golden metrics of one direction, service and route over the stats window (SPEC.md section 7). */
export type { RouteStats } from "../src/core/metrics/index.ts";

/**
 * A router or sidecar that pushed metrics with its config version within the last 10 minutes
 * (the control plane forgets a silent host after that, `DEFAULT_HOST_TTL_MS`).
 */
export interface Reporter {
  /** The pushing host: its identity (or `admin`), then the host name it gave. */
  host: string;
  configVersion: number;
}

/** `GET /v1/stats`: golden metrics per direction, service and route over the window. */
export interface StatsAnswer {
  windowSeconds: number;
  routes: RouteStats[];
}

/** One line of the audit log (`GET /v1/audit`). */
export interface AuditEntry {
  seq: number;
  /** ISO 8601 time of the change. */
  at: string;
  actor: string;
  action: string;
  changes: { kind: string; name: string; outcome: string }[];
  fromVersion: number;
  toVersion: number;
}

/** `GET /v1/snapshot`. */
export interface SnapshotAnswer {
  version: number;
  services: StoredResource[];
  routes: StoredResource[];
  policies: StoredResource[];
  jwks: { keys: Record<string, unknown>[] };
}

/** What `POST /v1/apply` did to one resource. */
export interface ApplyOutcome {
  kind: string;
  name: string;
  /** `created`, `updated` or `unchanged`. */
  outcome: string;
  /** The version the resource has now. */
  version: number;
}

/** The control API's calls the CLI makes. */
export interface ControlApi {
  readonly connection: Connection;
  list(kind: KindInfo): Promise<StoredResource[]>;
  /** The resource, or undefined when there is none of that name. */
  get(kind: KindInfo, name: string): Promise<StoredResource | undefined>;
  /** Deletes; false when there was none of that name. */
  remove(kind: KindInfo, name: string): Promise<boolean>;
  /** Applies every document, all or none, as one new version. */
  apply(documents: KindedResource[]): Promise<{ version: number; results: ApplyOutcome[] }>;
  snapshot(): Promise<SnapshotAnswer>;
  stats(): Promise<StatsAnswer>;
  /** Hosts that reported their config version recently, from `GET /metrics`. */
  reporters(): Promise<Reporter[]>;
  /** The whole audit log, oldest first (paged through `after`). */
  audit(): Promise<AuditEntry[]>;
  /** The public trust bundle; sent without the admin credential. */
  jwks(): Promise<{ keys: Record<string, unknown>[] }>;
  /** A raw call, for checks that look at status codes themselves. */
  call(method: string, path: string, options?: CallOptions): Promise<ApiResponse>;
}

/** Options of one raw control API call. */
export interface CallOptions {
  body?: unknown;
  /** Send the admin credential (default true). */
  auth?: boolean;
  /** The body holds a secret (a bootstrap secret): warn, as for the credential, before sending it over plain http. */
  secretBody?: boolean;
  headers?: Record<string, string>;
  /** Cancels the call (a long-poll the user stopped). */
  signal?: AbortSignal;
}

/** A control API answer: status, headers and the parsed JSON body (undefined when empty). */
export interface ApiResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

/** What `createControlApi` needs. */
export interface ControlApiOptions {
  connection: Connection;
  fetch: typeof fetch;
  timeoutMs?: number;
  /** Where to warn when the credential would cross the network unencrypted. */
  warn?: (message: string) => void;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** The message of a transport failure, without anything from the request (no credential ever). */
function transportReason(error: unknown): string {
  if (error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError")) return "no answer in time";
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  return (error as Error).message ?? String(error);
}

/** Reads an array out of an answer that may wrap it (`[..]`, `{items: [..]}`, `{services: [..]}`). */
function arrayIn(body: unknown, key: string): unknown[] {
  if (Array.isArray(body)) return body;
  if (isRecord(body)) {
    for (const k of [key, "items", "resources"]) if (Array.isArray(body[k])) return body[k] as unknown[];
  }
  throw new CliError(`the control API answered an unexpected shape (no list of ${key})`);
}

/** Reads one resource out of an answer that may wrap it (`{..}` or `{service: {..}}`). */
function resourceIn(body: unknown, kind: KindInfo): StoredResource {
  if (isRecord(body) && isRecord(body[kind.singular])) return body[kind.singular] as StoredResource;
  if (isRecord(body) && typeof body.name === "string") return body as StoredResource;
  throw new CliError(`the control API answered an unexpected shape for a ${kind.singular}`);
}

/** A client of the control API at `connection.url`. */
export function createControlApi(options: ControlApiOptions): ControlApi {
  const { connection, fetch } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  let warned = false;

  async function call(method: string, path: string, callOptions: CallOptions = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { accept: "application/json", ...callOptions.headers };
    const sendsToken = callOptions.auth !== false && connection.token !== undefined;
    if ((sendsToken || callOptions.secretBody) && !warned) {
      const url = new URL(connection.url);
      if (url.protocol === "http:" && !["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
        warned = true;
        options.warn?.(`sending a credential to ${url.host} over plain http; use https for a remote control plane`);
      }
    }
    if (sendsToken) headers.authorization = `Bearer ${connection.token}`;
    let body: string | undefined;
    if (callOptions.body !== undefined) {
      body = JSON.stringify(callOptions.body);
      headers["content-type"] = "application/json";
    }
    let response: Response;
    try {
      // No redirects: a control API does not redirect, and following one could carry the credential elsewhere.
      response = await fetch(`${connection.url}${path}`, { method, headers, body, redirect: "error", signal: callOptions.signal ? AbortSignal.any([AbortSignal.timeout(timeoutMs), callOptions.signal]) : AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      throw new CliError(`cannot reach the control API at ${connection.url} (${transportReason(error)})`, {
        hint:
          connection.localUrl !== undefined && !isLocalMesh(connection.url, connection.localUrl)
            ? `the local mesh of this folder last ran at ${connection.localUrl}: add --control-url ${connection.localUrl} (or set WEFT_CONTROL_URL)`
            : isLocalDefault(connection.url)
              ? "start the local mesh with `npm start`, or point WEFT_CONTROL_URL at your control plane"
              : "check WEFT_CONTROL_URL (or --control-url) and that the control plane is up",
      });
    }
    const text = await response.text();
    let parsed: unknown;
    if (text !== "") {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }

  /** The answer of `call`, or a `ControlError` for any status outside `ok`. */
  async function expect(method: string, path: string, ok: number[], callOptions?: CallOptions): Promise<ApiResponse> {
    const answer = await call(method, path, callOptions);
    if (ok.includes(answer.status)) return answer;
    throw errorOf(answer, connection);
  }

  return {
    connection,
    call,
    async list(kind) {
      const answer = await expect("GET", `/v1/${kind.path}`, [200]);
      return arrayIn(answer.body, kind.path) as StoredResource[];
    },
    async get(kind, name) {
      const answer = await expect("GET", `/v1/${kind.path}/${encodeURIComponent(name)}`, [200, 404]);
      if (answer.status === 404) return undefined;
      return resourceIn(answer.body, kind);
    },
    async remove(kind, name) {
      const answer = await expect("DELETE", `/v1/${kind.path}/${encodeURIComponent(name)}`, [200, 202, 204, 404]);
      return answer.status !== 404;
    },
    async apply(documents) {
      const answer = await expect("POST", "/v1/apply", [200], { body: { resources: documents } });
      const body = answer.body as { version?: unknown; results?: unknown } | undefined;
      if (!isRecord(body) || typeof body.version !== "number" || !Array.isArray(body.results)) throw new CliError("the control API answered an unexpected shape for apply");
      return { version: body.version, results: body.results as ApplyOutcome[] };
    },
    async snapshot() {
      const answer = await expect("GET", "/v1/snapshot", [200]);
      if (!isRecord(answer.body) || typeof answer.body.version !== "number") throw new CliError("the control API answered an unexpected snapshot shape");
      return answer.body as unknown as SnapshotAnswer;
    },
    async stats() {
      const answer = await expect("GET", "/v1/stats", [200]);
      const body = answer.body;
      if (!isRecord(body) || !Array.isArray(body.routes)) throw new CliError("the control API answered an unexpected stats shape");
      return { windowSeconds: typeof body.windowSeconds === "number" ? body.windowSeconds : 60, routes: body.routes as RouteStats[] };
    },
    async reporters() {
      const answer = await expect("GET", "/metrics", [200], { headers: { accept: "text/plain" } });
      return reportersIn(typeof answer.body === "string" ? answer.body : "");
    },
    async audit() {
      const entries: AuditEntry[] = [];
      let after = 0;
      // The log keeps at most 10,000 entries (DEFAULT_AUDIT_CAP): ten pages of the largest size.
      for (let page = 0; page < 100; page++) {
        const answer = await expect("GET", `/v1/audit?after=${after}&limit=1000`, [200]);
        const body = answer.body as { entries?: AuditEntry[]; next?: number | null } | undefined;
        entries.push(...(body?.entries ?? []));
        if (typeof body?.next !== "number") break;
        after = body.next;
      }
      return entries;
    },
    async jwks() {
      const answer = await expect("GET", "/.well-known/jwks.json", [200], { auth: false });
      if (!isRecord(answer.body) || !Array.isArray(answer.body.keys)) throw new CliError("the control API's JWKS is not a JSON Web Key Set");
      return answer.body as { keys: Record<string, unknown>[] };
    },
  };
}

const CONFIG_VERSION = /^weft_config_version\{host="((?:[^"\\]|\\.)*)"\} (\d+(?:\.\d+)?(?:e\+?\d+)?)$/gm;

/** The hosts and config versions in a Prometheus exposition's `weft_config_version{host}` gauge. */
export function reportersIn(exposition: string): Reporter[] {
  return [...exposition.matchAll(CONFIG_VERSION)].map((m) => ({
    host: m[1]!.replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1"),
    configVersion: Number(m[2]),
  }));
}

/** The `ControlError` for a refused call, with a hint where one helps. */
export function errorOf(answer: ApiResponse, connection: Connection): ControlError {
  const error = isRecord(answer.body) && isRecord(answer.body.error) ? answer.body.error : undefined;
  const code = typeof error?.code === "string" ? error.code : `http-${answer.status}`;
  const message = typeof error?.message === "string" ? error.message : `the control API answered ${answer.status}`;
  const issues = Array.isArray(error?.issues) ? (error.issues as ApiIssue[]) : Array.isArray(isRecord(answer.body) ? answer.body.issues : undefined) ? ((answer.body as Record<string, unknown>).issues as ApiIssue[]) : [];
  let hint: string | undefined;
  if (answer.status === 401 || answer.status === 403) hint = credentialHint(connection);
  if (answer.status === 412) hint = "someone changed it since you read it: get it again, then re-apply";
  return new ControlError(answer.status, code, `${message} (${code})`, issues, hint);
}
