/**
 * HTTP/1 on raw `node:net` sockets, for tests that must send what no well-behaved client
 * sends (cut, late, oversized, pipelined, malformed) and read exactly what came back,
 * including a connection closed without an answer.
 */
import { connect, type Socket } from "node:net";

/** A listener's address (`http://host:port`) as a host and port. */
export function addressOf(url: string): { host: string; port: number } {
  const { hostname, port } = new URL(url);
  return { host: hostname, port: Number(port) };
}

/** One HTTP/1 response read off the wire. */
export interface WireResponse {
  status: number;
  /** Header names lower-case; a repeated header's values joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

/** What a raw connection saw: every byte received, and how it ended. */
export interface WireResult {
  /** Everything received, as latin1 text. */
  text: string;
  /** The complete responses in `text`, in order. */
  responses: WireResponse[];
  /** The socket error that ended the connection (`ECONNRESET`, ...), if any. */
  error: string | undefined;
  /** True when the exchange ran out of its time limit and was cut by the test (a hang). */
  timedOut: boolean;
}

/**
 * Parses the complete responses at the start of `text` (latin1): `content-length` bodies,
 * chunked bodies, and a last body delimited by the close when neither is given.
 */
export function parseResponses(text: string, closed = true): WireResponse[] {
  const responses: WireResponse[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const [statusLine = "", ...lines] = text.slice(at, end).split("\r\n");
    const status = Number(statusLine.split(" ")[1]);
    if (!/^HTTP\/1\.[01] \d{3}/.test(statusLine)) break;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    let next = end + 4;
    let body = "";
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      // no body
    } else if (headers["content-length"] !== undefined) {
      const length = Number(headers["content-length"]);
      if (text.length < next + length) break;
      body = text.slice(next, next + length);
      next += length;
    } else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      let complete = false;
      for (;;) {
        const lineEnd = text.indexOf("\r\n", next);
        if (lineEnd < 0) break;
        const size = parseInt(text.slice(next, lineEnd), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const trailerEnd = text.indexOf("\r\n\r\n", lineEnd);
          if (trailerEnd < 0) break;
          next = trailerEnd + 4;
          complete = true;
          break;
        }
        if (text.length < lineEnd + 2 + size + 2) break;
        body += text.slice(lineEnd + 2, lineEnd + 2 + size);
        next = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
    } else {
      if (!closed) break;
      body = text.slice(next);
      next = text.length;
    }
    if (status >= 200) responses.push({ status, headers, body });
    at = next;
  }
  return responses;
}

/** A step of a raw exchange: bytes to write, a pause, or a wait for a complete response. */
export type Step = string | Uint8Array | { pauseMs: number } | { responses: number } | { halfClose: true };

/** Options of `exchange`. */
export interface ExchangeOptions {
  /** The whole exchange is cut (the socket destroyed) after this long; 20 s by default. */
  limitMs?: number;
  /** Destroys the socket once the steps are done instead of waiting for the server to close. */
  destroyAfterSteps?: boolean;
}

/**
 * Connects to `address`, runs `steps` in order (writes, pauses, waits for a number of
 * complete responses), then waits for the server to close the connection and returns what
 * came back. Never rejects: a reset or a refused connection is reported in `error`.
 */
export function exchange(address: { host: string; port: number }, steps: Step[], options: ExchangeOptions = {}): Promise<WireResult> {
  return new Promise((resolve) => {
    const socket: Socket = connect(address.port, address.host);
    let text = "";
    let error: string | undefined;
    let waiter: (() => void) | undefined;
    let done = false;
    let timedOut = false;
    const limit = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, options.limitMs ?? 20_000);
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      text += chunk;
      waiter?.();
    });
    socket.on("error", (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    socket.on("close", () => {
      done = true;
      clearTimeout(limit);
      waiter?.();
      resolve({ text, responses: parseResponses(text), error, timedOut });
    });
    const write = (data: string | Uint8Array) =>
      new Promise<void>((resolveWrite) => {
        if (done || socket.destroyed) return resolveWrite();
        socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data, () => resolveWrite());
      });
    const until = (check: () => boolean) =>
      new Promise<void>((resolveWait) => {
        if (check() || done) return resolveWait();
        waiter = () => {
          if (check() || done) {
            waiter = undefined;
            resolveWait();
          }
        };
      });
    socket.once("connect", async () => {
      for (const step of steps) {
        if (done) break;
        if (typeof step === "string" || step instanceof Uint8Array) await write(step);
        else if ("pauseMs" in step) await new Promise((r) => setTimeout(r, step.pauseMs));
        else if ("responses" in step) await until(() => parseResponses(text, false).length >= step.responses);
        else socket.end();
      }
      if (options.destroyAfterSteps) socket.destroy();
    });
  });
}

/** Opens a connection and resolves once it is established (or failed); the caller ends it. */
export function open(address: { host: string; port: number }): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connect(address.port, address.host);
    socket.on("error", () => {});
    socket.once("connect", () => resolve(socket));
    socket.once("close", () => resolve(socket));
  });
}

/** Resolves when `socket` has closed. */
export function closed(socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once("close", () => resolve()));
}
