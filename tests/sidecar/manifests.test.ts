/**
 * The Kubernetes side checked against Kubernetes' own schemas (the OpenAPI schemas that
 * `kubernetes-models` validates with): `weft inject` output for real manifests, and every
 * manifest under deploy/k8s.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { DaemonSet, Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { CronJob, Job } from "kubernetes-models/batch/v1";
import { ConfigMap, Namespace, PersistentVolumeClaim, Pod, Service, ServiceAccount } from "kubernetes-models/v1";
import { DEFAULT_SIDECAR_CONTROL_URL, injectManifests } from "../../cli/commands/inject.ts";

const ROOT = resolve(import.meta.dirname, "../..");

/** The model class of each kind we write, by apiVersion and kind. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "apps/v1/DaemonSet": DaemonSet,
  "batch/v1/Job": Job,
  "batch/v1/CronJob": CronJob,
  "v1/Pod": Pod,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": ClusterRoleBinding,
};

/** Validates one Kubernetes object; throws naming the document and the schema's complaint. */
function validate(doc: any, where: string): void {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) throw new Error(`${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
  try {
    new Model(doc).validate();
  } catch (error) {
    throw new Error(`${where} (${doc.kind} ${doc.metadata?.name}): ${(error as Error).message}`);
  }
}

const kubernetesDocs = (text: string) => parseAllDocuments(text).map((d) => d.toJS()).filter((d) => d && d.apiVersion);

const OPTIONS = { image: "ghcr.io/weft-mesh/weft-sidecar:0.1.0", controlUrl: DEFAULT_SIDECAR_CONTROL_URL, trustDomain: "cluster.local", tokenAudience: "weft" };

const FIXTURES = {
  deployment: `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: web
          image: example/web:1
          ports: [{ containerPort: 8080 }]
`,
  statefulset: `apiVersion: apps/v1
kind: StatefulSet
metadata: { name: ledger }
spec:
  serviceName: ledger
  selector: { matchLabels: { app: ledger } }
  template:
    metadata: { labels: { app: ledger } }
    spec:
      serviceAccountName: ledger
      containers: [{ name: ledger, image: example/ledger:1, ports: [{ containerPort: 9000 }] }]
  volumeClaimTemplates:
    - metadata: { name: data }
      spec: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 1Gi } } }
`,
  job: `apiVersion: batch/v1
kind: Job
metadata: { name: report }
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{ name: report, image: example/report:1, command: [report] }]
`,
};

describe("Kubernetes schemas", () => {
  it("reject a malformed workload, so a pass below means something", () => {
    const broken = kubernetesDocs(FIXTURES.deployment)[0];
    broken.spec.template.spec.containers[0].ports[0].containerPort = "eighty";
    expect(() => validate(broken, "broken")).toThrow();
    const noContainers = kubernetesDocs(FIXTURES.job)[0];
    delete noContainers.spec.template.spec.containers;
    expect(() => validate(noContainers, "broken")).toThrow();
  });

  it("accept what weft inject makes of a Deployment, a StatefulSet, a Job and a multi-document file, injected twice", () => {
    const multi = [FIXTURES.deployment, readFileSync(join(ROOT, "deploy/k8s/example/app.yaml"), "utf8"), FIXTURES.job].join("\n---\n");
    for (const [name, text] of [...Object.entries(FIXTURES), ["multi", multi] as const]) {
      const once = injectManifests(text, OPTIONS);
      const docs = kubernetesDocs(once.output);
      expect(docs.length).toBeGreaterThan(0);
      for (const doc of docs) validate(doc, name);
      expect(injectManifests(once.output, OPTIONS).output).toBe(once.output);
    }
  });

  it("accept every manifest under deploy/k8s", () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/\.ya?ml$/.test(entry.name)) files.push(path);
      }
    };
    walk(join(ROOT, "deploy/k8s"));
    let checked = 0;
    for (const file of files) {
      for (const doc of kubernetesDocs(readFileSync(file, "utf8"))) {
        validate(doc, file);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(10);
  });
});
