/**
 * `weft inject`: adds the Weft sidecar to Kubernetes workloads (Deployment, StatefulSet,
 * DaemonSet, ReplicaSet, Job, CronJob, Pod, and `List`s of them), as `linkerd inject` does:
 * the sidecar as a native sidecar (an init container with `restartPolicy: Always`, so the app
 * starts only once it is ready and a Job still completes), the projected ServiceAccount token
 * it proves its identity with, `HTTP_PROXY`/`http_proxy` on the app containers, and its ports
 * and probes. Injecting an injected manifest changes nothing; YAML keeps its comments, JSON
 * stays JSON.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import type { Command, Context } from "../command.ts";
import { CliError, EXIT, UsageError } from "../command.ts";
import { updateDocument } from "../yaml-update.ts";

/** The name of the sidecar container `weft inject` adds. */
export const PROXY_CONTAINER = "weft-proxy";

/** The name of the projected token volume. */
export const TOKEN_VOLUME = "weft-token";

/** The annotation marking an injected pod template (Linkerd's is `linkerd.io/inject`). */
export const INJECTED_ANNOTATION = "weft.io/inject";

/** The sidecar image injected by default. */
export const DEFAULT_IMAGE = "ghcr.io/weft-mesh/weft-sidecar:0.1.0";

/** The control plane's address inside the cluster, as `deploy/k8s/control-plane.yaml` names it. */
export const DEFAULT_SIDECAR_CONTROL_URL = "http://weft-control.weft-system.svc.cluster.local:8788";

/** The audience of the projected ServiceAccount token, as the control plane's cluster entry expects. */
export const DEFAULT_TOKEN_AUDIENCE = "weft";

/**
 * Lifetime asked for the projected token: 24 h, as Linkerd asks for its identity token
 * (`expirationSeconds: 86400`); the kubelet rewrites the file at 80 % of it.
 */
export const DEFAULT_TOKEN_EXPIRATION_S = 86_400;

/** Where the token is mounted: the sidecar's `DEFAULT_TOKEN_PATH` is `<dir>/weft-token`. */
const TOKEN_DIR = "/var/run/secrets/tokens";

/** The sidecar's outbound address the app's `HTTP_PROXY` names (SPEC.md section 8). */
const PROXY_URL = "http://127.0.0.1:4140";

/** Hosts the app reaches directly, never through the sidecar. */
const NO_PROXY_HOSTS = ["localhost", "127.0.0.1", "::1"];

/**
 * The user the sidecar runs as: 2102, linkerd2-proxy's UID (`proxy.uid`), so clusters that
 * already admit Linkerd's proxy admit this one.
 */
const PROXY_UID = 2102;

/** What to inject. */
export interface InjectOptions {
  image: string;
  controlUrl: string;
  trustDomain: string;
  tokenAudience: string;
  /** The service every injected workload is (default: per workload, see `serviceFor`). */
  service?: string;
  /** The app's port (default: per workload, its first container port). */
  appPort?: number;
}

/** What happened to one document. */
export interface InjectResult {
  kind: string;
  name: string;
  outcome: "injected" | "unchanged" | "skipped";
  /** Why it was skipped, or what the user should know. */
  notes: string[];
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/** The pod template spec of a workload document, or undefined for kinds that have none. */
function podSpecHolder(doc: Json): { template: Json; workload: Json } | undefined {
  const spec = doc.spec;
  if (!isObject(spec)) return undefined;
  switch (doc.kind) {
    case "Pod":
      return { template: doc, workload: doc };
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
    case "Job":
    case "ReplicationController":
      return isObject(spec.template) ? { template: spec.template, workload: doc } : undefined;
    case "CronJob": {
      const job = spec.jobTemplate;
      return isObject(job) && isObject(job.spec) && isObject(job.spec.template) ? { template: job.spec.template, workload: doc } : undefined;
    }
    default:
      return undefined;
  }
}

const metadataOf = (doc: Json): Json => {
  if (!isObject(doc.metadata)) doc.metadata = {};
  return doc.metadata as Json;
};

/**
 * The service a workload is: `--service`, else the `weft.io/service` annotation, else its
 * ServiceAccount's name, else the workload's name. The control plane lets a pod register
 * endpoints only for the service its ServiceAccount is named after.
 */
function serviceFor(workload: Json, template: Json, podSpec: Json, options: InjectOptions): string | undefined {
  if (options.service) return options.service;
  for (const holder of [template, workload]) {
    const annotations = (metadataOf(holder).annotations ?? {}) as Json;
    if (typeof annotations["weft.io/service"] === "string") return annotations["weft.io/service"];
  }
  if (typeof podSpec.serviceAccountName === "string" && podSpec.serviceAccountName !== "default") return podSpec.serviceAccountName;
  const name = metadataOf(workload).name;
  return typeof name === "string" ? name : undefined;
}

/** The first TCP container port of the app containers, or undefined. */
function appPortOf(containers: Json[]): number | undefined {
  for (const container of containers) {
    for (const port of (Array.isArray(container.ports) ? container.ports : []) as Json[]) {
      if (typeof port.containerPort === "number" && (port.protocol === undefined || port.protocol === "TCP")) return port.containerPort;
    }
  }
  return undefined;
}

/** The sidecar container. */
function proxyContainer(service: string, appPort: number | undefined, options: InjectOptions): Json {
  const env: Json[] = [
    { name: "WEFT_SERVICE", value: service },
    { name: "WEFT_CONTROL_URL", value: options.controlUrl },
    { name: "WEFT_TRUST_DOMAIN", value: options.trustDomain },
    { name: "WEFT_TOKEN_PATH", value: `${TOKEN_DIR}/${TOKEN_VOLUME}` },
    { name: "WEFT_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "WEFT_POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
  ];
  if (appPort !== undefined) env.push({ name: "WEFT_APP_PORT", value: String(appPort) });
  const probe = (path: string, extra: Json = {}) => ({ httpGet: { path, port: "weft-admin" }, ...extra });
  return {
    name: PROXY_CONTAINER,
    image: options.image,
    // A native sidecar (Kubernetes 1.29+): started before the app, stopped after it.
    restartPolicy: "Always",
    env,
    ports: [
      { name: "weft-inbound", containerPort: 4143, protocol: "TCP" },
      { name: "weft-admin", containerPort: 4191, protocol: "TCP" },
    ],
    // The app containers start only once this passes: calls made at startup find the mesh ready.
    startupProbe: probe("/ready", { periodSeconds: 1, failureThreshold: 120 }),
    readinessProbe: probe("/ready", { periodSeconds: 5 }),
    livenessProbe: probe("/live", { periodSeconds: 10 }),
    resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "128Mi" } },
    securityContext: {
      runAsUser: PROXY_UID,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [{ name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true }],
  };
}

/** A container's `env` list, made when absent. */
function envOf(container: Json): Json[] {
  return (Array.isArray(container.env) ? container.env : (container.env = [])) as Json[];
}

/** Where an env entry's value comes from: its `valueFrom` reference, else its `value` ("" when unset, as Kubernetes does). */
function sourceOf(entry: Json): Json {
  return entry.valueFrom !== undefined ? { valueFrom: structuredClone(entry.valueFrom) } : { value: typeof entry.value === "string" ? entry.value : "" };
}

const sameSource = (a: Json, b: Json) => JSON.stringify(sourceOf(a)) === JSON.stringify(sourceOf(b));

/** Sets env entry `name` from `source`, changing an existing entry in place (so its comments stay). */
function setEnv(env: Json[], name: string, source: Json): void {
  const entry = env.find((e) => e.name === name);
  if (entry === undefined) return void env.push({ name, ...source });
  if (sameSource(entry, source)) return;
  delete entry.value;
  delete entry.valueFrom;
  Object.assign(entry, source);
}

/**
 * Points `HTTP_PROXY` and `http_proxy` at the sidecar, or, where the container names its own
 * proxy in either, keeps that proxy and gives the other name the same. The two must agree:
 * curl reads only `http_proxy`, Python and undici's `EnvHttpProxyAgent` prefer it, Go's
 * `net/http` reads `HTTP_PROXY` first, so a pair that disagrees sends one client through the
 * sidecar and another past it. Returns a note for the user, if any.
 */
function ensureHttpProxy(container: Json): string | undefined {
  const env = envOf(container);
  const entries = ["HTTP_PROXY", "http_proxy"].map((name) => env.find((e) => e.name === name));
  const own = entries.filter((e): e is Json => e !== undefined && !(e.value === PROXY_URL && e.valueFrom === undefined));
  const where = `container ${String(container.name)}`;
  if (own.length === 2 && !sameSource(own[0]!, own[1]!)) return `${where} sets HTTP_PROXY and http_proxy to different proxies; both are kept, and its calls bypass the sidecar`;
  const source = own[0] === undefined ? { value: PROXY_URL } : sourceOf(own[0]);
  setEnv(env, "HTTP_PROXY", source);
  setEnv(env, "http_proxy", source);
  if (own[0] === undefined) return undefined;
  const other = own[0].name === "HTTP_PROXY" ? "http_proxy" : "HTTP_PROXY";
  return `${where} keeps its own ${String(own[0].name)} (${other} set to match), so its calls bypass the sidecar`;
}

/**
 * Adds localhost to `NO_PROXY` and `no_proxy`, keeping every host either lists, and sets both
 * to the same list (for the reason in `ensureHttpProxy`). A list read from a reference
 * (`valueFrom`) cannot be added to: it is kept, and the user is told. Returns a note, if any.
 */
function ensureNoProxy(container: Json): string | undefined {
  const env = envOf(container);
  const entries = ["NO_PROXY", "no_proxy"].map((name) => env.find((e) => e.name === name));
  const referenced = entries.find((e) => e?.valueFrom !== undefined);
  if (referenced !== undefined) {
    const other = entries.find((e) => e !== referenced);
    if (other === undefined) setEnv(env, referenced.name === "NO_PROXY" ? "no_proxy" : "NO_PROXY", sourceOf(referenced));
    return `container ${String(container.name)} reads ${String(referenced.name)} from a reference (valueFrom): add ${NO_PROXY_HOSTS.join(",")} to it, and keep NO_PROXY and no_proxy alike`;
  }
  const hosts: string[] = [];
  for (const entry of [...entries, { value: NO_PROXY_HOSTS.join(",") }]) {
    if (typeof entry?.value !== "string") continue;
    for (const host of entry.value.split(",").map((h) => h.trim())) if (host && !hosts.includes(host)) hosts.push(host);
  }
  setEnv(env, "NO_PROXY", { value: hosts.join(",") });
  setEnv(env, "no_proxy", { value: hosts.join(",") });
  return undefined;
}

/** Injects one pod template in place; returns notes for the user. */
function injectTemplate(workload: Json, template: Json, options: InjectOptions): { notes: string[]; error?: string } {
  const podSpec = template.spec as Json;
  const containers = (Array.isArray(podSpec.containers) ? podSpec.containers : []) as Json[];
  if (containers.length === 0) return { notes: [], error: "it has no containers" };
  if (podSpec.hostNetwork === true) return { notes: [], error: "it uses the host network, where the sidecar's ports would clash" };
  const notes: string[] = [];
  const service = serviceFor(workload, template, podSpec, options);
  if (!service || !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(service)) return { notes: [], error: `"${String(service)}" is not a service name (a DNS label); give one with --service` };
  const appPort = options.appPort ?? appPortOf(containers);
  if (appPort === undefined) notes.push("no container port: the pod only calls out (no inbound traffic, no endpoint registered)");

  if (podSpec.serviceAccountName === undefined || podSpec.serviceAccountName === "default") {
    podSpec.serviceAccountName = service;
    notes.push(`runs as ServiceAccount "${service}" (its identity names the service); create it if it does not exist`);
  } else if (podSpec.serviceAccountName !== service) {
    notes.push(`ServiceAccount "${String(podSpec.serviceAccountName)}" differs from service "${service}": the control plane will refuse its endpoint registration`);
  }
  if (podSpec.automountServiceAccountToken === false) notes.push("keeps automountServiceAccountToken: false (the sidecar uses its own projected token)");

  // The sidecar first among init containers, so the other init containers can use the mesh.
  const init = ((Array.isArray(podSpec.initContainers) ? podSpec.initContainers : []) as Json[]).filter((c) => c.name !== PROXY_CONTAINER);
  podSpec.initContainers = [proxyContainer(service, appPort, options), ...init];

  const volumes = ((Array.isArray(podSpec.volumes) ? podSpec.volumes : []) as Json[]).filter((v) => v.name !== TOKEN_VOLUME);
  volumes.push({
    name: TOKEN_VOLUME,
    projected: { sources: [{ serviceAccountToken: { path: TOKEN_VOLUME, audience: options.tokenAudience, expirationSeconds: DEFAULT_TOKEN_EXPIRATION_S } }] },
  });
  podSpec.volumes = volumes;

  for (const container of containers) {
    for (const note of [ensureHttpProxy(container), ensureNoProxy(container)]) if (note) notes.push(note);
  }

  const metadata = metadataOf(template);
  const annotations = (isObject(metadata.annotations) ? metadata.annotations : (metadata.annotations = {})) as Json;
  annotations[INJECTED_ANNOTATION] = "enabled";
  annotations["weft.io/service"] = service;
  // `kubectl logs` and `exec` pick the app, not the sidecar, when no container is named.
  annotations["kubectl.kubernetes.io/default-container"] ??= containers[0]!.name;
  return { notes };
}

/** Injects one parsed document in place (recursing into `List`s); returns what happened to each workload. */
export function injectDocument(doc: unknown, options: InjectOptions): InjectResult[] {
  if (!isObject(doc)) return [];
  if (doc.kind === "List" && Array.isArray(doc.items)) return doc.items.flatMap((item) => injectDocument(item, options));
  const kind = typeof doc.kind === "string" ? doc.kind : "(no kind)";
  const name = String((isObject(doc.metadata) && doc.metadata.name) || "(no name)");
  const holder = podSpecHolder(doc);
  if (!holder || !isObject(holder.template.spec)) return [{ kind, name, outcome: "skipped", notes: ["not a workload with a pod template"] }];
  const before = JSON.stringify(doc);
  const { notes, error } = injectTemplate(holder.workload, holder.template, options);
  if (error) return [{ kind, name, outcome: "skipped", notes: [error] }];
  return [{ kind, name, outcome: JSON.stringify(doc) === before ? "unchanged" : "injected", notes }];
}

/** A document that could not be read. */
export class ManifestError extends Error {}

/** What `injectManifests` makes of a text. */
export interface InjectedText {
  output: string;
  results: InjectResult[];
  /** The text's format, which the output keeps. */
  format: "json" | "yaml";
}

/**
 * A JSON text (what `kubectl get -o json` prints), with the indentation it uses, or undefined
 * for anything else (YAML, several JSON documents, or not well-formed).
 */
function parseJson(text: string): { value: unknown; indent: string | undefined } | undefined {
  const first = text.trimStart()[0];
  if (first !== "{" && first !== "[") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  // The first indented line gives the indent; a text on one line stays on one line.
  const indent = /\n([ \t]+)\S/.exec(text)?.[1] ?? (text.trim().includes("\n") ? "  " : undefined);
  return { value, indent };
}

/**
 * Injects every document of a YAML or JSON text and returns the new text in the same format.
 * YAML: documents separated by `---`, each written back into its own parse tree, so comments,
 * quoting, flow style and anchors stay wherever the data did not change; documents that are
 * not workloads pass through as they were. JSON (one document) comes back as JSON, indented
 * as it came.
 */
export function injectManifests(text: string, options: InjectOptions, source = "-"): InjectedText {
  const json = parseJson(text);
  if (json !== undefined) {
    const results = injectDocument(json.value, options);
    return { output: `${JSON.stringify(json.value, null, json.indent)}\n`, results, format: "json" };
  }
  const documents = parseAllDocuments(text);
  const results: InjectResult[] = [];
  const parts: string[] = [];
  documents.forEach((document, index) => {
    if (document.errors.length) {
      const first = document.errors[0]!;
      const line = first.linePos?.[0]?.line;
      throw new ManifestError(`${source}${line ? `:${line}` : ""}: document ${index + 1}: ${first.message.split("\n")[0]}`);
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) {
      // A document of comments only keeps its comments.
      if (document.commentBefore || document.comment) parts.push(document.toString({ directives: false }));
      return;
    }
    results.push(...injectDocument(value, options));
    updateDocument(document, value);
    // The `---` between documents is written below, so each document's own marker is not.
    parts.push(document.toString({ directives: false, lineWidth: 0 }));
  });
  return { output: parts.join("---\n"), results, format: "yaml" };
}

/** The options from the command line. */
function optionsOf(ctx: Context): InjectOptions {
  const value = (name: string) => (typeof ctx.values[name] === "string" ? (ctx.values[name] as string) : undefined);
  const options: InjectOptions = {
    image: value("image") ?? DEFAULT_IMAGE,
    controlUrl: value("sidecar-control-url") ?? DEFAULT_SIDECAR_CONTROL_URL,
    trustDomain: value("trust-domain") ?? "cluster.local",
    tokenAudience: value("token-audience") ?? DEFAULT_TOKEN_AUDIENCE,
  };
  const service = value("service");
  if (service !== undefined) {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(service)) throw new UsageError(`--service must be a DNS label such as "orders" (got "${service}")`);
    options.service = service;
  }
  const port = value("app-port");
  if (port !== undefined) {
    if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new UsageError(`--app-port must be a port number (got "${port}")`);
    options.appPort = Number(port);
  }
  try {
    const url = new URL(options.controlUrl);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error();
  } catch {
    throw new UsageError(`--sidecar-control-url must be an http(s) URL (got "${options.controlUrl}")`);
  }
  return options;
}

async function run(ctx: Context): Promise<number> {
  const options = optionsOf(ctx);
  const files = [...((ctx.values.filename as string[] | undefined) ?? []), ...ctx.positionals];
  if (files.length === 0) throw new UsageError("give the manifests as FILE arguments (or - for standard input)");
  const outputs: InjectedText[] = [];
  let skippedAll = true;
  for (const file of files) {
    let text: string;
    try {
      text = file === "-" ? await ctx.io.readStdin() : await readFile(resolve(ctx.io.cwd, file), "utf8");
    } catch (error) {
      throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
    }
    let injected;
    try {
      injected = injectManifests(text, options, file);
    } catch (error) {
      if (error instanceof ManifestError) throw new CliError(`${error.message}; nothing was written`);
      throw error;
    }
    if (injected.output) outputs.push(injected);
    for (const result of injected.results) {
      if (result.outcome !== "skipped") skippedAll = false;
      const line = `${result.kind.toLowerCase()} "${result.name}" ${result.outcome}`;
      const paint = result.outcome === "skipped" ? ctx.errStyle.dim : result.outcome === "injected" ? ctx.errStyle.green : ctx.errStyle.cyan;
      ctx.io.stderr.write(`${paint(line)}${result.notes.length ? `: ${result.notes.join("; ")}` : ""}\n`);
    }
  }
  // JSON files alone make a stream of JSON documents (as kubectl and jq read them); with any
  // YAML, the documents are joined as a YAML stream, which JSON documents are part of too.
  const allJson = outputs.every((o) => o.format === "json");
  ctx.io.stdout.write(outputs.map((o) => o.output).join(allJson ? "" : "---\n"));
  if (skippedAll) ctx.io.stderr.write(ctx.errStyle.yellow("no workload was injected\n"));
  return EXIT.ok;
}

/** `weft inject`. */
export const command: Command = {
  name: "inject",
  usage: ["inject FILE|- [FILE ...] [flags]"],
  description: `Adds the Weft sidecar to the Kubernetes workloads in the files and prints the
result: Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and Pods, in YAML
or JSON, several documents per file (or a List). The sidecar becomes a native sidecar (an init
container with restartPolicy Always: the app starts once it is ready, and a Job still
completes), with a projected ServiceAccount token for its identity, and the app containers get
HTTP_PROXY and http_proxy=http://127.0.0.1:4140, and localhost in NO_PROXY and no_proxy. Each
pair is kept alike: a container's own proxy in either name is kept and copied to the other, and
both NO_PROXY lists get the hosts either had. Other documents pass through as they are. YAML
comments stay; JSON input gives JSON output. Injecting an injected manifest changes nothing.`,
  options: {
    filename: { type: "string", short: "f", multiple: true, value: "FILE", description: "a manifest file, or - for standard input (same as a FILE argument)" },
    service: { type: "string", value: "NAME", description: "the service the workloads are (default: weft.io/service annotation, ServiceAccount, or workload name)" },
    "app-port": { type: "string", value: "PORT", description: "the app's port for inbound traffic (default: the first container port)" },
    image: { type: "string", value: "IMAGE", description: `the sidecar image (default ${DEFAULT_IMAGE})` },
    "sidecar-control-url": { type: "string", value: "URL", description: `the control plane as pods reach it (default ${DEFAULT_SIDECAR_CONTROL_URL})` },
    "trust-domain": { type: "string", value: "DOMAIN", description: "the mesh's trust domain (default cluster.local)" },
    "token-audience": { type: "string", value: "AUD", description: `audience of the projected ServiceAccount token (default ${DEFAULT_TOKEN_AUDIENCE})` },
  },
  examples: [
    ["weft inject deploy.yaml | kubectl apply -f -", "Inject a file and apply it"],
    ["kubectl get deploy -o yaml | weft inject - | kubectl apply -f -", "Inject what runs already"],
    ["weft inject --service orders --app-port 8080 orders.yaml", "Name the service and port"],
  ],
  run,
};
