/**
 * The control worker in workerd, locally: snapshot reads per second, write latency, and the
 * time from a write to a waiting long-poll's answer (propagation). Baselines from the same
 * run: a bare round trip through the worker (an unknown path: no Durable Object call) for
 * reads, and a no-op write (same body again: through the store, nothing committed) for writes.
 * Run: `sh scripts/node.sh node bench/control.ts`.
 */
import { startControl } from "../workers/control/local.ts";

const ADMIN = "bench-admin-secret";
const READS = 1_500;
const READ_CONCURRENCY = 8;
const WRITES = 200;
const PROPAGATIONS = 150;

const control = await startControl({ adminToken: ADMIN, port: 0 });
const headers = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
const call = async (method: string, path: string, body?: unknown, extra: Record<string, string> = {}) => {
  const response = await fetch(control.url + path, { method, headers: { ...headers, ...extra }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, etag: response.headers.get("etag"), text };
};

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const stats = (samples: number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
};
const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** Requests per second of `path` with `READ_CONCURRENCY` callers. */
async function throughput(path: string, expected: number): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: READ_CONCURRENCY }, async () => {
      while (next++ < READS) {
        const answer = await call("GET", path);
        if (answer.status !== expected) throw new Error(`GET ${path}: ${answer.status}`);
      }
    }),
  );
  return READS / ((performance.now() - start) / 1000);
}

try {
  // A mesh of 50 services with a route each, so the snapshot is of a realistic size.
  await call("POST", "/v1/apply", {
    resources: Array.from({ length: 50 }, (_, i) => [
      { kind: "Service", name: `svc-${i}`, endpoints: [{ id: "e1", address: `http://10.0.${i}.1:8080` }, { id: "e2", address: `http://10.0.${i}.2:8080` }] },
      { kind: "Route", name: `route-${i}`, service: `svc-${i}`, matches: [{ path: { type: "PathPrefix", value: `/api/${i}` } }], backends: [{ service: `svc-${i}` }] },
    ]).flat(),
  });
  const snapshotBytes = (await call("GET", "/v1/snapshot")).text.length;

  // Warm-up, then reads.
  await throughput("/v1/snapshot", 200);
  const baselineRps = await throughput("/v1/nothing-here", 404);
  const snapshotRps = await throughput("/v1/snapshot", 200);

  // Writes, one at a time: real changes, then the same body again (a no-op through the store).
  const writeMs: number[] = [];
  const noopMs: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    const body = { timeout: `${i + 1}ms` };
    let t = performance.now();
    if ((await call("PUT", "/v1/services/svc-0", body)).status !== 200) throw new Error("write failed");
    writeMs.push(performance.now() - t);
    t = performance.now();
    await call("PUT", "/v1/services/svc-0", body);
    noopMs.push(performance.now() - t);
  }

  // Propagation: a long-poll waits on the current version; a write lands; time until the poll answers.
  const propagationMs: number[] = [];
  for (let i = 0; i < PROPAGATIONS; i++) {
    const current = await call("GET", "/v1/snapshot");
    const poll = call("GET", "/v1/snapshot?wait=30", undefined, { "if-none-match": current.etag! });
    await new Promise((r) => setTimeout(r, 2));
    const t = performance.now();
    const answered = poll.then((answer) => {
      if (answer.status !== 200) throw new Error(`poll answered ${answer.status}`);
      return performance.now() - t;
    });
    await call("PUT", "/v1/services/svc-1", { timeout: `${i + 1}ms` });
    propagationMs.push(await answered);
  }

  const write = stats(writeMs);
  const noop = stats(noopMs);
  const propagation = stats(propagationMs);
  const rows: [string, string, string, string][] = [
    ["snapshot reads/s", snapshotRps.toFixed(0), `${baselineRps.toFixed(0)} (worker round trip)`, (snapshotRps / baselineRps).toFixed(2)],
    ["write p50 ms", write.p50.toFixed(2), `${noop.p50.toFixed(2)} (no-op write)`, (write.p50 / noop.p50).toFixed(2)],
    ["write p99 ms", write.p99.toFixed(2), `${noop.p99.toFixed(2)} (no-op write)`, (write.p99 / noop.p99).toFixed(2)],
    ["propagation p50 ms", propagation.p50.toFixed(2), `${write.p50.toFixed(2)} (write p50)`, (propagation.p50 / write.p50).toFixed(2)],
    ["propagation p99 ms", propagation.p99.toFixed(2), `${write.p99.toFixed(2)} (write p99)`, (propagation.p99 / write.p99).toFixed(2)],
  ];
  console.log(`control worker in workerd (Miniflare), snapshot of ${snapshotBytes} bytes, ${READ_CONCURRENCY} concurrent readers, ${WRITES} writes, ${PROPAGATIONS} long-polls`);
  console.log(["figure", "value", "baseline", "ratio"].map((h, i) => h.padEnd(i === 2 ? 28 : 20)).join(""));
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(i === 2 ? 28 : 20)).join(""));
  console.log(
    JSON.stringify({
      bench: "control",
      snapshot_reads_per_s: round(snapshotRps, 0),
      baseline_reads_per_s: round(baselineRps, 0),
      write_p50_ms: round(write.p50),
      write_p99_ms: round(write.p99),
      propagation_p50_ms: round(propagation.p50),
      propagation_p99_ms: round(propagation.p99),
    }),
  );
} finally {
  await control.stop();
}
