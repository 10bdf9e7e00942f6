// The device model's end of an ioreq server (hvm/ioreq.h, qemu-xen's
// xen-hvm.c cpu_handle_ioreq / handle_buffered_iopage): take what the vCPUs
// posted in the server's pages, emulate it, answer.
//
//   for each turn:  drain the buffered ring (VGA writes, in order), then
//                   each vCPU's ioreq_t in STATE_IOREQ_READY: INPROCESS,
//                   emulate (rep: `count` times, data in guest memory when
//                   data_is_ptr), data, STATE_IORESP_READY, wake the vCPU
//   when idle:      for a while after its last answer, look again and
//                   again (a guest's accesses come in runs: the vCPU's next
//                   one is usually microseconds away); then dm_sleeping = 1,
//                   look once more, sleep on the doorbell
//
// The spin is what makes a run of accesses cheap: a vCPU that finds
// dm_sleeping clear only stores and spins itself, where waking a sleeping
// server costs it a futexWake that on this kind of host takes 5-10 µs
// before it returns (docs/benchmarks.md, hvm), and the server's wake-up as
// much again. The spin adapts (spinBudget): SPIN_NS again as soon as a spin
// finds a request, halved by each that does not, down to MIN_SPIN_NS, with
// a full-length spin every PROBE_EVERY waits to find out whether spinning
// pays again. It does not when the vCPU's thread waits for this one's CPU
// (a loaded host): there every microsecond spun delays the request it
// waits for. Nor after an answer that had to wake the vCPU (it was asleep
// on the state word, no longer spinning): its thread has yet to be
// scheduled, perhaps on this very CPU.
//
// Everything here is synchronous and runs on the one thread that owns the
// devices (qemu-dm's ioreq thread): a device's state is never touched by two
// threads.
import { futexWait, futexWake } from '../../shared/shm.js';
import {
  BUF_IOREQ_SIZE, IOREQ_BUFFER_SLOT_NUM, IOREQ_READ, IOREQ_STATE_WORD, IOREQ_TYPE_COPY, IOREQ_TYPE_PCI_CONFIG,
  IOREQ_TYPE_PIO, STATE_IOREQ_INPROCESS, STATE_IOREQ_READY, STATE_IORESP_READY, buffered_iopage, ioreq,
  sharedIopageSlot,
} from '../../shared/abi/hvm/ioreq.js';
import { bufioreqPageOffset, hvm_ctl, ioreqPageOffset } from '../../shared/abi/hvm/xenemu_hvm.js';
import type { AccessSize, GuestMemory } from '../../shared/hw/machine.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';

/** Wakes server `id`'s thread if it sleeps in wait(), from any thread or process that maps the segment. */
export function ringServer(seg: SharedArrayBuffer, id: number): void {
  const i32 = new Int32Array(seg, 0, 64);
  Atomics.add(i32, (hvm_ctl.dm_doorbell >> 2) + id, 1);
  if (Atomics.load(i32, (hvm_ctl.dm_sleeping >> 2) + id)) futexWake(seg, hvm_ctl.dm_doorbell + 4 * id, 1);
}

/** What the server hands each access to. Values are unsigned 32-bit; 8-byte MMIO comes as two halves. */
export interface IoreqHandler {
  pio(dir: number, port: number, size: AccessSize, value: number): number;
  mmio(dir: number, addr: number, size: AccessSize, value: number): number;
  /** `sbdf` as XEN_DMOP_PCI_SBDF; `reg` the configuration register (0-4095). */
  pciConfig(dir: number, sbdf: number, reg: number, size: AccessSize, value: number): number;
  /** `count` port reads for a `rep ins` (IoHandler.readBlock's contract); absent: one pio() per element. */
  pioBlock?(port: number, size: AccessSize, count: number, dst: DataView, at: number, step: number): void;
}

export interface IoreqServerStats { sync: number; buffered: number; rep: number; bad: number }

const MASK = [0, 0xff, 0xffff, 0, 0xffffffff] as const;

/** How long after an answer the server looks for the next request before it sleeps: at most ... */
export const SPIN_NS = 30_000n;
/** ... and at least (the budget halves with each spin that finds nothing) ... */
export const MIN_SPIN_NS = 1_000n;
/** ... with a spin of SPIN_NS every this many waits while the budget is below it. */
export const PROBE_EVERY = 64;

export class IoreqServerPages {
  private readonly i32: Int32Array;
  private readonly dv: DataView;
  readonly stats: IoreqServerStats = { sync: 0, buffered: 0, rep: 0, bad: 0 };
  private readonly scratch = new Uint8Array(8);
  /** rep in's elements before they go to guest memory (repRead). */
  private repBuf = new Uint8Array(PAGE_SIZE);
  /** process.hrtime.bigint() of the last answer (0n: none yet). */
  private lastAnswer = 0n;
  /** How long the next spin may last, from the last answer. */
  private spinBudget = SPIN_NS;
  private sinceProbe = 0;
  /** The last answer woke a vCPU asleep on it: its thread has to be scheduled before it can post again. */
  private answerWoke = false;

  constructor(private readonly seg: SharedArrayBuffer, readonly id: number, readonly nrVcpus: number,
              private readonly h: IoreqHandler, private readonly mem: GuestMemory,
              private readonly log: (m: string) => void = () => {}) {
    this.i32 = new Int32Array(seg);
    this.dv = new DataView(seg);
  }

  /** Handles everything posted; returns how many requests that was. */
  serve(): number {
    let n = this.drainBuffered();
    let woke = false;
    const base = ioreqPageOffset(this.id);
    for (let v = 0; v < this.nrVcpus; v++) {
      const at = base + sharedIopageSlot(v);
      const word = (at + IOREQ_STATE_WORD) >> 2;
      const w = Atomics.load(this.i32, word);
      if (((w >>> 16) & 0xf) !== STATE_IOREQ_READY) continue;
      // A sync request is answered only after everything buffered before it.
      n += this.drainBuffered();
      Atomics.store(this.i32, word, (w & ~0xf0000) | (STATE_IOREQ_INPROCESS << 16));
      this.handle(at, w);
      Atomics.store(this.i32, word, (Atomics.load(this.i32, word) & ~0xf0000) | (STATE_IORESP_READY << 16));
      if (futexWake(this.seg, at + IOREQ_STATE_WORD, 1) > 0) woke = true;
      n++;
    }
    if (n > 0) { this.lastAnswer = process.hrtime.bigint(); this.answerWoke = woke; }
    return n;
  }

  /**
   * Returns once a vCPU posts something, someone ring()s, or `timeoutMs`
   * passes (negative: no limit). Within the spin budget of the last answer
   * it spins, looking at the pages and at `otherWork`; then the sleeping
   * flag, one more look, and the futex: a post that lands in between is
   * seen, never lost.
   */
  wait(timeoutMs: number, otherWork: () => boolean = () => false): void {
    if (this.lastAnswer !== 0n && timeoutMs !== 0 && !this.answerWoke) {
      let spin = this.spinBudget;
      if (spin < SPIN_NS && ++this.sinceProbe >= PROBE_EVERY) { spin = SPIN_NS; this.sinceProbe = 0; }
      let until = this.lastAnswer + spin;
      let timer = false;
      if (timeoutMs > 0) {
        const due = process.hrtime.bigint() + BigInt(Math.ceil(timeoutMs * 1e6));
        if (due < until) { until = due; timer = true; }
      }
      let now = process.hrtime.bigint();
      if (now < until) {
        do {
          if (this.pending() || otherWork()) {
            this.spinBudget = SPIN_NS;
            return;
          }
          now = process.hrtime.bigint();
        } while (now < until);
        // A timer cut it short: no verdict on the spin.
        if (!timer) this.spinBudget = this.spinBudget / 2n > MIN_SPIN_NS ? this.spinBudget / 2n : MIN_SPIN_NS;
      }
    }
    const sleeping = (hvm_ctl.dm_sleeping >> 2) + this.id;
    const bell = Atomics.load(this.i32, (hvm_ctl.dm_doorbell >> 2) + this.id);
    Atomics.store(this.i32, sleeping, 1);
    if (!this.pending() && !otherWork()) futexWait(this.seg, hvm_ctl.dm_doorbell + 4 * this.id, bell, timeoutMs);
    Atomics.store(this.i32, sleeping, 0);
  }

  /** Wakes the thread sleeping in wait(): work that is not an ioreq (ringServer). */
  ring(): void { ringServer(this.seg, this.id); }

  /** Anything posted and not yet taken. */
  pending(): boolean {
    const b = bufioreqPageOffset(this.id);
    if (Atomics.load(this.i32, (b + buffered_iopage.read_pointer) >> 2) !== Atomics.load(this.i32, (b + buffered_iopage.write_pointer) >> 2)) return true;
    const base = ioreqPageOffset(this.id);
    for (let v = 0; v < this.nrVcpus; v++) {
      const w = Atomics.load(this.i32, (base + sharedIopageSlot(v) + IOREQ_STATE_WORD) >> 2);
      if (((w >>> 16) & 0xf) === STATE_IOREQ_READY) return true;
    }
    return false;
  }

  private handle(at: number, w: number): void {
    const dv = this.dv;
    const bits = (w >>> 16) & 0xff;
    const type = (w >>> 24) & 0xff;
    const dir = (bits >> 5) & 1;
    const dataIsPtr = (bits & 0x10) !== 0;
    const df = (bits & 0x40) !== 0;
    const size = dv.getUint32(at + ioreq.size, true);
    const count = dv.getUint32(at + ioreq.count, true);
    const addrLo = dv.getUint32(at + ioreq.addr, true);
    const addrHi = dv.getUint32(at + ioreq.addr + 4, true);
    const data = dv.getUint32(at + ioreq.data, true);
    this.stats.sync++;
    // Validate at the edge: a vCPU is not trusted any more than a ring is.
    if ((size !== 1 && size !== 2 && size !== 4 && size !== 8) || count === 0 || count > 0x10000) {
      this.stats.bad++;
      this.log(`ioreq: refused type ${type} size ${size} count ${count}`);
      if (dir === IOREQ_READ) { dv.setUint32(at + ioreq.data, 0xffffffff, true); dv.setUint32(at + ioreq.data + 4, 0xffffffff, true); }
      return;
    }
    if (!dataIsPtr && count === 1) {
      const r = this.access(type, dir, addrLo, addrHi, size, data, dv.getUint32(at + ioreq.data + 4, true));
      if (dir === IOREQ_READ) { dv.setUint32(at + ioreq.data, r.lo, true); dv.setUint32(at + ioreq.data + 4, r.hi, true); }
      return;
    }
    // rep ins/outs/movs: `count` accesses, the data in guest memory at `data`,
    // stepping by size (backwards with df); the address steps too for MMIO.
    this.stats.rep++;
    const step = df ? -size : size;
    if ((type === IOREQ_TYPE_PIO || type === IOREQ_TYPE_COPY) && dir === IOREQ_READ && size <= 4) {
      this.repRead(type, data, addrLo, size, count, df);
      return;
    }
    const buf = this.scratch.subarray(0, size);
    const bv = new DataView(buf.buffer, buf.byteOffset, size);
    for (let i = 0; i < count; i++) {
      const gpa = data + i * step;
      const a = type === IOREQ_TYPE_COPY ? addrLo + i * step : addrLo;
      try {
        if (dir === IOREQ_READ) {
          const r = this.access(type, dir, a, addrHi, size, 0, 0);
          if (size === 1) bv.setUint8(0, r.lo);
          else if (size === 2) bv.setUint16(0, r.lo, true);
          else bv.setUint32(0, r.lo, true);
          if (size === 8) bv.setUint32(4, r.hi, true);
          this.mem.write(gpa, buf);
        } else {
          this.mem.read(gpa, buf);
          this.access(type, dir, a, addrHi, size, size >= 4 ? bv.getUint32(0, true) : size === 2 ? bv.getUint16(0, true) : buf[0]!,
            size === 8 ? bv.getUint32(4, true) : 0);
        }
      } catch (err) {
        this.stats.bad++;
        this.log(`ioreq: rep access at guest 0x${gpa.toString(16)} failed: ${(err as Error).message}`);
        return;
      }
    }
  }

  /**
   * `rep ins` (how firmware reads a disk by PIO), or a `rep movs` from MMIO
   * to RAM (how firmware copies an option ROM out of its BAR; the address
   * steps with the elements): `count` reads of the port or the MMIO,
   * written to guest memory as one block once all are read, not element by
   * element. The vCPU waits for the answer, so nobody sees the difference,
   * except the modified-memory ring, which gets one entry for the block
   * instead of one per element (a 2 KiB sector by `rep insw` was 1024
   * entries: the ring overflowed and the vCPU threw all its translated code
   * away, several times per boot). Elements read before a failure are
   * written, as the element-wise copy would have.
   */
  private repRead(type: number, data: number, addr: number, size: number, count: number, df: boolean): void {
    const bytes = count * size;
    if (this.repBuf.length < bytes) this.repBuf = new Uint8Array(Math.max(bytes, 2 * this.repBuf.length));
    const buf = this.repBuf;
    const bv = new DataView(buf.buffer);
    // Element i goes to data + i * step: with df the block ends at data + size.
    const low = df ? data - (count - 1) * size : data;
    let done = 0;
    let failure: Error | null = null;
    try {
      if (type === IOREQ_TYPE_PIO && this.h.pioBlock) {
        this.h.pioBlock(addr & 0xffff, size as AccessSize, count, bv, df ? (count - 1) * size : 0, df ? -size : size);
        done = count;
      }
      for (; done < count; done++) {
        const a = type === IOREQ_TYPE_COPY ? (addr + done * (df ? -size : size)) >>> 0 : addr;
        const v = this.access(type, IOREQ_READ, a, 0, size, 0, 0).lo;
        const off = (df ? count - 1 - done : done) * size;
        if (size === 1) buf[off] = v;
        else if (size === 2) bv.setUint16(off, v, true);
        else bv.setUint32(off, v, true);
      }
    } catch (err) {
      failure = err as Error;
    }
    if (done > 0) {
      const first = df ? count - done : 0;
      try {
        this.mem.write(low + first * size, buf.subarray(first * size, (first + done) * size));
      } catch (err) {
        // Part of the block is outside RAM: the elements in order up to the first that is not.
        failure ??= err as Error;
        try {
          for (let i = 0; i < done; i++) {
            const off = (df ? count - 1 - i : i) * size;
            this.mem.write(low + off, buf.subarray(off, off + size));
          }
        } catch { /* the first element outside RAM ends it */ }
      }
    }
    if (failure) {
      this.stats.bad++;
      this.log(`ioreq: rep read into guest 0x${data.toString(16)} failed: ${failure.message}`);
    }
  }

  private access(type: number, dir: number, a: number, aHi: number, size: number, lo: number, hi: number): { lo: number; hi: number } {
    const h = this.h;
    if (size === 8) {
      // Two halves, as QEMU's memory core splits an access wider than the device's.
      const l = this.access(type, dir, a, aHi, 4, lo, 0).lo;
      const u = this.access(type, dir, type === IOREQ_TYPE_COPY ? a + 4 : a, aHi, 4, hi, 0).lo;
      return { lo: l, hi: u };
    }
    const s = size as AccessSize;
    let v = 0;
    switch (type) {
      case IOREQ_TYPE_PIO: v = h.pio(dir, a & 0xffff, s, lo & MASK[s]); break;
      case IOREQ_TYPE_COPY: v = h.mmio(dir, a >>> 0, s, lo & MASK[s]); break;
      case IOREQ_TYPE_PCI_CONFIG: v = h.pciConfig(dir, aHi, a & 0xfff, s, lo & MASK[s]); break;
      default:
        this.stats.bad++;
        v = 0xffffffff;
    }
    return { lo: dir === IOREQ_READ ? (v & MASK[s]) >>> 0 : 0, hi: 0 };
  }

  /** Buffered writes (buf_ioreq_t), in order; an 8-byte one takes two slots. */
  private drainBuffered(): number {
    const b = bufioreqPageOffset(this.id);
    const rpIdx = (b + buffered_iopage.read_pointer) >> 2;
    let rp = Atomics.load(this.i32, rpIdx) >>> 0;
    const wp = Atomics.load(this.i32, (b + buffered_iopage.write_pointer) >> 2) >>> 0;
    let n = 0;
    if (((wp - rp) >>> 0) > IOREQ_BUFFER_SLOT_NUM) {
      // A writer that is not xenemu's vCPU: refuse the whole ring.
      this.stats.bad++;
      Atomics.store(this.i32, rpIdx, wp | 0);
      return 0;
    }
    while (rp !== wp) {
      const at = b + buffered_iopage.buf_ioreq + (rp % IOREQ_BUFFER_SLOT_NUM) * BUF_IOREQ_SIZE;
      const w = this.dv.getUint32(at, true);
      const type = w & 0xff;
      const sz = [1, 2, 4, 8][(w >> 10) & 3]!;
      const addr = (w >>> 12) & 0xfffff;
      let lo = this.dv.getUint32(at + 4, true);
      let hi = 0;
      if (sz === 8) {
        rp = (rp + 1) >>> 0;
        if (rp === wp) break;
        hi = this.dv.getUint32(b + buffered_iopage.buf_ioreq + (rp % IOREQ_BUFFER_SLOT_NUM) * BUF_IOREQ_SIZE + 4, true);
      }
      if (((w >> 9) & 1) === 0) this.access(type, 0, addr, 0, sz, lo, hi);
      lo = 0;
      rp = (rp + 1) >>> 0;
      n++;
    }
    Atomics.store(this.i32, rpIdx, rp | 0);
    this.stats.buffered += n;
    return n;
  }
}
