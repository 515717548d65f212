/**
 * How `weft` writes for people: colour only on a terminal (and never with NO_COLOR or
 * `--no-color`), aligned tables, durations and percentages in the forms `linkerd viz stat`
 * uses.
 */
import type { Output } from "./command.ts";

/** Colour functions for one stream; each is the identity when colour is off. */
export interface Style {
  enabled: boolean;
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

const sgr = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`;
const plain = (text: string) => text;

/**
 * Whether to colour `stream`: FORCE_COLOR (not "0") forces it on; `--no-color` and a non-empty
 * NO_COLOR (no-color.org) force it off; otherwise only a terminal gets colour, and not a
 * TERM=dumb one.
 */
export function colourEnabled(stream: Output, env: Record<string, string | undefined>, noColorFlag: boolean): boolean {
  if (noColorFlag) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "" && env.FORCE_COLOR !== "0") return true;
  return stream.isTTY && env.TERM !== "dumb";
}

/** The `Style` for a stream, coloured or plain. */
export function createStyle(enabled: boolean): Style {
  if (!enabled) return { enabled, bold: plain, dim: plain, red: plain, green: plain, yellow: plain, cyan: plain };
  return { enabled, bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), cyan: sgr(36, 39) };
}

/** A table cell: its text, and optionally a colour applied after padding (so widths stay right). */
export type Cell = string | { text: string; paint?: (text: string) => string; align?: "right" };

/**
 * Rows aligned in columns two spaces apart, the header in bold, as `kubectl get` and `linkerd
 * viz stat` print them. Trailing spaces are trimmed.
 */
export function table(header: string[], rows: Cell[][], style: Style): string {
  const text = (cell: Cell | undefined) => (cell === undefined ? "" : typeof cell === "string" ? cell : cell.text);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => text(row[i]).length)));
  const line = (cells: Cell[], head: boolean) =>
    cells
      .map((cell, i) => {
        const raw = text(cell);
        const last = i === cells.length - 1;
        const right = typeof cell !== "string" && cell.align === "right";
        const padded = right ? raw.padStart(widths[i]!) : last ? raw : raw.padEnd(widths[i]!);
        const paint = head ? style.bold : typeof cell === "string" ? undefined : cell.paint;
        if (!paint) return padded;
        // Colour only the text, not the padding, so a terminal's selection stays clean.
        return right ? padded.slice(0, padded.length - raw.length) + paint(raw) : paint(raw) + padded.slice(raw.length);
      })
      .join("  ")
      .trimEnd();
  return [line(header, true), ...rows.map((row) => line(row, false))].join("\n") + "\n";
}

/** A rate as a percentage with two decimals (`99.50%`), `-` when there were no calls. */
export function percent(rate: number | null | undefined): string {
  return rate === null || rate === undefined || !Number.isFinite(rate) ? "-" : `${(rate * 100).toFixed(2)}%`;
}

/** Requests per second as `linkerd viz stat` prints it (`1.2rps`), `-` when unknown. */
export function rps(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "-";
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)}rps`;
}

/** Milliseconds as `linkerd viz stat` prints latency (`3ms`, `1.2s`), `-` when unknown. */
export function latency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  if (ms >= 10_000) return `${(ms / 1000).toFixed(0)}s`;
  if (ms >= 1_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms >= 10) return `${Math.round(ms)}ms`;
  return `${Number(ms.toFixed(1))}ms`;
}

/** A span of time for people: `45s`, `14m32s`, `2h5m`, `3d4h`. */
export function span(ms: number): string {
  const s = Math.max(0, Math.round(Math.abs(ms) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ""}`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? `${Math.floor((s % 3600) / 60)}m` : ""}`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600) ? `${Math.floor((s % 86_400) / 3600)}h` : ""}`;
}

/** A field path as people read it: `backends[0].weight`. */
export function fieldPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? part : `.${part}`;
  return out || "(document)";
}

/** `value` as JSON, two-space indented, ending in a newline. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}
