import { describe, expect, it } from "vitest";
import { COMMANDS } from "./commands/index.ts";
import { suggest } from "./main.ts";
import { fakeControl, runWeft } from "./test-io.ts";

describe("weft's command line", () => {
  it("prints the command table for no arguments, help and --help, exiting 0", async () => {
    for (const argv of [[], ["help"], ["--help"], ["-h"]]) {
      const result = await runWeft(argv);
      expect(result.code).toBe(0);
      for (const command of COMMANDS) expect(result.stdout).toContain(`  ${command.name}`);
      expect(result.stdout).toContain("WEFT_CONTROL_URL");
    }
  });

  it("prints every command's help through `weft help X`, `weft X --help` and `weft X -h` alike", async () => {
    for (const command of COMMANDS) {
      const viaHelp = await runWeft(["help", command.name]);
      const viaFlag = await runWeft([command.name, "--help"]);
      const viaShort = await runWeft([command.name, "-h"]);
      expect(viaHelp.code).toBe(0);
      expect(viaHelp.stdout).toContain(`weft ${command.name}: ${command.summary}`);
      expect(viaHelp.stdout).toContain("Usage:");
      expect(viaHelp.stdout).toContain("--control-url URL");
      expect(viaFlag.stdout).toBe(viaHelp.stdout);
      expect(viaShort.stdout).toBe(viaHelp.stdout);
    }
  });

  it("answers an unknown command with exit 2 and the closest command", async () => {
    const result = await runWeft(["stats"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "stats"; did you mean "stat"?');
    expect(result.stderr).toContain("Run 'weft --help' for usage.");
    expect(suggest("dlete")).toBe("delete");
    expect(suggest("zzzzzz")).toBeUndefined();
  });

  it("answers an unknown flag, a missing value and a bad output format with exit 2", async () => {
    const unknown = await runWeft(["get", "services", "--colour"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("--colour");
    expect(unknown.stderr).toContain("Run 'weft get --help' for usage.");
    expect((await runWeft(["get", "services", "-o"])).code).toBe(2);
    const format = await runWeft(["get", "services", "-o", "xml"]);
    expect(format.code).toBe(2);
    expect(format.stderr).toContain("--output must be one of table, yaml, json, name");
  });

  it("takes global flags before the command too", async () => {
    const fetch = fakeControl({ "GET /v1/services": { services: [] } });
    const result = await runWeft(["--control-url", "http://127.0.0.1:9999", "get", "svc"], { fetch });
    expect(result.code).toBe(0);
    expect(fetch.seen[0]!.url).toBe("http://127.0.0.1:9999/v1/services");
  });

  it("prints its version", async () => {
    const result = await runWeft(["--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^weft \d+\.\d+\.\d+\n$/);
  });

  it("reports an unreachable control plane with exit 1 and a hint to start it", async () => {
    const result = await runWeft(["get", "services"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("cannot reach the control API at http://127.0.0.1:8788 (ECONNREFUSED)");
    expect(result.stderr).toContain("hint: start the local mesh with `npm start`");
  });

  it("reports a refused credential with a hint naming where it came from, never the credential", async () => {
    const fetch = fakeControl({ "GET /v1/services": () => Response.json({ error: { code: "unauthenticated", message: "an admin credential is needed" } }, { status: 401 }) });
    const result = await runWeft(["get", "services"], { fetch, env: { WEFT_TOKEN: "s3cret-admin-token" } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("an admin credential is needed (unauthenticated)");
    expect(result.stderr).toContain("the credential from WEFT_TOKEN is not accepted");
    expect(result.stderr + result.stdout).not.toContain("s3cret-admin-token");
    expect(fetch.seen[0]!.headers.get("authorization")).toBe("Bearer s3cret-admin-token");
  });

  it("never echoes a stray argument that may be a token", async () => {
    const token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    const result = await runWeft(["identity", token]);
    expect(result.code).toBe(2);
    expect(result.stderr).not.toContain(token.slice(0, 8));
  });

  it("fails a token of an algorithm the mesh refuses, even offline", async () => {
    const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const result = await runWeft(["identity", "--offline", "--token", `${part({ alg: "none" })}.${part({ sub: "x", exp: 4_000_000_000 })}.`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("✗ algorithm none is refused by the mesh");
  });

  it("colours output only on a terminal and never with NO_COLOR", async () => {
    const fetch = fakeControl({ "GET /v1/services": { services: [{ name: "orders", version: 1 }] } });
    expect((await runWeft(["get", "svc"], { fetch, tty: true })).stdout).toContain("\x1b[1m");
    expect((await runWeft(["get", "svc"], { fetch, tty: false })).stdout).not.toContain("\x1b[");
    expect((await runWeft(["get", "svc"], { fetch, tty: true, env: { NO_COLOR: "1" } })).stdout).not.toContain("\x1b[");
    expect((await runWeft(["get", "svc", "--no-color"], { fetch, tty: true })).stdout).not.toContain("\x1b[");
  });
});
