/**
 * Writing the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format):
 * escaping, label sets and sample values.
 */

/** The `content-type` of a `/metrics` answer in this format. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A label value escaped for the text format: backslash, double quote and newline. */
export function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : value;
}

/** A HELP text escaped for the text format: backslash and newline. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/**
 * The inside of a label set, `a="x",b="y"`, in the order given; written once per series when
 * it is created, so exposing costs no escaping.
 */
export function labelPairs(labels: readonly (readonly [string, string])[]): string {
  return labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",");
}

/** A sample value as the format spells it: `NaN`, `+Inf`, `-Inf` or a decimal. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** The `# HELP` and `# TYPE` lines that open a metric family. */
export function familyHeader(name: string, type: "counter" | "gauge" | "histogram", help: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}

/** One sample line: `name{labels} value`, or `name value` when `pairs` is empty. */
export function sample(name: string, pairs: string, value: number): string {
  return `${name}${pairs === "" ? "" : `{${pairs}}`} ${formatValue(value)}\n`;
}
