/**
 * What held snapshot long-polls cost the local control plane (workerd through Miniflare), and
 * how it answers twice its cap: the cap's long-polls are held, then as many again are sent at
 * once and each refused with 503 `overloaded`, then one write wakes every held poll. Measures
 * workerd's RSS and open descriptors per held poll (from /proc, Linux only), the refusals'
 * latency, the write's latency and the time until every held poll has its answer, beside
 * baselines from the same run: as many 404s at once (workerd's floor) and an idle write.
 * Run: `sh scripts/node.sh node bench/long-polls.ts` (`WEFT_BENCH_CAP=<n>` to set the cap;
 * by default the local runner's own choice for this machine).
 */
import { connect } from "node:net";
import type { Socket } from "node:net";
import { readdirSync, readFileSync } from "node:fs";
import { startControl } from "../workers/control/local.ts";

const ADMIN = "bench-admin-secret";
const BATCH = 200;

const cap = process.env.WEFT_BENCH_CAP ? Number(process.env.WEFT_BENCH_CAP) : undefined;
const control = await startControl({ adminToken: ADMIN, port: 0, ...(cap !== undefined && { maxLongPolls: cap }) });
const limit = control.maxLongPolls;
const url = new URL(control.url);

/** workerd: the child process of this one whose name is `workerd`. */
const workerd = readdirSync("/proc")
  .filter((p) => /^\d+$/.test(p))
  .find((p) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      return stat.includes("(workerd)") && Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid;
    } catch {
      return false;
    }
  });
if (!workerd) throw new Error("workerd not found among this process's children (Linux /proc needed)");
const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${workerd}/status`, "utf8"))![1]) / 1024;
const fds = () => readdirSync(`/proc/${workerd}/fd`).length;
const alive = () => {
  try {
    readFileSync(`/proc/${workerd}/status`);
    return true;
  } catch {
    return false;
  }
};

const headers = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
await fetch(`${control.url}/v1/services/orders`, { method: "PUT", headers, body: '{"balancer":"round-robin"}' }).then((r) => r.text());
// Baseline: an idle write (the store holds no poll).
await new Promise((r) => setTimeout(r, 500));
let t = performance.now();
await fetch(`${control.url}/v1/services/warm`, { method: "PUT", headers, body: '{"balancer":"round-robin"}' }).then((r) => r.text());
const idleWriteMs = performance.now() - t;
const etag = (await fetch(`${control.url}/v1/snapshot`, { headers })).headers.get("etag")!;

/** One long-poll on its own connection: resolves with its status and the ms until the answer's first byte. */
interface Poll {
  sent: Promise<void>;
  answer: Promise<{ status: number; ms: number }>;
  socket: Socket;
}
function poll(path = "/v1/snapshot?wait=90"): Poll {
  const socket = connect(Number(url.port), url.hostname);
  let start = 0;
  const sent = new Promise<void>((resolve, reject) => {
    socket.once("connect", () => {
      start = performance.now();
      socket.write(`GET ${path} HTTP/1.1\r\nhost: ${url.host}\r\nauthorization: Bearer ${ADMIN}\r\nif-none-match: ${etag}\r\n\r\n`, () => resolve());
    });
    socket.once("error", reject);
  });
  const answer = new Promise<{ status: number; ms: number }>((resolve, reject) => {
    socket.once("data", (chunk) => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(chunk.toString("latin1"))?.[1] ?? 0), ms: performance.now() - start }));
    socket.once("error", reject);
    socket.once("end", () => reject(new Error("closed without an answer")));
  });
  answer.catch(() => {});
  return { sent, answer, socket };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
const round = (n: number, digits = 1) => Number(n.toFixed(digits));

/**
 * Sends probes until one is refused, so the store holds exactly the cap: a probe that is not
 * answered within 300 ms is held and joins `held` (one of `held` may have been refused
 * meanwhile; they are told apart by their answers). At most 60 s.
 */
async function fill(held: Poll[]): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    const probe = poll();
    const first = await Promise.race([probe.answer.catch(() => undefined), pause(300).then(() => undefined)]);
    if (first?.status === 503) return void probe.socket.destroy();
    held.push(probe);
    if (Date.now() > until) throw new Error(`the cap of ${limit} was never reached`);
  }
}

const sockets: Socket[] = [];
try {
  const base = { rss: rssMiB(), fds: fds() };
  const held: Poll[] = [];
  for (let i = 0; i < limit; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, limit - i) }, () => poll());
    await Promise.all(batch.map((p) => p.sent));
    held.push(...batch);
  }
  await fill(held);
  for (const p of held) sockets.push(p.socket);
  await pause(500);
  const full = { rss: rssMiB(), fds: fds() };

  // Twice the cap: as many again at once, each refused.
  const extra = Array.from({ length: limit }, () => poll());
  for (const p of extra) sockets.push(p.socket);
  const refusals = await Promise.all(extra.map((p) => p.answer.catch(() => ({ status: -1, ms: Number.NaN }))));
  const refused = refusals.filter((r) => r.status === 503).length;
  const refusedMs = refusals.map((r) => r.ms).sort((a, b) => a - b);
  const peak = { rss: rssMiB(), fds: fds() };
  for (const p of extra) p.socket.destroy();

  // Baseline for the refusals: as many requests at once that the worker answers without the
  // store or a credential check (an unknown path, 404): workerd's own floor at that concurrency.
  const floor = Array.from({ length: limit }, () => poll("/v1/nothing-here"));
  const floorMs = (await Promise.all(floor.map((p) => p.answer.catch(() => ({ status: -1, ms: Number.NaN }))))).map((r) => r.ms).sort((a, b) => a - b);
  for (const p of floor) p.socket.destroy();

  // One write wakes the held polls.
  t = performance.now();
  const write = await fetch(`${control.url}/v1/services/orders`, { method: "PUT", headers, body: '{"balancer":"p2c-ewma"}' });
  await write.text();
  const writeMs = performance.now() - t;
  const woken = await Promise.all(held.map((p) => p.answer.catch(() => ({ status: -1, ms: Number.NaN }))));
  const allWokenMs = performance.now() - t;
  const answered200 = woken.filter((w) => w.status === 200).length;

  const perPollKiB = ((full.rss - base.rss) * 1024) / limit;
  const perPollFds = (full.fds - base.fds) / limit;
  const rows: [string, string, string][] = [
    ["cap (held polls)", String(limit), "-"],
    ["held, answered 200 after the write", String(answered200), String(limit)],
    ["refused 503 of as many again", String(refused), String(limit)],
    ["refusal p50 / p99 ms", `${round(quantile(refusedMs, 0.5))} / ${round(quantile(refusedMs, 0.99))}`, `${round(quantile(floorMs, 0.5))} / ${round(quantile(floorMs, 0.99))} (as many 404s)`],
    ["workerd RSS MiB (idle → cap → 2x cap)", `${round(base.rss, 0)} → ${round(full.rss, 0)} → ${round(peak.rss, 0)}`, "-"],
    ["RSS per held poll KiB", round(perPollKiB, 0).toString(), "-"],
    ["workerd descriptors (idle → cap → 2x cap)", `${base.fds} → ${full.fds} → ${peak.fds}`, "-"],
    ["descriptors per held poll", round(perPollFds, 2).toString(), "-"],
    ["write ms with the cap held", round(writeMs).toString(), `${round(idleWriteMs)} (idle write)`],
    ["every held poll answered, ms", round(allWokenMs).toString(), "-"],
    ["workerd alive at the end", String(alive()), "true"],
  ];
  console.log(`snapshot long-polls held by the local control plane (workerd), then twice the cap at once`);
  console.log(["figure", "value", "baseline / expected"].map((h, i) => h.padEnd(i === 0 ? 44 : 24)).join(""));
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(i === 0 ? 44 : 24)).join(""));
  console.log(
    JSON.stringify({
      bench: "long-polls",
      cap: limit,
      held_answered: answered200,
      refused,
      refusal_p99_ms: round(quantile(refusedMs, 0.99)),
      floor_404_p99_ms: round(quantile(floorMs, 0.99)),
      rss_per_poll_kib: round(perPollKiB, 0),
      fds_per_poll: round(perPollFds, 2),
      rss_at_2x_cap_mib: round(peak.rss, 0),
      fds_at_2x_cap: peak.fds,
      write_ms_at_cap: round(writeMs),
      idle_write_ms: round(idleWriteMs),
      all_woken_ms: round(allWokenMs),
      workerd_alive: alive(),
    }),
  );
} finally {
  for (const socket of sockets) socket.destroy();
  await control.stop();
}
