/**
 * Shared by the control worker's integration tests: starts the real worker in workerd (through
 * the local runner) on an ephemeral loopback port, and calls it over HTTP.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startControl } from "../../workers/control/local.ts";
import type { RunningControl, StartControlOptions } from "../../workers/control/local.ts";

/** The admin secret every test control plane is started with. */
export const ADMIN = "test-admin-secret-0123456789";

/** A control plane for one test file, with a fresh data folder. */
export interface TestControl extends RunningControl {
  dir: string | null;
  /** Calls the API; `token` defaults to the admin secret, `null` sends none. */
  call(method: string, path: string, options?: CallOptions): Promise<Answer>;
  /** Stops and removes the data folder. */
  destroy(): Promise<void>;
}

/** Options of one call. */
export interface CallOptions {
  body?: unknown;
  /** Sent as-is when a string (for malformed JSON). */
  raw?: string | Uint8Array;
  token?: string | null;
  headers?: Record<string, string>;
}

/** A response with its body read and, when JSON, parsed. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/**
 * Starts a control plane in a new temporary folder, or with `dir: null` in memory only (the
 * same Durable Object storage engine without disk syncs, for the tests that write thousands
 * of times and do not restart).
 */
export async function startTestControl(options: Partial<StartControlOptions> = {}, dir: string | null = mkdtempSync(join(tmpdir(), "weft-control-"))): Promise<TestControl> {
  const running = await startControl({ adminToken: ADMIN, port: 0, ...(dir === null ? {} : { persistDir: dir }), ...options });
  return {
    ...running,
    dir,
    call: (method, path, callOptions) => call(running.url, method, path, callOptions),
    async destroy() {
      await running.stop();
      if (dir !== null) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One HTTP call to `base`. */
export async function call(base: string, method: string, path: string, options: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? ADMIN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | Uint8Array | undefined;
  if (method === "GET" || method === "HEAD") body = undefined;
  else if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined && !headers["content-type"]) headers["content-type"] = "application/json";
  // No retry on a broken pipe: the control plane reads (or drains) every body before it
  // answers, so a client never finds its connection closed under it (oversized-bodies.test.ts).
  const response = await fetch(base + path, { method, headers, body: body as BodyInit | undefined });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** A minimal valid service body. */
export function service(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { balancer: "round-robin", ...extra };
}

/** Polls `check` every 20 ms until it returns a value other than undefined, up to `limitMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, limitMs = 10_000): Promise<T> {
  const until = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
