// The vCPU's end of the ioreq protocol (hvm/ioreq.h): an access no platform
// device takes is written into the vCPU's ioreq_t of the server that claimed
// it, the server is woken, and the vCPU waits for STATE_IORESP_READY; writes
// to the VGA window go to the buffered ring when the server takes buffered
// ioreqs, without waiting.
//
//   vCPU                                      device model (qemu-dm)
//   body, state=READY, dm_doorbell++ ─futex─>  READY -> INPROCESS, emulate,
//   (the futex only if the server sleeps)      data, state=IORESP_READY ─futex─> vCPU
//   spin, nap, then block on the state word
//   read data, state=NONE
//
// How the vCPU waits: it spins (a device model that is awake answers in a
// few microseconds); then it sleeps on the state word keeping its slice,
// until NAP_NS after the request; only then does it block
// (VcpuContext.block), giving the slice back. Blocking costs a round trip
// to the hypervisor for a new slice once the answer is there, a few hundred
// microseconds, against the futex wake-up's few: a device model that was
// asleep or preempted answers well within NAP_NS, and a device model that
// takes longer (a disk read) is worth the pCPU. The spin adapts as the
// device model's does (spinBudget: SPIN_NS again after a spin that got its
// answer, halved by each that did not, down to MIN_SPIN_NS, a full one every
// PROBE_EVERY requests): spinning does not pay when the device model's
// thread waits for this one's CPU (a loaded host). Nor does it when this
// request had to wake the device model and it has not woken WAKE_GRACE_NS
// later (its dm_sleeping still set): it waits for a CPU, likely this one.
//
// Xen notifies through the vCPU's event channel (vp_eport, in the ioreq_t);
// xenemu's device models and vCPUs share the pages, so a futex on the
// state word does the same in microseconds, and vp_eport is still allocated
// and written for a device model that binds it.
import { futexWait, futexWake } from '../../../shared/shm.js';
import {
  IOREQ_READ, IOREQ_STATE_WORD, IOREQ_TYPE_COPY, STATE_IOREQ_NONE, STATE_IOREQ_READY, STATE_IORESP_READY,
  BUF_IOREQ_SIZE, IOREQ_BUFFER_SLOT_NUM, buffered_iopage, bufIoreqWord, ioreq, ioreqBits, sharedIopageSlot,
} from '../../../shared/abi/hvm/ioreq.js';
import { bufioreqPageOffset, hvm_ctl, ioreqPageOffset } from '../../../shared/abi/hvm/xenemu_hvm.js';

/** How the vCPU waits for an answer: spin at most this long ... */
const SPIN_NS = 30_000n;
/** ... and at least this long (the budget halves with each spin without an answer; a full spin every PROBE_EVERY) ... */
const MIN_SPIN_NS = 1_000n;
const PROBE_EVERY = 64;
/** A server this request woke that has not cleared dm_sleeping after this long waits for a CPU: stop spinning. */
const WAKE_GRACE_NS = 4_000n;
/** ... then sleep keeping the slice until this long after the request, then block (VcpuContext.block). */
const NAP_NS = 1_000_000n;

export type BlockOn = (sab: SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs: number) => void;

export class IoreqClient {
  private readonly i32: Int32Array;
  private readonly dv: DataView;
  /** How long the next spin may last. */
  private spinBudget = SPIN_NS;
  private sinceProbe = 0;
  /** Requests sent, answered while spinning, while napping, after blocking; buffered writes: for stats. */
  readonly stats = { sync: 0, spun: 0, napped: 0, blocked: 0, buffered: 0 };

  constructor(private readonly seg: SharedArrayBuffer, private readonly vcpu: number, private readonly block: BlockOn) {
    this.i32 = new Int32Array(seg);
    this.dv = new DataView(seg);
  }

  /**
   * One synchronous ioreq to server `s`; returns the low 32 bits of a read's
   * data (0 for a write). `addrHi` is the address's upper half (a PCI
   * configuration access's SBDF). `data` is the value of a write, or with
   * dataIsPtr the guest address of the buffer. Numbers, not BigInts: this is
   * every port access of the guest.
   */
  send(s: number, type: number, addr: number, addrHi: number, size: number, dir: number, data: number,
       count = 1, dataIsPtr = false, df = false): number {
    const at = ioreqPageOffset(s) + sharedIopageSlot(this.vcpu);
    const word = (at + IOREQ_STATE_WORD) >> 2;
    const dv = this.dv;
    dv.setUint32(at + ioreq.addr, addr >>> 0, true);
    dv.setUint32(at + ioreq.addr + 4, addrHi >>> 0, true);
    dv.setUint32(at + ioreq.data, data >>> 0, true);
    dv.setUint32(at + ioreq.data + 4, 0, true);
    dv.setUint32(at + ioreq.count, count, true);
    dv.setUint32(at + ioreq.size, size, true);
    dv.setUint8(at + ioreq.type, type);
    // Publish: state READY with the flags, in one store of the word that also
    // holds _pad0 and type (the word the device model and the futex watch).
    const ready = (ioreqBits(STATE_IOREQ_READY, dataIsPtr, dir, df) << 16) | (type << 24);
    Atomics.store(this.i32, word, ready);
    const woke = this.ring(s);
    this.stats.sync++;
    this.wait(at + IOREQ_STATE_WORD, word, woke ? (hvm_ctl.dm_sleeping >> 2) + s : -1);
    const out = dir === IOREQ_READ ? dv.getUint32(at + ioreq.data, true) : 0;
    Atomics.store(this.i32, word, (type << 24) | (ioreqBits(STATE_IOREQ_NONE, false, 0, false) << 16));
    return out;
  }

  /**
   * Until the answer. `sleeping`: the server's dm_sleeping word when this
   * request had to wake it (else -1); a server still not awake WAKE_GRACE_NS
   * later waits for a CPU, likely this thread's, and the spin stops.
   */
  private wait(byteOffset: number, word: number, sleeping: number): void {
    const t0 = process.hrtime.bigint();
    let spin = this.spinBudget;
    if (spin < SPIN_NS && ++this.sinceProbe >= PROBE_EVERY) { spin = SPIN_NS; this.sinceProbe = 0; }
    const spinUntil = t0 + spin;
    const graceUntil = t0 + WAKE_GRACE_NS;
    for (;;) {
      const w = Atomics.load(this.i32, word);
      if (((w >>> 16) & 0xf) === STATE_IORESP_READY) {
        this.stats.spun++;
        this.spinBudget = SPIN_NS;
        return;
      }
      const now = process.hrtime.bigint();
      if (now > spinUntil) break;
      if (sleeping >= 0 && now > graceUntil && Atomics.load(this.i32, sleeping) !== 0) break;
    }
    this.spinBudget = this.spinBudget / 2n > MIN_SPIN_NS ? this.spinBudget / 2n : MIN_SPIN_NS;
    // The device model's answer wakes this thread directly (its futexWake on the state word).
    const until = t0 + NAP_NS;
    for (;;) {
      const w = Atomics.load(this.i32, word);
      if (((w >>> 16) & 0xf) === STATE_IORESP_READY) { this.stats.napped++; return; }
      const left = until - process.hrtime.bigint();
      if (left <= 0n) break;
      futexWait(this.seg, byteOffset, w, Number(left) / 1e6);
    }
    for (;;) {
      const w = Atomics.load(this.i32, word);
      if (((w >>> 16) & 0xf) === STATE_IORESP_READY) { this.stats.blocked++; return; }
      this.block(this.seg, byteOffset, w, 100);
    }
  }

  /**
   * A write to server `s`'s buffered ring (buf_ioreq_t, 8 bytes; 20 bits of
   * address: the VGA window, or a port with IOREQ_TYPE_PIO). False when the ring is full: the
   * caller sends it synchronously instead, which also orders it after
   * everything buffered before (the device model drains the ring first).
   */
  buffered(s: number, addr: number, size: 1 | 2 | 4, value: number, type = IOREQ_TYPE_COPY): boolean {
    const base = bufioreqPageOffset(s);
    const rp = Atomics.load(this.i32, (base + buffered_iopage.read_pointer) >> 2) >>> 0;
    const wp = Atomics.load(this.i32, (base + buffered_iopage.write_pointer) >> 2) >>> 0;
    if (((wp - rp) >>> 0) >= IOREQ_BUFFER_SLOT_NUM) return false;
    const at = base + buffered_iopage.buf_ioreq + (wp % IOREQ_BUFFER_SLOT_NUM) * BUF_IOREQ_SIZE;
    this.dv.setUint32(at, bufIoreqWord(type, 0, size, addr), true);
    this.dv.setUint32(at + 4, value >>> 0, true);
    Atomics.store(this.i32, (base + buffered_iopage.write_pointer) >> 2, (wp + 1) | 0);
    this.stats.buffered++;
    this.ring(s);
    return true;
  }

  /** Tells server s there is work: its doorbell, and a futex wake only if it sleeps (then true). */
  private ring(s: number): boolean {
    Atomics.add(this.i32, (hvm_ctl.dm_doorbell >> 2) + s, 1);
    if (!Atomics.load(this.i32, (hvm_ctl.dm_sleeping >> 2) + s)) return false;
    futexWake(this.seg, hvm_ctl.dm_doorbell + 4 * s, 1);
    return true;
  }
}
