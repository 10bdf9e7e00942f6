// Shared I/O rings, from xen/include/public/io/ring.h (Xen 4.17).
//
// Every split driver (blkif, netif tx/rx, ...) uses one shape: a page that
// starts with a 64-byte header
//
//   0  RING_IDX req_prod      written by the front end
//   4  RING_IDX req_event     written by the back end: "notify me at this req_prod"
//   8  RING_IDX rsp_prod      written by the back end
//  12  RING_IDX rsp_event     written by the front end
//  16  union pvt { u8 pvt_pad[4] }, u8 __pad[44]
//  64  union { request; response } ring[RING_SIZE]
//
// RING_SIZE is __RD32((page - 64) / sizeof(entry)): the largest power of two
// that fits, entry = max(request, response) (a union). Indices are free
// running u32 counters; a slot is `idx & (RING_SIZE - 1)`.
//
// The private halves (FrontRing: req_prod_pvt, rsp_cons; BackRing:
// rsp_prod_pvt, req_cons) live in the object, as the _front_ring /
// _back_ring structs do. Shared indices are read and written with Atomics
// (seq-cst), which gives the xen_wmb()/xen_mb() that the macros need: entry
// bytes written before Atomics.store of a producer index are seen by a peer
// that Atomics.load's it.
//
// Notification suppression, as the macros do it: a producer notifies only if
// the peer's *_event lies in (old, new]; a consumer that runs dry sets
// *_event = cons + 1 and looks once more (RING_FINAL_CHECK_FOR_*), so an
// event is never lost and never sent while the peer is busy anyway.
//
// Guest-writable memory (XSA-155): a back end never decodes a request in
// place. copyRequest() (RING_COPY_REQUEST) copies the slot out once; the copy
// is then validated and acted upon. The front end's req_prod is read once per
// batch and checked with RING_REQUEST_PROD_OVERFLOW: a front end that claims
// more requests than the ring holds is refused, not looped over.
//
// This file is an ABI mirror: layout and index arithmetic on a Uint8Array
// view of the shared page, no I/O (notifying is the caller's job).
import { PAGE_SIZE } from '../xen.js';

export type RING_IDX = number;

/** struct __name##_sring header offsets. */
export const sring = {
  req_prod: 0, req_event: 4, rsp_prod: 8, rsp_event: 12, pvt: 16, __pad: 20, ring: 64,
} as const;
export const RING_HEADER_SIZE = 64;

// Word indices of the header in an Int32Array over the page.
const W_REQ_PROD = 0;
const W_REQ_EVENT = 1;
const W_RSP_PROD = 2;
const W_RSP_EVENT = 3;

/** __RD32: round down to a power of two (0 stays 0). */
export function __RD32(x: number): number {
  if (x < 1) return 0;
  return 2 ** Math.floor(Math.log2(x));
}

/** __CONST_RING_SIZE / __RING_SIZE: slots for an entry of `entrySize` bytes in `size` bytes of ring page. */
export function __RING_SIZE(entrySize: number, size = PAGE_SIZE): number {
  return __RD32(Math.floor((size - RING_HEADER_SIZE) / entrySize));
}

/** The union entry of a ring: the larger of request and response. */
export function ringEntrySize(reqSize: number, rspSize: number): number {
  return Math.max(reqSize, rspSize);
}

const u32 = (x: number) => x >>> 0;

/** Shared state of one ring page: the header words and the slots. */
abstract class RingBase {
  /** RING_SIZE(r): slots, a power of two. */
  readonly nr_ents: number;
  protected readonly hdr: Int32Array;

  constructor(readonly page: Uint8Array, readonly entrySize: number, size = page.byteLength) {
    if (page.byteOffset % 4 !== 0) throw new RangeError('ring page must be 4-byte aligned');
    if (!Number.isInteger(entrySize) || entrySize <= 0) throw new RangeError(`bad ring entry size ${entrySize}`);
    this.nr_ents = __RING_SIZE(entrySize, size);
    if (this.nr_ents < 1) throw new RangeError(`a ${entrySize}-byte entry does not fit a ${size}-byte ring`);
    this.hdr = new Int32Array(page.buffer, page.byteOffset, RING_HEADER_SIZE / 4);
  }

  /** Byte offset in the page of slot `idx` (RING_GET_REQUEST / RING_GET_RESPONSE). */
  slotOffset(idx: RING_IDX): number {
    return RING_HEADER_SIZE + ((idx & (this.nr_ents - 1)) * this.entrySize);
  }

  /** A live view of slot `idx` (writes go to the shared page). */
  slot(idx: RING_IDX): Uint8Array {
    const o = this.slotOffset(idx);
    return this.page.subarray(o, o + this.entrySize);
  }

  /** A private copy of slot `idx` (RING_COPY_REQUEST / RING_COPY_RESPONSE): read once. */
  copySlot(idx: RING_IDX, bytes = this.entrySize): Uint8Array {
    const o = this.slotOffset(idx);
    return this.page.slice(o, o + Math.min(bytes, this.entrySize));
  }

  get req_prod(): RING_IDX { return u32(Atomics.load(this.hdr, W_REQ_PROD)); }
  get req_event(): RING_IDX { return u32(Atomics.load(this.hdr, W_REQ_EVENT)); }
  get rsp_prod(): RING_IDX { return u32(Atomics.load(this.hdr, W_RSP_PROD)); }
  get rsp_event(): RING_IDX { return u32(Atomics.load(this.hdr, W_RSP_EVENT)); }
  protected setWord(w: number, v: RING_IDX): void { Atomics.store(this.hdr, w, v | 0); }
}

/** SHARED_RING_INIT: empty ring, events armed at 1, padding zeroed. */
export function SHARED_RING_INIT(page: Uint8Array): void {
  const hdr = new Int32Array(page.buffer, page.byteOffset, RING_HEADER_SIZE / 4);
  page.fill(0, sring.pvt, RING_HEADER_SIZE);
  Atomics.store(hdr, W_REQ_PROD, 0);
  Atomics.store(hdr, W_RSP_PROD, 0);
  Atomics.store(hdr, W_REQ_EVENT, 1);
  Atomics.store(hdr, W_RSP_EVENT, 1);
}

/** The front end's ring (struct __name##_front_ring): produces requests, consumes responses. */
export class FrontRing extends RingBase {
  req_prod_pvt: RING_IDX = 0;
  rsp_cons: RING_IDX = 0;

  /** XEN_FRONT_RING_INIT: SHARED_RING_INIT + FRONT_RING_INIT. */
  static init(page: Uint8Array, entrySize: number, size = page.byteLength): FrontRing {
    SHARED_RING_INIT(page);
    return new FrontRing(page, entrySize, size);
  }

  /** FRONT_RING_ATTACH: an existing shared ring, private indices at `i`. */
  static attach(page: Uint8Array, entrySize: number, i: RING_IDX = 0, size = page.byteLength): FrontRing {
    const r = new FrontRing(page, entrySize, size);
    r.req_prod_pvt = u32(i);
    r.rsp_cons = u32(i);
    return r;
  }

  /** RING_FREE_REQUESTS */
  freeRequests(): number { return this.nr_ents - u32(this.req_prod_pvt - this.rsp_cons); }
  /** RING_FULL */
  full(): boolean { return this.freeRequests() === 0; }

  /**
   * The next request slot to fill (RING_GET_REQUEST(r, r.req_prod_pvt)),
   * zeroed; call produce() after filling it. Null when the ring is full.
   */
  nextRequest(): Uint8Array | null {
    if (this.full()) return null;
    const s = this.slot(this.req_prod_pvt);
    s.fill(0);
    return s;
  }
  /** req_prod_pvt++ (the slot from nextRequest() is now part of the next push). */
  produce(): void { this.req_prod_pvt = u32(this.req_prod_pvt + 1); }

  /** RING_GET_REQUEST: a live view of request slot `idx`. */
  getRequest(idx: RING_IDX): Uint8Array { return this.slot(idx); }

  /** RING_PUSH_REQUESTS */
  pushRequests(): void { this.setWord(W_REQ_PROD, this.req_prod_pvt); }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: true when the back end must be notified. */
  pushRequestsAndCheckNotify(): boolean {
    const old = this.req_prod;
    const nw = this.req_prod_pvt;
    this.setWord(W_REQ_PROD, nw);
    return u32(nw - this.req_event) < u32(nw - old);
  }

  /** RING_HAS_UNCONSUMED_RESPONSES (a count). */
  hasUnconsumedResponses(): number { return u32(this.rsp_prod - this.rsp_cons); }

  /**
   * RING_RESPONSE_PROD_OVERFLOW on rsp_prod read once: true when the back end
   * claims more responses than there are requests outstanding.
   */
  responseProdOverflow(prod: RING_IDX = this.rsp_prod): boolean { return u32(prod - this.rsp_cons) > this.nr_ents; }

  /** RING_COPY_RESPONSE: a private copy of response slot `idx`. */
  copyResponse(idx: RING_IDX, bytes?: number): Uint8Array { return this.copySlot(idx, bytes); }
  /** RING_GET_RESPONSE: a live view of response slot `idx`. */
  getResponse(idx: RING_IDX): Uint8Array { return this.slot(idx); }

  /**
   * Copies out every pushed response (rsp_prod read once), advancing
   * rsp_cons; `overflow` when rsp_prod runs ahead of the requests.
   */
  takeResponses(bytes?: number): { responses: Uint8Array[]; overflow: boolean } {
    const rp = this.rsp_prod;
    if (this.responseProdOverflow(rp)) return { responses: [], overflow: true };
    const responses: Uint8Array[] = [];
    while (this.rsp_cons !== rp) {
      responses.push(this.copySlot(this.rsp_cons, bytes));
      this.rsp_cons = u32(this.rsp_cons + 1);
    }
    return { responses, overflow: false };
  }

  /** RING_FINAL_CHECK_FOR_RESPONSES: re-arms rsp_event when idle; true when there is more work. */
  finalCheckForResponses(): boolean {
    if (this.hasUnconsumedResponses()) return true;
    this.setWord(W_RSP_EVENT, u32(this.rsp_cons + 1));
    return this.hasUnconsumedResponses() !== 0;
  }
}

/** The back end's ring (struct __name##_back_ring): consumes requests, produces responses. */
export class BackRing extends RingBase {
  rsp_prod_pvt: RING_IDX = 0;
  req_cons: RING_IDX = 0;

  /** BACK_RING_INIT / BACK_RING_ATTACH: the front end initialised the shared ring. */
  static attach(page: Uint8Array, entrySize: number, i: RING_IDX = 0, size = page.byteLength): BackRing {
    const r = new BackRing(page, entrySize, size);
    r.rsp_prod_pvt = u32(i);
    r.req_cons = u32(i);
    return r;
  }

  /** RING_HAS_UNCONSUMED_REQUESTS (a count, bounded by the free response slots). */
  hasUnconsumedRequests(): number {
    const req = u32(this.req_prod - this.req_cons);
    const rsp = this.nr_ents - u32(this.req_cons - this.rsp_prod_pvt);
    return Math.min(req, rsp);
  }

  /** RING_REQUEST_CONS_OVERFLOW: would consuming index `cons` overrun unanswered requests? */
  requestConsOverflow(cons: RING_IDX): boolean { return u32(cons - this.rsp_prod_pvt) >= this.nr_ents; }
  /** RING_REQUEST_PROD_OVERFLOW: can there be this many requests? (A false front end otherwise.) */
  requestProdOverflow(prod: RING_IDX): boolean { return u32(prod - this.rsp_prod_pvt) > this.nr_ents; }

  /** RING_COPY_REQUEST: a private copy of request slot `idx` (never decode in place). */
  copyRequest(idx: RING_IDX, bytes?: number): Uint8Array { return this.copySlot(idx, bytes); }

  /** RING_COPY_REQUEST into the caller's buffer (a back end's reused copy): dst.byteLength bytes of slot `idx`. */
  copyRequestTo(idx: RING_IDX, dst: Uint8Array): void {
    const o = this.slotOffset(idx);
    dst.set(this.page.subarray(o, o + Math.min(dst.byteLength, this.entrySize)));
  }

  /**
   * The blkback/netback consumer loop: reads req_prod once, refuses it when it
   * runs ahead of the ring (RING_REQUEST_PROD_OVERFLOW -> `overflow`, take
   * nothing), else copies out requests up to it (or `max`), advancing req_cons
   * and stopping where RING_REQUEST_CONS_OVERFLOW says responses are owed.
   */
  takeRequests(max = Infinity, bytes?: number): { requests: Uint8Array[]; overflow: boolean } {
    const rp = this.req_prod;
    if (this.requestProdOverflow(rp)) return { requests: [], overflow: true };
    const requests: Uint8Array[] = [];
    while (this.req_cons !== rp && requests.length < max) {
      if (this.requestConsOverflow(this.req_cons)) break;
      requests.push(this.copySlot(this.req_cons, bytes));
      this.req_cons = u32(this.req_cons + 1);
    }
    return { requests, overflow: false };
  }

  /**
   * The next response slot (RING_GET_RESPONSE(r, r.rsp_prod_pvt)), zeroed;
   * call produce() after filling it.
   */
  nextResponse(): Uint8Array {
    const s = this.slot(this.rsp_prod_pvt);
    s.fill(0);
    return s;
  }
  /** rsp_prod_pvt++ */
  produce(): void { this.rsp_prod_pvt = u32(this.rsp_prod_pvt + 1); }
  /** RING_GET_RESPONSE: a live view of response slot `idx`. */
  getResponse(idx: RING_IDX): Uint8Array { return this.slot(idx); }

  /** RING_PUSH_RESPONSES */
  pushResponses(): void { this.setWord(W_RSP_PROD, this.rsp_prod_pvt); }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: true when the front end must be notified. */
  pushResponsesAndCheckNotify(): boolean {
    const old = this.rsp_prod;
    const nw = this.rsp_prod_pvt;
    this.setWord(W_RSP_PROD, nw);
    return u32(nw - this.rsp_event) < u32(nw - old);
  }

  /** RING_FINAL_CHECK_FOR_REQUESTS: re-arms req_event when idle; true when there is more work. */
  finalCheckForRequests(): boolean {
    if (this.hasUnconsumedRequests()) return true;
    this.setWord(W_REQ_EVENT, u32(this.req_cons + 1));
    return this.hasUnconsumedRequests() !== 0;
  }
}
