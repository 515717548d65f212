import { chmod, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CliError, UsageError } from "./command.ts";
import { credentialHint, DEFAULT_CONTROL_URL, isLocalDefault, resolveConnection } from "./connection.ts";

async function project(): Promise<{ root: string; nested: string }> {
  const root = await mkdtemp(join(tmpdir(), "weft-conn-"));
  await mkdir(join(root, ".weft"));
  await writeFile(join(root, ".weft", "admin-token"), "local-admin-token\n");
  await chmod(join(root, ".weft", "admin-token"), 0o600);
  const nested = join(root, "services", "orders");
  await mkdir(nested, { recursive: true });
  return { root, nested };
}

describe("the connection to the control API", () => {
  it("defaults to the local mesh and the admin token it wrote, found by walking up from the working folder", async () => {
    const { root, nested } = await project();
    const connection = await resolveConnection({ flags: {}, env: {}, cwd: nested, home: root });
    expect(connection.url).toBe(DEFAULT_CONTROL_URL);
    expect(connection.token).toBe("local-admin-token");
    expect(connection.tokenSource).toBe(".weft/admin-token");
    expect(connection.adminTokenPath).toBe(join(root, ".weft", "admin-token"));
  });

  it("does not send the local admin token to a control plane elsewhere", async () => {
    const { root, nested } = await project();
    const connection = await resolveConnection({ flags: {}, env: { WEFT_CONTROL_URL: "https://control.example.com" }, cwd: nested, home: root });
    expect(connection.url).toBe("https://control.example.com");
    expect(connection.token).toBeUndefined();
    expect(connection.tokenSource).toBe("none");
  });

  it("prefers flags to the environment, the environment to the config file, the config file to the defaults", async () => {
    const { root, nested } = await project();
    const config = join(root, "weft.json");
    await writeFile(config, JSON.stringify({ controlUrl: "http://10.0.0.1:8788", token: "from-config" }));
    const fromConfig = await resolveConnection({ flags: { config }, env: {}, cwd: nested, home: root });
    expect([fromConfig.url, fromConfig.token, fromConfig.tokenSource]).toEqual(["http://10.0.0.1:8788", "from-config", "config file"]);
    const fromEnv = await resolveConnection({ flags: { config }, env: { WEFT_CONTROL_URL: "http://10.0.0.2:1/", WEFT_TOKEN: "from-env" }, cwd: nested, home: root });
    expect([fromEnv.url, fromEnv.token, fromEnv.tokenSource]).toEqual(["http://10.0.0.2:1", "from-env", "WEFT_TOKEN"]);
    const fromFlags = await resolveConnection({ flags: { config, controlUrl: "http://10.0.0.3:2", token: "from-flag" }, env: { WEFT_TOKEN: "from-env" }, cwd: nested, home: root });
    expect([fromFlags.url, fromFlags.token, fromFlags.tokenSource]).toEqual(["http://10.0.0.3:2", "from-flag", "--token"]);
  });

  it("reads the default config file under XDG_CONFIG_HOME or ~/.config, and a tokenFile beside it", async () => {
    const { root } = await project();
    await mkdir(join(root, "xdg", "weft"), { recursive: true });
    await writeFile(join(root, "xdg", "weft", "config.json"), JSON.stringify({ controlUrl: "https://c.example", tokenFile: "token.txt" }));
    await writeFile(join(root, "xdg", "weft", "token.txt"), "file-token\n");
    const connection = await resolveConnection({ flags: {}, env: { XDG_CONFIG_HOME: join(root, "xdg") }, cwd: root, home: "/nonexistent" });
    expect([connection.url, connection.token, connection.configPath]).toEqual(["https://c.example", "file-token", join(root, "xdg", "weft", "config.json")]);
  });

  it("refuses a config file with unknown settings, listing each", async () => {
    const { root } = await project();
    const config = join(root, "weft.json");
    await writeFile(config, JSON.stringify({ controlURL: "x", token: 3 }));
    const error = await resolveConnection({ flags: { config }, env: {}, cwd: root, home: root }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).details).toEqual(["controlURL: unknown setting (known: controlUrl, token, tokenFile)", "token: must be a non-empty string"]);
  });

  it("refuses a config file that is not JSON without quoting it, since it may hold the token", async () => {
    const { root } = await project();
    const config = join(root, "weft.json");
    await writeFile(config, '{"token": secret-in-config}');
    const error = (await resolveConnection({ flags: { config }, env: {}, cwd: root, home: root }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(CliError);
    expect(error.message).toBe(`the config file ${config} is not valid JSON`);
  });

  it("refuses a URL that is not http(s) or that carries a password, without echoing the password", async () => {
    await expect(resolveConnection({ flags: { controlUrl: "ftp://x" }, env: {}, cwd: "/", home: "/" })).rejects.toBeInstanceOf(UsageError);
    const error = (await resolveConnection({ flags: {}, env: { WEFT_CONTROL_URL: "https://admin:hunter2@c.example" }, cwd: "/", home: "/" }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).not.toContain("hunter2");
  });

  it("counts loopback on the default port as the local mesh, and nothing else", () => {
    expect(isLocalDefault("http://127.0.0.1:8788")).toBe(true);
    expect(isLocalDefault("http://localhost:8788/")).toBe(true);
    expect(isLocalDefault("http://127.0.0.1:8787")).toBe(false);
    expect(isLocalDefault("https://127.0.0.1:8788")).toBe(false);
    expect(isLocalDefault("http://10.0.0.1:8788")).toBe(false);
  });

  it("sends the local admin token to the URL weft dev recorded beside it, and to no other", async () => {
    const { root, nested } = await project();
    await writeFile(join(root, ".weft", "control-url"), "http://127.0.0.1:18788\n");
    for (const url of ["http://127.0.0.1:18788", "http://localhost:18788/"]) {
      const connection = await resolveConnection({ flags: { controlUrl: url }, env: {}, cwd: nested, home: root });
      expect([connection.token, connection.tokenSource]).toEqual(["local-admin-token", ".weft/admin-token"]);
    }
    const fromEnv = await resolveConnection({ flags: {}, env: { WEFT_CONTROL_URL: "http://127.0.0.1:18788" }, cwd: nested, home: root });
    expect(fromEnv.token).toBe("local-admin-token");
    // The default port is another mesh now: no token, and a hint naming the local one.
    const elsewhere = await resolveConnection({ flags: {}, env: {}, cwd: nested, home: root });
    expect([elsewhere.url, elsewhere.token, elsewhere.tokenSource]).toEqual([DEFAULT_CONTROL_URL, undefined, "none"]);
    expect(credentialHint(elsewhere)).toContain("--control-url http://127.0.0.1:18788");
    const otherPort = await resolveConnection({ flags: { controlUrl: "http://127.0.0.1:18789" }, env: {}, cwd: nested, home: root });
    expect(otherPort.token).toBeUndefined();
  });

  it("ignores a recorded URL that is not loopback, keeping the token for the default URL alone", async () => {
    const { root, nested } = await project();
    await writeFile(join(root, ".weft", "control-url"), "https://control.example.com\n");
    const remote = await resolveConnection({ flags: { controlUrl: "https://control.example.com" }, env: {}, cwd: nested, home: root });
    expect(remote.token).toBeUndefined();
    const local = await resolveConnection({ flags: {}, env: {}, cwd: nested, home: root });
    expect(local.token).toBe("local-admin-token");
  });

  it("hints at starting the local mesh when there is no credential for it", async () => {
    const connection = await resolveConnection({ flags: {}, env: {}, cwd: "/", home: "/nonexistent" });
    expect(connection.tokenSource).toBe("none");
    expect(credentialHint(connection)).toContain("npm start");
  });
});
