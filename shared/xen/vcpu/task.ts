// Messages between a VcpuPool and its vCPU threads (one file per channel, docs/style.md rule 3).

/** Busy CPU work of `ms` milliseconds, run in units inside slices. */
export interface BurnTask { kind: 'burn'; vcpu: number; ms: number }

/**
 * General guest work: `module` (path or file URL) exports `name` (default
 * `default`), called as fn(arg, ctx) on the vCPU's thread once it holds a
 * slice. Long work calls ctx.preemptionPoint() often (every millisecond or
 * so): there it gives the pCPU back when the slice was revoked, and waits for
 * the next. Work that never calls it is preempted by SIGSTOP.
 */
export interface RunTask { kind: 'run'; vcpu: number; module: string; name?: string; arg?: unknown }

export type VcpuTask = BurnTask | RunTask;

export interface VcpuTaskResult { workNs: number; waitNs: number; value: unknown }

export interface VcpuContext {
  vcpu: number;
  preemptionPoint(): void;
  /**
   * SCHEDOP_block from inside the work: the vCPU gives its slice back and is
   * blocked (no CPU, no credits) until the 32-bit word at `byteOffset` of
   * `sab` (shared memory, possibly mapped by other processes) no longer
   * holds `expected` and someone futexWakes it, or `timeoutMs` passes; then
   * it is runnable again and returns once it holds a new slice. An HVM
   * vCPU blocks like this in HLT and while a device model works on its
   * ioreq, as Xen blocks it.
   */
  block(sab: SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): void;
}
