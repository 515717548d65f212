/**
 * Builds the sidecar into one JavaScript file (esbuild, ~0.2 s) for images and the bench:
 * `node sidecar/bundle.ts [outfile]`. Run from the bundle, the process skips Node's
 * TypeScript stripping and loads one module instead of dozens, which keeps about 40 MB off
 * its resident memory (measured: 75 MB idle from the bundle, 119 MB from `sidecar/main.ts`);
 * without comments and whitespace, about 4 MB less again.
 */
import { resolve } from "node:path";
import { build } from "esbuild";

/** Where the bundle goes by default (the project's untracked build folder). */
export const DEFAULT_BUNDLE_PATH = resolve(import.meta.dirname, "../.weft/build/sidecar/main.mjs");

/**
 * Bundles `sidecar/main.ts` and its dependencies (undici's pool, jose, zod, re2js, the CSR's
 * ASN.1 schemas) into `outfile`, and their licence notices into `<outfile>.LEGAL.txt`.
 */
export async function bundleSidecar(outfile = DEFAULT_BUNDLE_PATH): Promise<string> {
  await build({
    entryPoints: [resolve(import.meta.dirname, "main.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    // undici is CommonJS and `require`s Node's modules: give the ES module bundle a `require`.
    banner: { js: 'import { createRequire as __weftRequire } from "node:module"; const require = __weftRequire(import.meta.url);' },
    logLevel: "warning",
    // Whitespace and comments out, syntax shortened, names left as written: the source the
    // process holds is 1.6 MB of ASCII (2.3 MB before undici's pool was loaded from its own
    // file, `undici-pool.ts`, and the CSR written without @peculiar/x509, `csr.ts`);
    // unminified it was 3.3 MB, stored two bytes a character: 6.5 MB. Names are not
    // minified, so stack
    // traces, profiles and `constructor.name` (jose names its errors by it) read as the source
    // does without esbuild's `keepNames`, which re-sets the `name` of every function it
    // renames, closures included, each time one is made: about 2,000 `Object.defineProperty`
    // calls in the bundle, several of them per request (A/B in bench:sidecar, 2026-12-03: the
    // bundle with them cost 1.094× and 1.146× the CPU per request of this one, against A/A
    // runs of 0.91–0.95× in the same slot, so about 0.80–0.87× without them; memory unchanged).
    minifyWhitespace: true,
    minifySyntax: true,
    // The dependencies' licence comments go to `<outfile>.LEGAL.txt`, named in a comment at
    // the bundle's end, not into the bundle: one of them (undici's, for formdata-polyfill)
    // names a "Jimmy W\u00e4rting", and Node loads a source over 1 MB that is not pure ASCII
    // as a UTF-16 string, two bytes a character: the 1.65 MB bundle then took 3.3 MB of every
    // sidecar's memory (measured: 1.3-1.8 MB more private memory at start with that one
    // character than without it).
    legalComments: "linked",
  });
  return outfile;
}

if (import.meta.main) {
  const outfile = await bundleSidecar(process.argv[2] ? resolve(process.argv[2]) : undefined);
  process.stdout.write(`${outfile}\n`);
}
