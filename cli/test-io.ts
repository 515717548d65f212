/** An in-memory `Io` for running `main()` in tests: captured output, a given environment, folder and `fetch`. */
import type { Io } from "./command.ts";
import { main } from "./main.ts";

/** What a test run of `weft` printed and answered. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of `testIo`: anything not given is empty or refuses. */
export interface TestIoOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  home?: string;
  fetch?: typeof fetch;
  stdin?: string;
  tty?: boolean;
  now?: number;
  signal?: AbortSignal;
  sleep?: Io["sleep"];
}

/** An `Io` whose output is collected in `out` and `err`. */
export function testIo(options: TestIoOptions = {}): Io & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const tty = options.tty ?? false;
  return {
    out,
    err,
    stdout: { write: (t) => void out.push(t), isTTY: tty, columns: 120 },
    stderr: { write: (t) => void err.push(t), isTTY: tty, columns: 120 },
    readStdin: async () => options.stdin ?? "",
    env: options.env ?? {},
    cwd: options.cwd ?? "/nonexistent",
    home: options.home ?? "/nonexistent",
    fetch:
      options.fetch ??
      (async () => {
        throw new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) });
      }),
    signal: options.signal ?? new AbortController().signal,
    sleep: options.sleep ?? (async () => {}),
    now: () => options.now ?? Date.UTC(2026, 10, 27, 12, 0, 0),
  };
}

/** Runs `weft argv` in-process with `testIo(options)`. */
export async function runWeft(argv: string[], options: TestIoOptions = {}): Promise<RunResult> {
  const io = testIo(options);
  const code = await main(argv, io);
  return { code, stdout: io.out.join(""), stderr: io.err.join("") };
}

/**
 * A `fetch` answering from `routes` (`"GET /v1/services"` → a JSON body, or a function of
 * the request), 404 otherwise; records every request it saw in `seen`.
 */
export function fakeControl(routes: Record<string, unknown | ((request: Request) => Response | Promise<Response>)>): typeof fetch & { seen: Request[] } {
  const seen: Request[] = [];
  const handler = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    seen.push(request.clone());
    const url = new URL(request.url);
    const route = routes[`${request.method} ${url.pathname}`];
    if (route === undefined) return Response.json({ error: { code: "unknown-service", message: "not found" } }, { status: 404 });
    if (typeof route === "function") return (route as (r: Request) => Response | Promise<Response>)(request);
    return Response.json(route);
  };
  return Object.assign(handler, { seen }) as typeof fetch & { seen: Request[] };
}
