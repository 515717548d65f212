/**
 * The admin listener (port 4191, as linkerd2-proxy's): `/metrics` for Prometheus, `/ready`
 * and `/live` for the kubelet's probes, and `POST /shutdown`, disabled unless a token is
 * configured and then accepted only from loopback (Linkerd's is disabled by default too).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { timingSafeEqual, createHash } from "node:crypto";
import { EXPOSITION_CONTENT_TYPE } from "../src/core/metrics/index.ts";

/** What the admin endpoints read from the sidecar. */
export interface AdminOptions {
  /** The golden metrics in the Prometheus text format. */
  metrics(): string;
  /** Undefined when ready; otherwise why not, for the probe's body. */
  notReady(): string | undefined;
  /** The bearer token `POST /shutdown` needs; undefined disables the endpoint. */
  shutdownToken: string | undefined;
  /** Starts the graceful shutdown. */
  shutdown(): void;
}

const PROCESS_START_S = Math.floor(Date.now() / 1000 - process.uptime());

/** Process metrics in the names Prometheus client libraries use (`process_*`), as Linkerd's proxy exposes them too. */
export function processMetrics(): string {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  const families: [name: string, type: "counter" | "gauge", help: string, value: number][] = [
    ["process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", (cpu.user + cpu.system) / 1e6],
    ["process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", memory.rss],
    ["process_heap_bytes", "gauge", "V8 heap in use, in bytes.", memory.heapUsed],
    ["nodejs_heap_size_total_bytes", "gauge", "V8 heap reserved for objects (all spaces), in bytes.", memory.heapTotal],
    ["nodejs_external_memory_bytes", "gauge", "Memory outside the V8 heap held by JavaScript objects (buffers' bytes among it), in bytes.", memory.external],
    ["nodejs_array_buffers_bytes", "gauge", "Memory of ArrayBuffers and Buffers, in bytes (part of the external memory).", memory.arrayBuffers],
    ["process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", PROCESS_START_S],
  ];
  return families.map(([name, type, help, value]) => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}\n`).join("");
}

/** True for a loopback peer (127.0.0.0/8, ::1, or either mapped into IPv6). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return v4.startsWith("127.") || address === "::1";
}

/** Compares two secrets in constant time (by their digests, so lengths do not show). */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers });
  res.end(body);
}

/** The admin listener's request handler. */
export function createAdminHandler(options: AdminOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    req.resume();
    const path = (req.url ?? "/").split("?")[0];
    const method = req.method ?? "GET";
    const readOnly = method === "GET" || method === "HEAD";
    switch (path) {
      case "/metrics":
        if (!readOnly) return text(res, 405, "method not allowed\n", { allow: "GET, HEAD" });
        res.writeHead(200, { "content-type": EXPOSITION_CONTENT_TYPE });
        return void res.end(method === "HEAD" ? undefined : options.metrics() + processMetrics());
      case "/live":
        if (!readOnly) return text(res, 405, "method not allowed\n", { allow: "GET, HEAD" });
        return text(res, 200, "live\n");
      case "/ready": {
        if (!readOnly) return text(res, 405, "method not allowed\n", { allow: "GET, HEAD" });
        const why = options.notReady();
        return why === undefined ? text(res, 200, "ready\n") : text(res, 503, `not ready: ${why}\n`);
      }
      case "/shutdown": {
        if (options.shutdownToken === undefined) return text(res, 404, "the shutdown endpoint is disabled (set WEFT_ADMIN_SHUTDOWN_TOKEN to enable it)\n");
        if (method !== "POST") return text(res, 405, "method not allowed\n", { allow: "POST" });
        if (!isLoopback(req.socket.remoteAddress)) return text(res, 403, "shutdown is accepted only from the pod itself (loopback)\n");
        const auth = req.headers.authorization ?? "";
        const given = auth.startsWith("Bearer ") ? auth.slice(7) : "";
        if (!sameSecret(given, options.shutdownToken)) return text(res, 401, "shutdown needs the admin shutdown token\n", { "www-authenticate": "Bearer" });
        text(res, 202, "shutting down\n");
        return options.shutdown();
      }
      default:
        return text(res, 404, "not found: the admin endpoints are /metrics, /ready, /live and /shutdown\n");
    }
  };
}
