/** Test helpers shared by unit tests: manual clock, seeded randomness and fake upstreams. */
export { createManualClock, settle, sequenceRandom, seededRandom } from "./clock.ts";
export type { ManualClock } from "./clock.ts";
export { fakeUpstream, meshErrorOf } from "./upstream.ts";
export { web, webResponse } from "./web.ts";
export { DENIED_ADMIN_PATHS } from "./paths.ts";
export type { Answer, FakeUpstream, FakeUpstreamOptions } from "./upstream.ts";
