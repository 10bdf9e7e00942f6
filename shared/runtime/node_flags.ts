// V8 flags for the processes that host xenstored (the standalone daemon and
// Domain-0). xenstored keeps a large, long-lived tree and allocates little per
// request; V8's default young generation grows to 16 MiB semi-spaces under a
// burst of writes and keeps them, which is a third of the daemon's memory
// with 100,000 nodes. A 1 MiB semi-space costs no measured throughput
// (docs/benchmarks.md). Flags go on the node command line: V8 fixes heap
// geometry at start, so setting them from inside has no effect.
export const XENSTORED_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

// V8 flags for guest (DomU) processes. A hundred idle guests share a host
// (docs/benchmarks.md "density"): a guest's heap is small and short-lived
// per event, so a burst (console output, a stream of events) must not leave
// 16 MiB semi-spaces behind in every guest.
export const DOMU_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

/**
 * Environment for guest processes. msgpackr's native string extractor
 * (msgpackr-extract) maps about 6 MB of code into every process that loads
 * it and only pays off for large messages with many strings; a guest's
 * hypercall messages are small, so guests use the JavaScript decoder.
 */
export const DOMU_ENV: Readonly<Record<string, string>> = { MSGPACKR_NATIVE_ACCELERATION_DISABLED: 'true' };

/**
 * Extra node flags for every domain process, from XENEMU_DOMAIN_NODE_FLAGS
 * (space-separated): how the benchmarks profile guests and Domain-0
 * (`--cpu-prof --cpu-prof-dir=...`, which node refuses in NODE_OPTIONS) or
 * try a V8 setting without changing code.
 */
export function domainExtraNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.XENEMU_DOMAIN_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
}
