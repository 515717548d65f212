/**
 * A loop-stall probe for bench:sidecar (`BENCH_LOOP_PROBE=1`), loaded into each sidecar with
 * `--import`. A 2 ms interval notes each time it fires more than 4 ms after its last run (the
 * loop stood still for at least one beat) and how much CPU the main thread used in that gap
 * (`process.threadCpuUsage`): a gap spent on the CPU is the loop's own work (a GC pause, a burst
 * of requests); a gap spent off it is the process waiting to be scheduled. Once a second it
 * writes one line to stdout, which the bench reads beside the `--trace-gc` lines:
 * `weft-loop-probe {"windowMs":1000.4,"gaps":3,"wallMs":14.2,"cpuMs":2.1}`.
 *
 * The probe's own timer wakes each sidecar 500 times a second, so a run with it is for reading
 * where the tail comes from, not for the latency figures themselves.
 */
import { writeSync } from "node:fs";

const BEAT_MS = 2;
const LATE_MS = 2 * BEAT_MS;

const threadCpuMs = (): number => {
  const usage = process.threadCpuUsage();
  return (usage.user + usage.system) / 1000;
};

let lastAt = performance.now();
let lastCpu = threadCpuMs();
let windowStart = lastAt;
let gaps = 0;
let wallMs = 0;
let cpuMs = 0;

setInterval(() => {
  const at = performance.now();
  const cpu = threadCpuMs();
  if (at - lastAt > LATE_MS) {
    gaps++;
    wallMs += at - lastAt;
    cpuMs += cpu - lastCpu;
  }
  lastAt = at;
  lastCpu = cpu;
  if (at - windowStart >= 1000) {
    const line = { windowMs: round(at - windowStart), gaps, wallMs: round(wallMs), cpuMs: round(cpuMs) };
    writeSync(1, `weft-loop-probe ${JSON.stringify(line)}\n`);
    windowStart = at;
    gaps = 0;
    wallMs = 0;
    cpuMs = 0;
  }
}, BEAT_MS).unref();

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
