// One side of a xenstore shared ring page (struct xenstore_domain_interface,
// io/xs_wire.h). The guest produces requests and consumes responses; the
// daemon the reverse. Indices are free-running uint32s; the producer writes
// data, then publishes the index (Atomics on a shared Int32Array gives the
// ordering Xen gets from its barriers).
//
// The page may be written by a hostile peer at any time: every index is read
// once, checked (prod - cons must be within the ring), and never trusted again.
import {
  XENSTORE_RING_SIZE, XENSTORE_REQ_OFF, XENSTORE_RSP_OFF, XENSTORE_REQ_CONS_OFF,
  XENSTORE_REQ_PROD_OFF, XENSTORE_RSP_CONS_OFF, XENSTORE_RSP_PROD_OFF,
  XENSTORE_SERVER_FEATURES_OFF, XENSTORE_CONNECTION_OFF, XENSTORE_ERROR_OFF,
  MASK_XENSTORE_IDX,
} from '../abi/io/xs_wire.js';
import { PAGE_SIZE } from '../abi/xen.js';

export type XsRingSide = 'guest' | 'daemon';

export class XsRingError extends Error {
  constructor(message: string) { super(message); this.name = 'XsRingError'; }
}

export class XsRing {
  readonly page: Uint8Array;
  private readonly idx: Int32Array;
  private readonly outData: number; // ring this side produces into
  private readonly inData: number; // ring this side consumes from
  private readonly outProd: number; private readonly outCons: number;
  private readonly inProd: number; private readonly inCons: number;

  /** page: a PAGE_SIZE view of the shared page (its buffer a SharedArrayBuffer). */
  constructor(page: Uint8Array, side: XsRingSide) {
    if (page.byteLength < PAGE_SIZE) throw new RangeError(`xenstore ring page must be ${PAGE_SIZE} bytes`);
    this.page = page;
    this.idx = new Int32Array(page.buffer, page.byteOffset + XENSTORE_REQ_CONS_OFF, 7);
    const I = (off: number) => (off - XENSTORE_REQ_CONS_OFF) >> 2;
    if (side === 'guest') {
      this.outData = XENSTORE_REQ_OFF; this.inData = XENSTORE_RSP_OFF;
      this.outProd = I(XENSTORE_REQ_PROD_OFF); this.outCons = I(XENSTORE_REQ_CONS_OFF);
      this.inProd = I(XENSTORE_RSP_PROD_OFF); this.inCons = I(XENSTORE_RSP_CONS_OFF);
    } else {
      this.outData = XENSTORE_RSP_OFF; this.inData = XENSTORE_REQ_OFF;
      this.outProd = I(XENSTORE_RSP_PROD_OFF); this.outCons = I(XENSTORE_RSP_CONS_OFF);
      this.inProd = I(XENSTORE_REQ_PROD_OFF); this.inCons = I(XENSTORE_REQ_CONS_OFF);
    }
  }

  /** Daemon side: a fresh page (indices zero, features advertised). */
  reset(features: number): void {
    for (let i = 0; i < 4; i++) Atomics.store(this.idx, i, 0);
    Atomics.store(this.idx, (XENSTORE_SERVER_FEATURES_OFF - XENSTORE_REQ_CONS_OFF) >> 2, features);
    Atomics.store(this.idx, (XENSTORE_CONNECTION_OFF - XENSTORE_REQ_CONS_OFF) >> 2, 0);
    Atomics.store(this.idx, (XENSTORE_ERROR_OFF - XENSTORE_REQ_CONS_OFF) >> 2, 0);
  }

  setError(code: number): void {
    Atomics.store(this.idx, (XENSTORE_ERROR_OFF - XENSTORE_REQ_CONS_OFF) >> 2, code);
  }

  get error(): number {
    return Atomics.load(this.idx, (XENSTORE_ERROR_OFF - XENSTORE_REQ_CONS_OFF) >> 2);
  }

  /** Bytes free to produce into; throws XsRingError if the peer broke the indices. */
  space(): number {
    const prod = Atomics.load(this.idx, this.outProd) >>> 0;
    const cons = Atomics.load(this.idx, this.outCons) >>> 0;
    const used = (prod - cons) >>> 0;
    if (used > XENSTORE_RING_SIZE) throw new XsRingError(`ring indices broken: prod ${prod} cons ${cons}`);
    return XENSTORE_RING_SIZE - used;
  }

  /** Writes as much of data as fits; returns the count written. */
  write(data: Uint8Array): number {
    const prod = Atomics.load(this.idx, this.outProd) >>> 0;
    const cons = Atomics.load(this.idx, this.outCons) >>> 0;
    const used = (prod - cons) >>> 0;
    if (used > XENSTORE_RING_SIZE) throw new XsRingError(`ring indices broken: prod ${prod} cons ${cons}`);
    const n = Math.min(XENSTORE_RING_SIZE - used, data.length);
    let p = prod;
    let done = 0;
    while (done < n) {
      const at = MASK_XENSTORE_IDX(p);
      const chunk = Math.min(n - done, XENSTORE_RING_SIZE - at);
      this.page.set(data.subarray(done, done + chunk), this.outData + at);
      done += chunk; p = (p + chunk) >>> 0;
    }
    if (n > 0) Atomics.store(this.idx, this.outProd, p | 0);
    return n;
  }

  /** Bytes available to consume (validated). */
  available(): number {
    const prod = Atomics.load(this.idx, this.inProd) >>> 0;
    const cons = Atomics.load(this.idx, this.inCons) >>> 0;
    const avail = (prod - cons) >>> 0;
    if (avail > XENSTORE_RING_SIZE) throw new XsRingError(`ring indices broken: prod ${prod} cons ${cons}`);
    return avail;
  }

  /** Copies out everything available (at most max bytes) and consumes it. */
  read(max = XENSTORE_RING_SIZE): Buffer {
    const prod = Atomics.load(this.idx, this.inProd) >>> 0;
    const cons = Atomics.load(this.idx, this.inCons) >>> 0;
    const avail = (prod - cons) >>> 0;
    if (avail > XENSTORE_RING_SIZE) throw new XsRingError(`ring indices broken: prod ${prod} cons ${cons}`);
    const n = Math.min(avail, max);
    const out = Buffer.allocUnsafe(n);
    let c = cons;
    let done = 0;
    while (done < n) {
      const at = MASK_XENSTORE_IDX(c);
      const chunk = Math.min(n - done, XENSTORE_RING_SIZE - at);
      out.set(this.page.subarray(this.inData + at, this.inData + at + chunk), done);
      done += chunk; c = (c + chunk) >>> 0;
    }
    if (n > 0) Atomics.store(this.idx, this.inCons, c | 0);
    return out;
  }
}
