/**
 * Peak-EWMA, the load estimate behind Linkerd's balancer (Tower's `PeakEwma`, after
 * Finagle's): an RTT estimate that jumps to any slower answer at once and otherwise decays,
 * weighted by the requests still waiting on the endpoint.
 */
import type { Clock } from "../clock.ts";

/**
 * The RTT a new endpoint is assumed to have, ms: Linkerd's `BALANCER_DEFAULT_RTT` (policy
 * controller, grpc/src/outbound.rs) and the proxy's `DEFAULT_EWMA.default_rtt`.
 */
export const DEFAULT_RTT = 30;

/**
 * The time constant of the estimate's decay, ms: Linkerd's `BALANCER_RTT_DECAY` (policy
 * controller) and the proxy's `DEFAULT_EWMA.decay`.
 */
export const DEFAULT_DECAY = 10_000;

/**
 * The smallest seed RTT, ms: the proxy floors the default at 1 ms (`MIN_DEFAULT_RTT`,
 * linkerd/proxy/balance), so a zero default cannot make every new endpoint free.
 */
const MIN_DEFAULT_RTT = 1;

/** One endpoint's load as one balancer sees it. */
export interface PeakEwma {
  /** Requests sent and not yet answered (headers), as counted by the balancer. */
  pending: number;
  /** The RTT estimate now, ms, after decaying toward zero for the time since the last look. */
  estimate(): number;
  /** The estimate now, ms, without counting as a look (for inspection and metrics). */
  peek(): number;
  /** Takes in one observed RTT, ms. */
  observe(rtt: number): void;
  /** Tower's cost: the RTT estimate × (pending + 1). */
  cost(): number;
}

/** Options of `createPeakEwma`. */
export interface PeakEwmaOptions {
  clock: Clock;
  /** Seed estimate, ms (default `DEFAULT_RTT`). */
  defaultRtt?: number;
  /** Decay time constant, ms (default `DEFAULT_DECAY`). */
  decay?: number;
}

/**
 * A fresh estimate at `defaultRtt`. As in Tower, an observed RTT above the estimate replaces
 * it (the peak); one below is blended in with weight 1 − e^(−elapsed/decay), and every look
 * at the estimate counts as an observation of 0, so an idle endpoint's estimate decays
 * toward zero with time constant `decay` and it gets tried again.
 */
export function createPeakEwma(options: PeakEwmaOptions): PeakEwma {
  const { clock } = options;
  const decay = options.decay ?? DEFAULT_DECAY;
  let rtt = Math.max(options.defaultRtt ?? DEFAULT_RTT, MIN_DEFAULT_RTT);
  let at = clock.now();

  const update = (sample: number) => {
    const now = clock.now();
    if (rtt < sample) {
      rtt = sample;
    } else {
      const weight = Math.exp(-Math.max(0, now - at) / decay);
      rtt = rtt * weight + sample * (1 - weight);
    }
    at = now;
    return rtt;
  };

  const ewma: PeakEwma = {
    pending: 0,
    estimate: () => update(0),
    peek: () => rtt * Math.exp(-Math.max(0, clock.now() - at) / decay),
    observe: (sample) => void update(Math.max(0, sample)),
    cost: () => ewma.estimate() * (ewma.pending + 1),
  };
  return ewma;
}
