// V8 flags for the processes that host xenstored (the standalone daemon and
// Domain-0). xenstored keeps a large, long-lived tree and allocates little per
// request; V8's default young generation grows to 16 MiB semi-spaces under a
// burst of writes and keeps them, which is a third of the daemon's memory
// with 100,000 nodes. A 1 MiB semi-space costs no measured throughput
// (docs/benchmarks.md). Flags go on the node command line: V8 fixes heap
// geometry at start, so setting them from inside has no effect.
export const XENSTORED_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
