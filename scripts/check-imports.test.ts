import { describe, expect, it } from "vitest";
import { breach, importsOf } from "./check-imports.ts";

describe("import rules", () => {
  it("finds static, re-export, side-effect and dynamic imports", () => {
    const source = `import a from "node:fs";\nexport { b } from "./b.ts";\nimport "hono";\nconst c = await import("cloudflare:workers");\n// import "ignored";`;
    expect(importsOf(source)).toEqual(["node:fs", "./b.ts", "hono", "cloudflare:workers"]);
  });

  it("refuses node, cloudflare, hono and zod in the core, but zod in its config folder", () => {
    expect(breach("src/core/retry/index.ts", "node:timers")).toMatch(/may not import/);
    expect(breach("src/core/retry/index.ts", "cloudflare:workers")).toMatch(/may not import/);
    expect(breach("src/core/retry/index.ts", "hono")).toMatch(/may not import/);
    expect(breach("src/core/retry/index.ts", "zod")).toMatch(/may not import/);
    expect(breach("src/core/config/index.ts", "zod")).toBeUndefined();
    expect(breach("src/core/regex/index.ts", "re2js")).toBeUndefined();
    expect(breach("src/core/route/table.ts", "re2js")).toMatch(/may not import/);
    expect(breach("src/core/retry/index.ts", "../fetch.ts")).toBeUndefined();
    expect(breach("src/core/retry/index.ts", "../../identity/index.ts")).toMatch(/only src\/core/);
  });

  it("lets core tests use test packages, and only *.node.test.ts use Node", () => {
    expect(breach("src/core/metrics/expose.test.ts", "parse-prometheus-text-format")).toBeUndefined();
    expect(breach("src/core/metrics/expose.test.ts", "node:child_process")).toMatch(/may not import/);
    expect(breach("src/core/metrics/expose.node.test.ts", "node:child_process")).toBeUndefined();
  });

  it("keeps the workers apart", () => {
    expect(breach("workers/router/app.ts", "../control/app.ts")).toMatch(/may not import/);
    expect(breach("workers/control/app.ts", "../router/app.ts")).toMatch(/may not import/);
  });
});
