// Console ring, from xen/include/public/io/console.h (libxen-dev 4.17):
//
//   typedef uint32_t XENCONS_RING_IDX;
//   #define MASK_XENCONS_IDX(idx, ring) ((idx) & (sizeof(ring)-1))
//   struct xencons_interface {
//       char in[1024];                         offset    0
//       char out[2048];                        offset 1024
//       XENCONS_RING_IDX in_cons, in_prod;     offset 3072, 3076
//       XENCONS_RING_IDX out_cons, out_prod;   offset 3080, 3084
//   };                                         size   3088
//
// `out` carries guest output to the backend (xenconsoled), `in` carries
// keystrokes to the guest. Indices are free-running 32-bit counters: the
// producer only ever increments its index, the consumer its own, and
// `prod - cons` (mod 2^32) is the number of unread bytes. A position inside
// the ring is the index masked by the (power-of-two) ring size.
//
// The page is shared with the other side, so both sides treat every index in
// it as hostile: each is read once (Atomics.load, which also orders the data
// accesses after it like Xen's rmb), checked (`prod - cons` never exceeds the
// ring size), and only then used; the consumer publishes its new index with
// Atomics.store after it copied the bytes out (Xen's mb before the update).
// An inconsistent ring is reported as data (-XEN_EINVAL), never looped on.
//
// Layout is little-endian as on x86; the index view is an Int32Array, which
// uses the platform's order (little-endian on every host xenemu runs on).
import { XEN_EINVAL } from '../errno.js';

export type XENCONS_RING_IDX = number;

export const XENCONS_IN_SIZE = 1024;
export const XENCONS_OUT_SIZE = 2048;

export const XENCONS_IN_OFFSET = 0;
export const XENCONS_OUT_OFFSET = 1024;
export const XENCONS_IN_CONS_OFFSET = 3072;
export const XENCONS_IN_PROD_OFFSET = 3076;
export const XENCONS_OUT_CONS_OFFSET = 3080;
export const XENCONS_OUT_PROD_OFFSET = 3084;
export const XENCONS_INTERFACE_SIZE = 3088;

/** MASK_XENCONS_IDX(idx, ring): position of a free-running index in a ring of `size` bytes. */
export function MASK_XENCONS_IDX(idx: number, size: number): number {
  return (idx >>> 0) & (size - 1);
}

// Slots of the Int32Array index view (offset 3072, four u32).
const IN_CONS = 0;
const IN_PROD = 1;
const OUT_CONS = 2;
const OUT_PROD = 3;

/** Result of consuming bytes from a ring: the bytes, or a negative Xen errno. */
export type XenconsRead = { ok: true; data: Uint8Array } | { ok: false; errno: number };

/**
 * A view of one xencons_interface. `page` is a Uint8Array over (a slice of) the
 * shared console page; its byteOffset must be 4-byte aligned so the index
 * fields can be reached with Atomics.
 */
export class XenconsInterface {
  readonly page: Uint8Array;
  private readonly idx: Int32Array;

  constructor(page: Uint8Array) {
    if (page.byteLength < XENCONS_INTERFACE_SIZE) {
      throw new RangeError(`console page too small: ${page.byteLength} < ${XENCONS_INTERFACE_SIZE}`);
    }
    if ((page.byteOffset + XENCONS_IN_CONS_OFFSET) % 4 !== 0) {
      throw new RangeError('console page index fields are not 4-byte aligned');
    }
    this.page = page;
    this.idx = new Int32Array(page.buffer, page.byteOffset + XENCONS_IN_CONS_OFFSET, 4);
  }

  // Raw index access, for tests and for diagnostics. Values are u32.
  get in_cons(): number { return Atomics.load(this.idx, IN_CONS) >>> 0; }
  get in_prod(): number { return Atomics.load(this.idx, IN_PROD) >>> 0; }
  get out_cons(): number { return Atomics.load(this.idx, OUT_CONS) >>> 0; }
  get out_prod(): number { return Atomics.load(this.idx, OUT_PROD) >>> 0; }
  set in_cons(v: number) { Atomics.store(this.idx, IN_CONS, v | 0); }
  set in_prod(v: number) { Atomics.store(this.idx, IN_PROD, v | 0); }
  set out_cons(v: number) { Atomics.store(this.idx, OUT_CONS, v | 0); }
  set out_prod(v: number) { Atomics.store(this.idx, OUT_PROD, v | 0); }

  /** Backend: consume guest output (`out`), at most `max` bytes. */
  readOut(max = XENCONS_OUT_SIZE): XenconsRead {
    return this.consume(XENCONS_OUT_OFFSET, XENCONS_OUT_SIZE, OUT_CONS, OUT_PROD, max);
  }

  /** Backend: produce keystrokes into `in`; returns bytes queued (maybe fewer) or -XEN_EINVAL. */
  writeIn(data: Uint8Array): number {
    return this.produce(XENCONS_IN_OFFSET, XENCONS_IN_SIZE, IN_CONS, IN_PROD, data);
  }

  /** Frontend: produce output into `out`; returns bytes queued (maybe fewer) or -XEN_EINVAL. */
  writeOut(data: Uint8Array): number {
    return this.produce(XENCONS_OUT_OFFSET, XENCONS_OUT_SIZE, OUT_CONS, OUT_PROD, data);
  }

  /** Frontend: consume keystrokes from `in`, at most `max` bytes. */
  readIn(max = XENCONS_IN_SIZE): XenconsRead {
    return this.consume(XENCONS_IN_OFFSET, XENCONS_IN_SIZE, IN_CONS, IN_PROD, max);
  }

  /** Bytes waiting in `out`, or -XEN_EINVAL if the indices are inconsistent. */
  outPending(): number {
    const n = (this.out_prod - this.out_cons) >>> 0;
    return n > XENCONS_OUT_SIZE ? -XEN_EINVAL : n;
  }

  /** Bytes waiting in `in`, or -XEN_EINVAL if the indices are inconsistent. */
  inPending(): number {
    const n = (this.in_prod - this.in_cons) >>> 0;
    return n > XENCONS_IN_SIZE ? -XEN_EINVAL : n;
  }

  private consume(base: number, size: number, consSlot: number, prodSlot: number, max: number): XenconsRead {
    // Each index is read exactly once; everything below uses these copies.
    const cons = Atomics.load(this.idx, consSlot) >>> 0;
    const prod = Atomics.load(this.idx, prodSlot) >>> 0;
    const avail = (prod - cons) >>> 0;
    if (avail > size) return { ok: false, errno: -XEN_EINVAL };
    const n = Math.min(avail, Math.max(0, Math.floor(max)));
    const data = new Uint8Array(n);
    const start = MASK_XENCONS_IDX(cons, size);
    const first = Math.min(n, size - start);
    data.set(this.page.subarray(base + start, base + start + first), 0);
    if (n > first) data.set(this.page.subarray(base, base + (n - first)), first);
    // Publish only after the copy: the producer may reuse the space at once.
    if (n > 0) Atomics.store(this.idx, consSlot, (cons + n) | 0);
    return { ok: true, data };
  }

  private produce(base: number, size: number, consSlot: number, prodSlot: number, data: Uint8Array): number {
    const cons = Atomics.load(this.idx, consSlot) >>> 0;
    const prod = Atomics.load(this.idx, prodSlot) >>> 0;
    const used = (prod - cons) >>> 0;
    if (used > size) return -XEN_EINVAL;
    const n = Math.min(size - used, data.byteLength);
    const start = MASK_XENCONS_IDX(prod, size);
    const first = Math.min(n, size - start);
    this.page.set(data.subarray(0, first), base + start);
    if (n > first) this.page.set(data.subarray(first, n), base);
    // Publish after the bytes are in place (Xen's wmb before the prod update).
    if (n > 0) Atomics.store(this.idx, prodSlot, (prod + n) | 0);
    return n;
  }
}
