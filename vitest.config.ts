import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Two runs of the tests: every unit and integration test in Node, and the core's unit tests
// again inside workerd, to prove the core needs nothing but Web-standard APIs.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          include: ["src/**/*.test.ts", "workers/**/*.test.ts", "sidecar/**/*.test.ts", "cli/**/*.test.ts", "tests/**/*.test.ts", "scripts/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        plugins: [
          cloudflareTest({
            miniflare: { compatibilityDate: "2026-11-01", compatibilityFlags: [] },
          }),
        ],
        test: {
          name: "workerd",
          include: ["src/core/**/*.test.ts"],
          exclude: ["src/core/**/*.node.test.ts"],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
