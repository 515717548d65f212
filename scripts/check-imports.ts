/**
 * Enforces the dependency rules of STYLE.md mechanically: `src/core` imports nothing but
 * itself (zod only in `src/core/config/`, re2js only in `src/core/regex/`), so it runs on any
 * Web-standard runtime;
 * `src/identity` imports only the core, jose and (for the mutual TLS CA, `ca.ts`) @peculiar/x509 with its reflect-metadata; the two workers never import each other.
 * Exits non-zero, listing every breach, when a rule is broken.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;

function* files(dir: string): Generator<string> {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (/\.(ts|js|mjs)$/.test(entry.name)) yield path;
  }
}

/** The import specifiers of a source file, comments stripped first. */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  return [...code.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

/** Why `specifier`, imported by `file` (relative to the root), breaks a rule; or undefined. */
export function breach(file: string, specifier: string): string | undefined {
  const relativeImport = specifier.startsWith(".");
  const target = relativeImport ? relative(root, resolve(root, dirname(file), specifier)) : undefined;
  const isTest = /\.test\.ts$/.test(file);
  if (file.startsWith("src/core/")) {
    if (target !== undefined) {
      if (target.startsWith("src/core/")) return undefined;
      if (isTest && target.startsWith("src/testing/")) return undefined;
      return `src/core may import only src/core (found ${specifier})`;
    }
    if (specifier === "zod" && file.startsWith("src/core/config/")) return undefined;
    // RE2's linear-time matcher, pure JavaScript with no dependencies and no host APIs, runs
    // wherever the core does; one folder wraps it, as config/ wraps zod.
    if (specifier === "re2js" && file.startsWith("src/core/regex/")) return undefined;
    // Tests may use test-only packages; only a `*.node.test.ts` may reach for Node itself.
    if (isTest && !/^(node:|cloudflare:|hono)/.test(specifier)) return undefined;
    if (/\.node\.test\.ts$/.test(file) && specifier.startsWith("node:")) return undefined;
    return `src/core may not import "${specifier}" (Web-standard APIs only; zod only in src/core/config/, re2js only in src/core/regex/)`;
  }
  if (file.startsWith("src/identity/")) {
    if (target !== undefined) {
      if (target.startsWith("src/core/") || target.startsWith("src/identity/")) return undefined;
      if (isTest && target.startsWith("src/testing/")) return undefined;
      return `src/identity may import only src/core and itself (found ${specifier})`;
    }
    if (specifier === "jose" || (isTest && specifier === "@peculiar/x509")) return undefined;
    if (file === "src/identity/ca.ts" && (specifier === "@peculiar/x509" || specifier === "reflect-metadata")) return undefined;
    if ((isTest && (specifier === "vitest" || specifier.startsWith("node:")))) return undefined;
    return `src/identity may not import "${specifier}"`;
  }
  if (target !== undefined) {
    if (file.startsWith("workers/router/") && target.startsWith("workers/control/")) return "the router worker may not import the control worker";
    if (file.startsWith("workers/control/") && target.startsWith("workers/router/")) return "the control worker may not import the router worker";
    if (file.startsWith("src/") && /^(workers|sidecar|cli)\//.test(target)) return `src/ may not import a host (found ${specifier})`;
  }
  return undefined;
}

if (import.meta.main) {
  const problems: string[] = [];
  for (const dir of ["src", "workers", "sidecar", "cli"]) {
    for (const path of files(join(root, dir))) {
      const file = relative(root, path);
      for (const specifier of importsOf(readFileSync(path, "utf8"))) {
        const why = breach(file, specifier);
        if (why) problems.push(`${file}: ${why}`);
      }
    }
  }
  if (problems.length) {
    console.error(`import rules broken (${problems.length}):\n${problems.map((p) => `  ${p}`).join("\n")}`);
    process.exit(1);
  }
  console.log("import rules hold");
}
