import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import type { Context, Io } from "../command.ts";
import { createStyle } from "../output.ts";
import { DEFAULT_SIDECAR_CONTROL_URL, PROXY_CONTAINER, command, injectManifests, type InjectOptions } from "./inject.ts";

const OPTIONS: InjectOptions = { image: "weft/sidecar:test", controlUrl: DEFAULT_SIDECAR_CONTROL_URL, trustDomain: "cluster.local", tokenAudience: "weft" };

const DEPLOYMENT = `# the web front end
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: example/web:1.0
          ports:
            - containerPort: 8080
          env:
            - name: NO_PROXY
              value: internal.example
`;

const STATEFULSET = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: ledger
spec:
  serviceName: ledger
  selector:
    matchLabels: { app: ledger }
  template:
    metadata:
      labels: { app: ledger }
    spec:
      serviceAccountName: ledger
      initContainers:
        - name: migrate
          image: example/ledger:1.0
          command: [ledger, migrate]
      containers:
        - name: ledger
          image: example/ledger:1.0
          ports: [{ containerPort: 9000, name: http }]
`;

const JOB = `apiVersion: batch/v1
kind: Job
metadata:
  name: nightly-report
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: report
          image: example/report:1.0
          env:
            - name: HTTP_PROXY
              value: http://corporate-proxy:3128
`;

const MULTI = `apiVersion: v1
kind: Service
metadata:
  name: orders
spec:
  selector: { app: orders }
  ports:
    - port: 80
      targetPort: weft-inbound
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  annotations:
    weft.io/service: orders
spec:
  selector:
    matchLabels: { app: orders }
  template:
    metadata:
      labels: { app: orders }
    spec:
      containers:
        - name: orders
          image: example/orders:1.0
          ports: [{ containerPort: 3000 }]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: orders-settings
data:
  LOG_LEVEL: info
`;

const docs = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as any);
const podSpecOf = (doc: any) => (doc.kind === "CronJob" ? doc.spec.jobTemplate.spec.template.spec : doc.spec.template.spec);
const envOf = (container: any) => Object.fromEntries((container.env ?? []).map((e: any) => [e.name, e.value ?? e.valueFrom]));

describe("weft inject", () => {
  it("adds the sidecar to a Deployment as a native sidecar, with its token, ports, probes and the app's HTTP_PROXY", () => {
    const { output, results } = injectManifests(DEPLOYMENT, OPTIONS);
    expect(results).toEqual([expect.objectContaining({ kind: "Deployment", name: "web", outcome: "injected" })]);
    const spec = podSpecOf(docs(output)[0]);
    const proxy = spec.initContainers[0];
    expect(proxy).toMatchObject({ name: PROXY_CONTAINER, image: "weft/sidecar:test", restartPolicy: "Always" });
    expect(proxy.startupProbe.httpGet).toEqual({ path: "/ready", port: "weft-admin" });
    expect(proxy.ports.map((p: any) => p.containerPort)).toEqual([4143, 4191]);
    expect(envOf(proxy)).toMatchObject({
      WEFT_SERVICE: "web",
      WEFT_APP_PORT: "8080",
      WEFT_CONTROL_URL: DEFAULT_SIDECAR_CONTROL_URL,
      WEFT_POD_IP: { fieldRef: { fieldPath: "status.podIP" } },
      WEFT_TOKEN_PATH: "/var/run/secrets/tokens/weft-token",
    });
    expect(spec.volumes).toContainEqual({
      name: "weft-token",
      projected: { sources: [{ serviceAccountToken: { path: "weft-token", audience: "weft", expirationSeconds: 86400 } }] },
    });
    expect(proxy.volumeMounts).toEqual([{ name: "weft-token", mountPath: "/var/run/secrets/tokens", readOnly: true }]);
    expect(spec.serviceAccountName).toBe("web");
    const app = envOf(spec.containers[0]);
    expect(app.HTTP_PROXY).toBe("http://127.0.0.1:4140");
    expect(app.http_proxy).toBe("http://127.0.0.1:4140");
    // The app's own NO_PROXY keeps its entries and gains localhost.
    expect(app.NO_PROXY).toBe("internal.example,localhost,127.0.0.1,::1");
    expect(docs(output)[0].spec.template.metadata.annotations).toMatchObject({ "weft.io/inject": "enabled", "kubectl.kubernetes.io/default-container": "web" });
  });

  it("changes nothing when run on its own output", () => {
    for (const manifest of [DEPLOYMENT, STATEFULSET, JOB, MULTI]) {
      const once = injectManifests(manifest, OPTIONS);
      const twice = injectManifests(once.output, OPTIONS);
      expect(twice.output).toBe(once.output);
      expect(twice.results.filter((r) => r.outcome === "injected")).toEqual([]);
    }
  });

  it("puts the sidecar before a StatefulSet's own init containers and keeps its ServiceAccount", () => {
    const spec = podSpecOf(docs(injectManifests(STATEFULSET, OPTIONS).output)[0]);
    expect(spec.initContainers.map((c: any) => c.name)).toEqual([PROXY_CONTAINER, "migrate"]);
    expect(spec.serviceAccountName).toBe("ledger");
    expect(envOf(spec.initContainers[0]).WEFT_APP_PORT).toBe("9000");
  });

  it("lets a Job complete: its restart policy stays, and a pod with no port only calls out", () => {
    const { output, results } = injectManifests(JOB, OPTIONS);
    const spec = podSpecOf(docs(output)[0]);
    expect(spec.restartPolicy).toBe("Never");
    expect(spec.initContainers[0].restartPolicy).toBe("Always");
    expect(envOf(spec.initContainers[0]).WEFT_APP_PORT).toBeUndefined();
    expect(results[0]!.notes.join(" ")).toContain("no container port");
    // A proxy the app already names is left alone, and the user is told.
    expect(envOf(spec.containers[0]).HTTP_PROXY).toBe("http://corporate-proxy:3128");
    expect(results[0]!.notes.join(" ")).toContain("keeps its own HTTP_PROXY");
  });

  describe("keeps each upper/lower-case pair of proxy variables alike", () => {
    const withEnv = (env: unknown[]) =>
      JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name: "app" }, spec: { containers: [{ name: "app", image: "x", env }] } });
    const appEnv = (text: string) => envOf(docs(injectManifests(text, OPTIONS).output)[0].spec.containers[0]);

    it("a container's own HTTP_PROXY covers http_proxy too, and its own http_proxy covers HTTP_PROXY", () => {
      // The Job sets HTTP_PROXY only: curl, which reads http_proxy only, must not reach the sidecar instead.
      const job = envOf(podSpecOf(docs(injectManifests(JOB, OPTIONS).output)[0]).containers[0]);
      expect(job.http_proxy).toBe("http://corporate-proxy:3128");
      expect(appEnv(withEnv([{ name: "http_proxy", value: "http://squid:3128" }]))).toMatchObject({ HTTP_PROXY: "http://squid:3128", http_proxy: "http://squid:3128" });
      const ref = { configMapKeyRef: { name: "proxy", key: "url" } };
      expect(appEnv(withEnv([{ name: "HTTP_PROXY", valueFrom: ref }]))).toMatchObject({ HTTP_PROXY: ref, http_proxy: ref });
      // An http_proxy an older inject pointed at the sidecar beside the app's own HTTP_PROXY follows the app's.
      expect(appEnv(withEnv([{ name: "HTTP_PROXY", value: "http://squid:3128" }, { name: "http_proxy", value: "http://127.0.0.1:4140" }]))).toMatchObject({ http_proxy: "http://squid:3128" });
    });

    it("leaves a pair the container sets to two different proxies as it is, and says so", () => {
      const { output, results } = injectManifests(withEnv([{ name: "HTTP_PROXY", value: "http://a:1" }, { name: "http_proxy", value: "http://b:2" }]), OPTIONS);
      expect(envOf(docs(output)[0].spec.containers[0])).toMatchObject({ HTTP_PROXY: "http://a:1", http_proxy: "http://b:2" });
      expect(results[0]!.notes.join(" ")).toContain("different proxies");
    });

    it("NO_PROXY additions go into both, with the hosts either listed", () => {
      const web = envOf(podSpecOf(docs(injectManifests(DEPLOYMENT, OPTIONS).output)[0]).containers[0]);
      expect(web.no_proxy).toBe("internal.example,localhost,127.0.0.1,::1");
      expect(appEnv(withEnv([{ name: "NO_PROXY", value: "internal" }, { name: "no_proxy", value: ".svc, internal" }]))).toMatchObject({
        NO_PROXY: "internal,.svc,localhost,127.0.0.1,::1",
        no_proxy: "internal,.svc,localhost,127.0.0.1,::1",
      });
      const ref = { secretKeyRef: { name: "proxy", key: "no" } };
      const { output, results } = injectManifests(withEnv([{ name: "no_proxy", valueFrom: ref }]), OPTIONS);
      expect(envOf(docs(output)[0].spec.containers[0])).toMatchObject({ NO_PROXY: ref, no_proxy: ref });
      expect(results[0]!.notes.join(" ")).toContain("add localhost,127.0.0.1,::1 to it");
    });
  });

  it("keeps YAML comments, quoting and flow style where the data did not change", () => {
    const commented = `# the web front end, owned by the shop team
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web # also its service name
spec:
  replicas: 2
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      # the app itself
      containers:
        - name: web
          image: "example/web:1.0" # pinned; bump with care
          ports:
            - containerPort: 8080 # plain HTTP
          env:
            # corporate hosts stay off the proxy
            - name: NO_PROXY
              value: internal.example # and the mesh's localhost
            - name: LOG_LEVEL
              value: info
---
# settings, passed through
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-settings
data:
  LOG_LEVEL: 'info' # quoted on purpose
`;
    const { output, results } = injectManifests(commented, OPTIONS);
    expect(results.map((r) => r.outcome)).toEqual(["injected", "skipped"]);
    for (const comment of [
      "# the web front end, owned by the shop team",
      "name: web # also its service name",
      "# the app itself",
      'image: "example/web:1.0" # pinned; bump with care',
      "containerPort: 8080 # plain HTTP",
      "# corporate hosts stay off the proxy",
      "# and the mesh's localhost",
      "# settings, passed through",
      "LOG_LEVEL: 'info' # quoted on purpose",
      "matchLabels: { app: web }",
    ]) {
      expect(output).toContain(comment);
    }
    // The data is what injecting the same manifest without comments gives.
    const plain = commented.replace(/ ?#.*$/gm, "");
    expect(docs(output)).toEqual(docs(injectManifests(plain, OPTIONS).output));
    expect(output.match(/^---$/gm)).toHaveLength(1);
    expect(injectManifests(output, OPTIONS).output).toBe(output);
  });

  it("writes JSON for JSON input, indented as it came", () => {
    const deployment = docs(DEPLOYMENT)[0];
    for (const indent of [4, 2, "\t"]) {
      const { output, format } = injectManifests(JSON.stringify(deployment, null, indent), OPTIONS);
      expect(format).toBe("json");
      const parsed = JSON.parse(output);
      expect(output).toBe(`${JSON.stringify(parsed, null, indent)}\n`);
      expect(parsed).toEqual(docs(injectManifests(DEPLOYMENT, OPTIONS).output)[0]);
    }
    const compact = injectManifests(JSON.stringify(deployment), OPTIONS).output;
    expect(compact.trimEnd()).not.toContain("\n");
    expect(JSON.parse(compact).spec.template.spec.initContainers[0].name).toBe(PROXY_CONTAINER);
  });

  it("injects the workloads of a multi-document file and passes the other documents through", () => {
    const { output, results } = injectManifests(MULTI, OPTIONS);
    expect(results.map((r) => `${r.kind}/${r.name}:${r.outcome}`)).toEqual(["Service/orders:skipped", "Deployment/orders:injected", "ConfigMap/orders-settings:skipped"]);
    const [service, deployment, config] = docs(output);
    expect(service).toEqual(docs(MULTI)[0]);
    expect(config).toEqual(docs(MULTI)[2]);
    expect(envOf(podSpecOf(deployment).initContainers[0]).WEFT_SERVICE).toBe("orders");
  });

  it("injects CronJobs, bare Pods and the items of a List", () => {
    const list = {
      apiVersion: "v1",
      kind: "List",
      items: [
        { apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "sweep" }, spec: { schedule: "*/5 * * * *", jobTemplate: { spec: { template: { spec: { restartPolicy: "OnFailure", containers: [{ name: "sweep", image: "x" }] } } } } } },
        { apiVersion: "v1", kind: "Pod", metadata: { name: "debug" }, spec: { containers: [{ name: "debug", image: "x", ports: [{ containerPort: 80 }] }] } },
      ],
    };
    const { output, results } = injectManifests(JSON.stringify(list), OPTIONS);
    expect(results.map((r) => r.outcome)).toEqual(["injected", "injected"]);
    const [injected] = docs(output);
    expect(podSpecOf(injected.items[0]).initContainers[0].name).toBe(PROXY_CONTAINER);
    expect(injected.items[1].spec.initContainers[0].name).toBe(PROXY_CONTAINER);
  });

  it("refuses to inject a pod on the host network, and names a bad document's line", () => {
    const host = DEPLOYMENT.replace("      containers:", "      hostNetwork: true\n      containers:");
    expect(injectManifests(host, OPTIONS).results[0]).toMatchObject({ outcome: "skipped", notes: [expect.stringContaining("host network")] });
    expect(() => injectManifests("kind: Deployment\nmetadata: [unclosed\n", OPTIONS, "bad.yaml")).toThrow(/^bad\.yaml:\d+: document 1:/);
  });

  describe("as a command", () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-inject-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const contextFor = (positionals: string[], values: Record<string, string> = {}, stdin = "") => {
      const out: string[] = [];
      const err: string[] = [];
      const io = {
        stdout: { write: (t: string) => void out.push(t), isTTY: false },
        stderr: { write: (t: string) => void err.push(t), isTTY: false },
        readStdin: async () => stdin,
        env: {},
        cwd: dir,
        home: dir,
      } as unknown as Io;
      const ctx = { io, values, positionals, style: createStyle(false), errStyle: createStyle(false) } as unknown as Context;
      return { ctx, out, err };
    };

    it("reads files and standard input, prints the injected manifests, and reports each workload", async () => {
      writeFileSync(join(dir, "web.yaml"), DEPLOYMENT);
      const { ctx, out, err } = contextFor(["web.yaml", "-"], { image: "weft/sidecar:9", service: "storefront" }, JOB);
      expect(await command.run(ctx)).toBe(0);
      const written = docs(out.join(""));
      expect(written.map((d) => d.kind)).toEqual(["Deployment", "Job"]);
      expect(envOf(podSpecOf(written[0]).initContainers[0])).toMatchObject({ WEFT_SERVICE: "storefront" });
      expect(podSpecOf(written[1]).initContainers[0].image).toBe("weft/sidecar:9");
      expect(err.join("")).toContain('deployment "web" injected');
      expect(err.join("")).toContain('job "nightly-report" injected');
    });

    it("prints JSON files as a stream of JSON documents, and JSON among YAML as a YAML stream", async () => {
      writeFileSync(join(dir, "a.json"), JSON.stringify(docs(DEPLOYMENT)[0], null, 2));
      writeFileSync(join(dir, "b.json"), JSON.stringify(docs(JOB)[0], null, 2));
      writeFileSync(join(dir, "c.yaml"), STATEFULSET);
      const json = contextFor(["a.json", "b.json"]);
      expect(await command.run(json.ctx)).toBe(0);
      const text = json.out.join("");
      expect(text.startsWith("{\n")).toBe(true);
      const split = text.indexOf("}\n{") + 2;
      expect([JSON.parse(text.slice(0, split)).kind, JSON.parse(text.slice(split)).kind]).toEqual(["Deployment", "Job"]);
      const mixed = contextFor(["a.json", "c.yaml"]);
      expect(await command.run(mixed.ctx)).toBe(0);
      expect(docs(mixed.out.join("")).map((d) => d.kind)).toEqual(["Deployment", "StatefulSet"]);
    });

    it("answers a bad flag or a missing file with an error, writing nothing", async () => {
      await expect(command.run(contextFor(["web.yaml"], { "app-port": "http" }).ctx)).rejects.toThrow(/--app-port/);
      await expect(command.run(contextFor([]).ctx)).rejects.toThrow(/give the manifests/);
      const missing = contextFor(["nope.yaml"]);
      await expect(command.run(missing.ctx)).rejects.toThrow(/cannot read nope\.yaml: ENOENT/);
      expect(missing.out).toEqual([]);
    });
  });
});
