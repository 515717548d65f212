import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatProblem, loadResources, placeApiIssues } from "./resource-files.ts";

async function folder(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "weft-files-"));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(root, name, ".."), { recursive: true });
    await writeFile(join(root, name), text);
  }
  return root;
}

const read = (cwd: string, paths: string[], options: { recursive?: boolean; stdin?: string } = {}) =>
  loadResources(paths, { cwd, recursive: options.recursive ?? false, readStdin: async () => options.stdin ?? "" });

describe("resource files", () => {
  it("reads several YAML documents per file, a JSON list, and standard input", async () => {
    const cwd = await folder({
      "mesh.yaml": "kind: Service\nname: orders\n---\nkind: Route\nname: web\nservice: orders\nbackends: [{service: orders}]\n---\n",
      "more.json": JSON.stringify([{ kind: "Service", name: "users" }, { kind: "AuthorizationPolicy", name: "allow", target: { service: "users" }, action: "ALLOW" }]),
    });
    const { resources, problems } = await read(cwd, ["mesh.yaml", "more.json", "-"], { stdin: '{"kind": "Service", "name": "billing"}' });
    expect(problems).toEqual([]);
    expect(resources.map((r) => `${r.source.file}#${r.source.index} ${r.resource.kind}/${r.resource.name}`)).toEqual([
      "mesh.yaml#0 Service/orders",
      "mesh.yaml#1 Route/web",
      "more.json#0 Service/users",
      "more.json#1 AuthorizationPolicy/allow",
      "-#0 Service/billing",
    ]);
    // The schema fills defaults in `resource`; `written` is what the file said.
    expect(resources[0]!.resource).toMatchObject({ balancer: "p2c-ewma", defaultPolicy: "all-unauthenticated" });
    expect(resources[0]!.written).toEqual({ kind: "Service", name: "orders" });
  });

  it("reads a folder's .yaml, .yml and .json files in name order, and subfolders only with recursive", async () => {
    const cwd = await folder({
      "dir/b.yml": "kind: Service\nname: b\n",
      "dir/a.json": '{"kind": "Service", "name": "a"}',
      "dir/notes.txt": "not a resource",
      "dir/.hidden.yaml": "kind: Service\nname: hidden\n",
      "dir/sub/c.yaml": "kind: Service\nname: c\n",
    });
    expect((await read(cwd, ["dir"])).resources.map((r) => r.resource.name)).toEqual(["a", "b"]);
    expect((await read(cwd, ["dir"], { recursive: true })).resources.map((r) => r.resource.name)).toEqual(["a", "b", "c"]);
  });

  it("reports every problem with its file, line, document and field path", async () => {
    const cwd = await folder({
      "bad.yaml": [
        "kind: Service",
        "name: orders",
        "balancer: random",
        "retires: 3",
        "---",
        "kind: Route",
        "name: web",
        "service: orders",
        "backends:",
        "  - service: orders",
        "    weight: -1",
        "---",
        "kind: Deployment",
        "name: x",
        "",
      ].join("\n"),
      "broken.yaml": "kind: Service\nname: a\n  bad: indent\n",
    });
    const { resources, problems } = await read(cwd, ["bad.yaml", "broken.yaml", "missing.yaml"]);
    expect(resources).toEqual([]);
    expect(problems.map(formatProblem)).toEqual([
      'bad.yaml:3:11: document 1 (Service "orders"): balancer: Invalid option: expected one of "p2c-ewma"|"round-robin"',
      'bad.yaml:4:1: document 1 (Service "orders"): retires: unknown field (misspelt, or not in this kind: see docs/cli.md)',
      'bad.yaml:11:13: document 2 (Route "web"): backends[0].weight: Too small: expected number to be >=0',
      'bad.yaml:13:7: document 3 (Deployment "x"): kind: must be one of Service, Route, AuthorizationPolicy, ExternalService, Tracing (got "Deployment")',
      "broken.yaml:2:7: document 1: not valid YAML or JSON: Nested mappings are not allowed in compact mappings",
      "broken.yaml:2:7: document 1: not valid YAML or JSON: Implicit keys need to be on a single line",
      "missing.yaml: cannot read: ENOENT",
    ]);
  });

  it("reports a missing required field at its object, and a resource defined twice", async () => {
    const cwd = await folder({ "a.yaml": "kind: Route\nname: web\nservice: orders\n---\nkind: Service\nname: s\n---\nkind: Service\nname: s\n" });
    const { problems } = await read(cwd, ["a.yaml"]);
    expect(problems.map(formatProblem)).toEqual([
      'a.yaml:1:1: document 1 (Route "web"): backends: Invalid input: expected array, received undefined',
      'a.yaml:9:7: document 3 (Service "s"): name: Service "s" is defined twice (also in a.yaml, document 2)',
    ]);
  });

  it("places the control API's issues about the i-th document sent back in its file", async () => {
    const cwd = await folder({ "a.yaml": "kind: Service\nname: s\n---\nkind: Route\nname: web\nservice: nope\nbackends: [{service: nope}]\n" });
    const { resources } = await read(cwd, ["a.yaml"]);
    const placed = placeApiIssues([{ path: ["resources", 1, "service"], message: 'no service "nope"' }, { path: ["other"], message: "elsewhere" }], resources);
    expect(placed.map(formatProblem)).toEqual(['a.yaml:6:10: document 2 (Route "web"): service: no service "nope"', "(control API): other: elsewhere"]);
  });
});
