/**
 * The sidecar's link to the control plane: gets its identity, follows the snapshot by
 * long-poll, keeps its pod's endpoint registered under a lease, and pushes metric deltas.
 * Every loop survives the control plane going away: the sidecar keeps serving on the last
 * snapshot and tokens it has, and reconnects with jittered exponential backoff.
 */
import { backoffDelay, type Backoff } from "../src/core/retry/index.ts";
import type { Random } from "../src/core/clock.ts";
import type { Snapshot } from "../src/core/config/index.ts";
import type { MetricsDelta } from "../src/core/metrics/index.ts";
import { CONTROL_AUDIENCE, type ControlClient, type Registration } from "../src/proxy/index.ts";
import { reason, type Log } from "./log.ts";

/**
 * Reconnect backoff: 100 ms growing to 10 s, fully jittered. The bounds are linkerd2-proxy's
 * inbound connect backoff (100 ms → 10 s); the jitter is full (not Linkerd's 0.1) so that every
 * sidecar of a cluster reconnecting to a restarted control plane spreads over the window.
 */
export const DEFAULT_RECONNECT_BACKOFF: Backoff = { base: 100, max: 10_000 };

/**
 * Slack added to a long-poll's own wait before the call is given up as hung: 10 s, so a
 * control plane that answers late is not mistaken for one that is gone.
 */
const LONG_POLL_SLACK_MS = 10_000;

/** Options of `createControlLink`. */
export interface ControlLinkOptions {
  client: ControlClient;
  /** This pod's service and endpoint id, and what to register. */
  service: string;
  endpointId: string;
  /** What to register; absent for a pod that serves nothing (it only calls out). */
  registration?: Registration;
  leaseTtlMs: number;
  /** Seconds each snapshot long-poll is held. */
  snapshotWaitS: number;
  statsIntervalMs: number;
  /** Puts a snapshot in force (trust bundle, then the proxy's config). */
  apply(snapshot: Snapshot): Promise<void>;
  /** The metrics counted since the last call, to push. */
  takeStats(): MetricsDelta;
  log: Log;
  random?: Random;
  backoff?: Backoff;
}

/** What the link has, for `/ready` and logs. */
export interface LinkStatus {
  /** A control-plane token was obtained: the pod's identity is known. */
  identity: boolean;
  /** The version of the snapshot in force, or -1 before the first. */
  version: number;
  /** The last call to the control plane succeeded. */
  connected: boolean;
  /** The pod's endpoint is registered (its lease last renewed successfully). */
  registered: boolean;
}

/** The running link. Per process. */
export interface ControlLink {
  /** Starts the loops; resolves once identity and the first snapshot are in (retrying until then). */
  start(): Promise<void>;
  status(): LinkStatus;
  /** Pushes the metrics counted so far (best effort). */
  flushStats(): Promise<void>;
  /**
   * Stops every loop; with `deregister`, removes the pod's endpoint first, waiting at most
   * `timeoutMs` for the control plane to answer.
   */
  stop(options?: { deregister?: boolean; timeoutMs?: number }): Promise<void>;
}

/** Creates the link; nothing runs until `start()`. */
export function createControlLink(options: ControlLinkOptions): ControlLink {
  const { client, log } = options;
  const random = options.random ?? Math.random;
  const backoff = options.backoff ?? DEFAULT_RECONNECT_BACKOFF;
  const stopping = new AbortController();
  const status: LinkStatus = { identity: false, version: -1, connected: false, registered: false };
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let registering: Promise<void> | undefined;
  let pushing: Promise<void> | undefined;
  let statsTimer: ReturnType<typeof setInterval> | undefined;

  /** Waits `ms`, or less if the link stops. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping.signal.aborted) return resolve();
      const timer = setTimeout(() => {
        timers.delete(timer);
        stopping.signal.removeEventListener("abort", done);
        resolve();
      }, ms);
      const done = () => {
        clearTimeout(timer);
        timers.delete(timer);
        resolve();
      };
      timers.add(timer);
      stopping.signal.addEventListener("abort", done, { once: true });
    });

  const failed = (what: string, failures: number, error: unknown) => {
    status.connected = false;
    // The first failure of a run is worth a warning; the retries that follow are not.
    log(failures === 1 ? "warn" : "debug", "control-plane-unreachable", { what, failures, reason: reason(error) });
  };

  /** The first token, retried until it comes: without identity the pod can serve nothing. */
  const identity = async () => {
    for (let failures = 1; !stopping.signal.aborted; failures++) {
      try {
        await client.tokens.token(CONTROL_AUDIENCE);
        status.identity = true;
        return;
      } catch (error) {
        failed("identity", failures, error);
        await pause(backoffDelay(failures, backoff, random));
      }
    }
  };

  /** Follows the snapshot; `first` resolves once one is in force. */
  const follow = async (first: () => void) => {
    let failures = 0;
    while (!stopping.signal.aborted) {
      const held = status.version;
      const wait = held < 0 ? undefined : options.snapshotWaitS;
      const signal = AbortSignal.any([stopping.signal, AbortSignal.timeout((wait ?? 0) * 1000 + LONG_POLL_SLACK_MS)]);
      try {
        const snapshot = await client.snapshot({ version: held, ...(wait !== undefined && { wait }), signal });
        status.connected = true;
        if (failures > 0) log("info", "control-plane-reconnected", { failures });
        failures = 0;
        if (snapshot !== undefined && snapshot.version !== held) {
          await options.apply(snapshot);
          status.version = snapshot.version;
          log("info", "config-applied", { version: snapshot.version });
          first();
        }
      } catch (error) {
        if (stopping.signal.aborted) return;
        failures++;
        failed("snapshot", failures, error);
        await pause(backoffDelay(failures, backoff, random));
      }
    }
  };

  /** Registers the pod's endpoint and renews its lease at a third of its length. */
  const register = async (registration: Registration) => {
    const every = Math.max(1_000, Math.floor(options.leaseTtlMs / 3));
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        await client.register(options.service, options.endpointId, registration);
        if (!status.registered) log("info", "endpoint-registered", { service: options.service, id: options.endpointId, address: registration.address });
        status.registered = true;
        failures = 0;
        await pause(every);
      } catch (error) {
        if (stopping.signal.aborted) return;
        failures++;
        failed("registration", failures, error);
        // Retry sooner than the lease runs out, but never hammer a control plane that is down.
        await pause(Math.min(every, backoffDelay(failures, backoff, random)));
      }
    }
  };

  const flushStats = (): Promise<void> => {
    if (pushing) return pushing;
    const delta = options.takeStats();
    pushing = client
      .pushStats(delta, options.endpointId)
      .catch((error: unknown) => log("debug", "stats-push-failed", { reason: reason(error) }))
      .finally(() => {
        pushing = undefined;
      });
    return pushing;
  };

  return {
    async start() {
      await identity();
      if (stopping.signal.aborted) return;
      let loaded!: () => void;
      const first = new Promise<void>((resolve) => (loaded = resolve));
      void follow(() => loaded());
      await Promise.race([first, new Promise<void>((resolve) => stopping.signal.addEventListener("abort", () => resolve(), { once: true }))]);
      if (stopping.signal.aborted) return;
      if (options.registration) registering = register(options.registration);
      statsTimer = setInterval(() => void flushStats(), options.statsIntervalMs);
    },
    status: () => ({ ...status }),
    flushStats,
    async stop({ deregister = false, timeoutMs = 2_000 } = {}) {
      const wasRegistered = status.registered;
      stopping.abort();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      if (statsTimer) clearInterval(statsTimer);
      if (!deregister || !wasRegistered) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        // A renewal in flight would otherwise land after the removal and bring the endpoint back.
        await Promise.race([registering, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
        clearTimeout(timer);
        await Promise.race([
          client.deregister(options.service, options.endpointId).then(() => {
            status.registered = false;
            log("info", "endpoint-deregistered", { service: options.service, id: options.endpointId });
          }),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
        ]);
      } catch (error) {
        log("warn", "endpoint-deregistration-failed", { reason: reason(error) });
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
