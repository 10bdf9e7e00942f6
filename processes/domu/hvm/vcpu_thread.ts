// An HVM guest's vCPU: v86 running the guest's x86 code on this worker
// thread, only inside the scheduler's slices (shared/xen/vcpu), blocked in
// HLT until an interrupt is due, handing every access to a device that is
// not the processor's own to the ioreq servers (io_router.ts).
//
// Each turn: let v86's JIT install what it compiled (its event loop turns),
// take the slice (or wait for it), forget translated code that device
// models overwrote by DMA (also after every ioreq), bring the PIC's lines
// up to date, run v86 for up to about a millisecond. A halted processor
// with nothing pending blocks on the vCPU doorbell of the HVM segment until
// its next timer, or until a device model changes an interrupt line and
// wakes it. Before it blocks it polls, as KVM's halt polling does: a wake
// due within HALT_POLL_MAX_MS (a timer that close, or a device model that
// answered the last polls that fast, such as a disk finishing a DMA) is
// slept through holding the slice, since giving the slice back and getting
// it again costs a round trip to the hypervisor and its scheduler, about
// 2 ms on a busy host, against a DMA that completes within about one (a
// 128 KiB IDE read: 0.3-1 ms; a window of half a millisecond caught some of
// them and not others, and Linux's dd ran at either of two speeds).
import type { MessagePort } from 'node:worker_threads';
import { futexWait, shmOpen } from '../../../shared/shm.js';
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import {
  HVM_CONTEXT_EMPTY, HVM_CONTEXT_RESTORE, HVM_CONTEXT_SAVED, XENEMU_HVM_SEGMENT_PAGES, drainModified, hvm_ctl, readHvmContext,
  writeHvmContext,
} from '../../../shared/abi/hvm/xenemu_hvm.js';
import type { VcpuContext } from '../../../shared/xen/vcpu/index.js';
import { V86Machine } from './v86.js';
import { IoreqClient } from './ioreq.js';
import { IoRouter } from './io_router.js';
import { IrqLines } from './irq.js';
import { DebugPort, XEN_HVM_DEBUGCONS_IOPORT } from './debug_port.js';
import { PmTimer, SCI_IRQ } from './pmtimer.js';
import { decodeHvmContext, encodeHvmContext, type HvmPlatformState } from './context.js';

/**
 * Longest halt poll (the slice is held, the thread asleep in the futex: no
 * CPU; a revocation waits for its end, within the scheduler's grace).
 */
const HALT_POLL_MAX_MS = 2;
/** A poll window that halved below this is off, but for a full probe every HALT_POLL_PROBE_EVERY halts. */
const HALT_POLL_MIN_MS = 0.03;
const HALT_POLL_PROBE_EVERY = 32;
/**
 * A timer due within this long is slept through holding the slice: giving
 * the slice back and getting a new one after the timer costs about as much
 * (a round trip through the hypervisor's scheduler and the domain's main
 * thread), so blocking would only make the wake-up late.
 */
const TIMER_HOLD_MS = 2;

/**
 * The poll window adapts as KVM's halt_poll_ns does: a poll that ended in a
 * wake opens it fully, one that timed out halves it; once off, one halt in
 * HALT_POLL_PROBE_EVERY probes with the full window.
 */
export class HaltPoll {
  private windowMs = HALT_POLL_MAX_MS;
  private sinceProbe = 0;
  polls = 0;
  hits = 0;

  /** How long to poll before blocking when the next timer is `timerMs` away (0: block at once). */
  window(timerMs: number): number {
    if (timerMs <= TIMER_HOLD_MS) return timerMs;
    if (this.windowMs >= HALT_POLL_MIN_MS) return this.windowMs;
    if (++this.sinceProbe >= HALT_POLL_PROBE_EVERY) { this.sinceProbe = 0; return HALT_POLL_MAX_MS; }
    return 0;
  }

  /** The poll of a halt whose timer was further off than the window ended: woken, or timed out. */
  result(woken: boolean): void {
    this.polls++;
    if (woken) { this.hits++; this.windowMs = HALT_POLL_MAX_MS; } else this.windowMs /= 2;
  }
}

export interface HvmVcpuArg {
  /** The domain's memory and HVM segments. */
  mem: string;
  hvm: string;
  /** RAM bytes (below the VGA hole and above it, contiguous in the segment). */
  ramBytes: number;
  /** hvm_info_table.apic_mode: the vCPU has a local APIC and an IOAPIC. */
  apic: boolean;
  /** Bytes of firmware the builder left below 1 MiB. */
  firmwareBytes: number;
  /** The host's name (its passed-through devices' BAR channels are named by it). */
  host: string;
  /** Messages to the domain's main thread (HvmVcpuMessage). */
  port: MessagePort;
}

export type HvmVcpuMessage =
  | { type: 'console'; line: string }
  /** The vCPU stopped for a suspend and its context is in the segment: the domain is to be shut down (SHUTDOWN_suspend). */
  | { type: 'suspend'; bytes: number; ms: number }
  | { type: 'ready'; ramOffset: number };

/** Why the vCPU stopped. */
export type HvmVcpuExit = { reason: 'reboot' } | { reason: 'triple-fault' } | { reason: 'crash'; message: string };

export default async function hvmVcpu(arg: HvmVcpuArg, ctx: VcpuContext): Promise<HvmVcpuExit> {
  const seg = shmOpen(arg.hvm, XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE);
  const i32 = new Int32Array(seg);
  const dv = new DataView(seg);
  const low = new Uint8Array(shmOpen(arg.mem, 0x100000));
  const firmware = low.slice(0x100000 - arg.firmwareBytes);
  let reset = false;
  const m = await V86Machine.create({ ramBytes: arg.ramBytes, memSegment: arg.mem, bios: firmware, apic: arg.apic,
    onReset: () => { reset = true; } });
  const io = new IoreqClient(seg, ctx.vcpu, ctx.block);
  const debug = new DebugPort((line) => arg.port.postMessage({ type: 'console', line } satisfies HvmVcpuMessage));
  const irq = new IrqLines(i32, (n) => m.raiseIrq(n), (n) => m.lowerIrq(n), (v) => { m.injectApic(v); });
  const pmt = new PmTimer(i32, (level) => irq.setLocal(SCI_IRQ, level));
  const forget = (pfn: number, n: number) => m.modified(pfn * PAGE_SIZE, (pfn + n) * PAGE_SIZE);
  const forgetAll = () => m.modifiedAll();
  // After an ioreq or a BAR access, what the device model or the host device
  // did meanwhile: the frames it wrote (a DMA, a `rep ins`; the segment's
  // ring, and each passed-through device's in its BAR channel) are forgotten
  // before the guest can run code from them (and before a ring can overflow,
  // which would cost every translation), and its interrupt lines reach the PIC.
  let ptDrain = () => {};
  const drain = () => { drainModified(i32, dv, forget, forgetAll); ptDrain(); };
  const afterIo = () => { drain(); if (irq.changed) irq.sync(); };
  const router = new IoRouter(m, io, i32, seg, new Map([[XEN_HVM_DEBUGCONS_IOPORT, debug]]), afterIo, pmt,
    { host: arg.host, slot: ctx.vcpu, log: (line) => arg.port.postMessage({ type: 'console', line } satisfies HvmVcpuMessage),
      intx: (lines) => irq.setPtLines(lines) });
  ptDrain = () => router.drainDma(forget, forgetAll);
  const lineWord = (off: number, i = 0) => (off >> 2) + i;
  // A restored domain: the toolstack left the saved vCPU's context (sethvmcontext).
  const saved = readHvmContext(seg, HVM_CONTEXT_RESTORE);
  if (saved) {
    try {
      const c = decodeHvmContext(saved);
      m.restoreState(c.v86, c.platform.clock);
      const l = c.platform.lines;
      Atomics.store(i32, lineWord(hvm_ctl.isa_irq_level), l.isaLevel);
      Atomics.store(i32, lineWord(hvm_ctl.isa_irq_raised), l.isaRaised);
      for (let w = 0; w < 4; w++) {
        Atomics.store(i32, lineWord(hvm_ctl.pci_intx_level, w), l.intx[w] ?? 0);
        Atomics.store(i32, lineWord(hvm_ctl.pci_link_route, w), l.links[w] ?? 0);
      }
      Atomics.add(i32, lineWord(hvm_ctl.irq_gen), 1);
      irq.state = c.platform.irq;
      pmt.pm1.restoreState(c.platform.pm);
      router.state = c.platform.router;
    } catch (err) {
      return { reason: 'crash', message: `restoring the saved vCPU context: ${(err as Error).message}` };
    } finally {
      Atomics.store(i32, lineWord(hvm_ctl.context_state), HVM_CONTEXT_EMPTY);
    }
  }
  /**
   * A suspend asked by the hypervisor (SCHEDOP_remote_shutdown(SHUTDOWN_suspend)),
   * between two runs of v86, the one point its state can be taken: the
   * context goes to the segment, the main thread shuts the domain down, and
   * the vCPU sleeps until the domain is resumed in place (the main thread
   * clears suspend_req) or destroyed with its process.
   */
  const suspend = (): HvmVcpuExit | null => {
    const t0 = performance.now();
    // MSI vectors latched since the turn began go into the APIC's IRR, which v86's state holds.
    irq.sync();
    const { state, clock } = m.saveState();
    const platform: HvmPlatformState = {
      clock,
      irq: irq.state,
      lines: {
        isaLevel: Atomics.load(i32, lineWord(hvm_ctl.isa_irq_level)),
        isaRaised: Atomics.load(i32, lineWord(hvm_ctl.isa_irq_raised)),
        intx: [0, 1, 2, 3].map((w) => Atomics.load(i32, lineWord(hvm_ctl.pci_intx_level, w))),
        links: [0, 1, 2, 3].map((w) => Atomics.load(i32, lineWord(hvm_ctl.pci_link_route, w))),
      },
      pm: pmt.pm1.saveState(),
      router: router.state,
    };
    const blob = encodeHvmContext({ v86: state, platform });
    if (!writeHvmContext(seg, blob, HVM_CONTEXT_SAVED)) return { reason: 'crash', message: `HVM context of ${blob.byteLength} bytes does not fit its pages` };
    Atomics.store(i32, lineWord(hvm_ctl.suspend_req), 2);
    arg.port.postMessage({ type: 'suspend', bytes: blob.byteLength, ms: performance.now() - t0 } satisfies HvmVcpuMessage);
    while (Atomics.load(i32, lineWord(hvm_ctl.suspend_req)) !== 0) ctx.block(seg, hvm_ctl.suspend_req, 2, 1000);
    return null;
  };
  arg.port.postMessage({ type: 'ready', ramOffset: m.cpu.mem8.byteOffset } satisfies HvmVcpuMessage);
  const halt = new HaltPoll();
  let turns = 0;
  let lastT = Date.now();
  const ic = () => (m.cpu as unknown as { instruction_counter: Uint32Array }).instruction_counter[0]!;
  let lastI = ic();
  for (;;) {
    if (process.env.XENEMU_HVM_RATE && ++turns % 2000 === 0) {
      const now = Date.now();
      const i = ic();
      arg.port.postMessage({ type: 'console', line: `rate ${(((i - lastI) >>> 0) / (now - lastT) / 1000).toFixed(1)} MIPS, turns 2000 in ${now - lastT} ms eip ${((m.cpu as unknown as { instruction_pointer: Int32Array }).instruction_pointer[0]! >>> 0).toString(16)} halted ${m.halted} halt polls ${halt.hits}/${halt.polls}` } satisfies HvmVcpuMessage);
      lastT = now; lastI = i;
    }
    // v86 compiles the guest code it translates asynchronously
    // (WebAssembly.instantiate): its JIT only ever runs code whose promise
    // this thread's event loop has seen resolve. One turn of the loop per
    // ~millisecond of guest time, as v86's own scheduler gives it.
    await new Promise<void>((res) => setImmediate(res));
    ctx.preemptionPoint();
    drain();
    if (Atomics.load(i32, hvm_ctl.suspend_req >> 2) === 1) {
      const end = suspend();
      if (end) return end;
      continue;
    }
    pmt.poll();
    irq.sync();
    router.refresh();
    let t: number;
    try {
      t = m.run();
    } catch (err) {
      if (m.tripleFaulted) return { reason: 'triple-fault' };
      return { reason: 'crash', message: (err as Error).stack ?? String(err) };
    }
    if (reset) return { reason: 'reboot' };
    if (!m.halted) continue;
    // Halted: sleep until the next timer of the processor's own devices, or
    // an interrupt from a device model (the doorbell), whichever is first.
    const bell = Atomics.load(i32, hvm_ctl.vcpu_doorbell >> 2);
    if (irq.changed) continue;
    const timer = Math.max(0.05, Math.min(t, 100));
    const poll = halt.window(timer);
    if (poll > 0) {
      const woken = futexWait(seg, hvm_ctl.vcpu_doorbell, bell, poll) !== 'timed-out' ||
        Atomics.load(i32, hvm_ctl.vcpu_doorbell >> 2) !== bell;
      if (poll === timer) continue;
      halt.result(woken);
      if (woken) continue;
    }
    ctx.block(seg, hvm_ctl.vcpu_doorbell, bell, timer - poll);
  }
}
