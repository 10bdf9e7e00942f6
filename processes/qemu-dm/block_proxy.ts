// A disk whose sectors live on the other side of qemu-dm's main thread: in a
// stub domain the guest's IDE disks are the stub's own vbds, read and
// written through blkfront (shared/front/blkfront.ts) to Domain-0's blkback,
// as qemu in Xen's stub domain reads /dev/xvda. Device models call their
// BlockBackend synchronously, inside an access; blkfront is asynchronous and
// lives on the main thread with the domain's event channels. So the ioreq
// thread posts each request and sleeps on a shared word until the main
// thread has done it, the same hand-off a claim makes (ioreq_thread.ts).
//
//   ioreq thread (RemoteBlockBackend)         main thread (serveBlockRequest)
//     post {blk, drive, seq, op, offset, len}
//     Atomics.wait(ctl[DONE] == seq) ───────►  blkfront.read/write/flush
//                                               through `data`, status, DONE = seq
//   <──────────────────────────────────────    Atomics.notify
//
// A request larger than the shared buffer goes in pieces. An I/O error is
// thrown to the device model, which reports it to the guest as IDE does.
//
// Reads ahead: IDE's DMA asks for 64 KiB at a time (shared/hw/ide.ts's
// staging chunk), and each hand-off costs a wake-up of the main thread, a
// blkfront request, two events through the hypervisor and a wake-up of
// Domain-0's blkback. A read that starts where the last one ended fetches
// the whole shared buffer and the reads after it are served from there, as
// qemu's block layer and Linux's readahead do for a sequential stream. The
// buffer is 4 MiB: blkfront sends it as four 1 MiB indirect requests at
// once, which blkback takes in one pass of its ring (with 1 MiB, Domain-0
// spent ~560 ms of CPU per GiB the guest read; with 4 MiB ~320, qemu-dm in
// Domain-0 ~840: docs/benchmarks.md, stubdom). The buffer holds what the disk held
// when it was read: a write through this drive drops it (the disk is its
// guest's alone: nothing else writes it behind the device model's back).
import type { BlockBackend } from '../../shared/hw/backend.js';

/** The shared buffer of one drive: the largest piece of a request, and the read-ahead. */
export const BLOCK_PROXY_CHUNK = 4 << 20;
const SECTOR = 512;
/** ctl words: the last request done, and its status (0 or a negative errno). */
const DONE = 0;
const STATUS = 1;
/** How long the ioreq thread waits for one piece before it calls the disk dead. */
const PIECE_TIMEOUT_MS = 30_000;

/** What the main thread gives the ioreq thread for one drive (in workerData). */
export interface RemoteDrive {
  index: number;
  size: number;
  readOnly: boolean;
  ctl: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

export type BlockRequest = { type: 'blk'; index: number; seq: number; op: 'read' | 'write' | 'flush'; offset: number; len: number };

export function remoteDrive(index: number, size: number, readOnly: boolean): RemoteDrive {
  return { index, size, readOnly, ctl: new SharedArrayBuffer(8), data: new SharedArrayBuffer(BLOCK_PROXY_CHUNK) };
}

/** The ioreq thread's side. */
export class RemoteBlockBackend implements BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  private seq = 0;
  /** The disk bytes [cacheOff, cacheOff + cacheLen) sit in `data` (cacheLen 0: nothing). */
  private cacheOff = 0;
  private cacheLen = 0;
  /** Where the last read ended: a read starting there is sequential and reads ahead. */
  private lastEnd = -1;

  constructor(private readonly d: RemoteDrive, private readonly post: (m: BlockRequest) => void) {
    this.size = d.size;
    this.readOnly = d.readOnly;
    this.ctl = new Int32Array(d.ctl);
    this.data = new Uint8Array(d.data);
  }

  private call(op: BlockRequest['op'], offset: number, len: number): void {
    const seq = ++this.seq;
    this.post({ type: 'blk', index: this.d.index, seq, op, offset, len });
    const deadline = Date.now() + PIECE_TIMEOUT_MS;
    while (Atomics.load(this.ctl, DONE) !== seq) {
      if (Date.now() > deadline) throw new Error(`drive ${this.d.index}: no answer from blkfront in ${PIECE_TIMEOUT_MS / 1000} s`);
      Atomics.wait(this.ctl, DONE, Atomics.load(this.ctl, DONE), 100);
    }
    const st = Atomics.load(this.ctl, STATUS);
    if (st !== 0) throw new Error(`drive ${this.d.index}: ${op} at ${offset}+${len}: I/O error (${st})`);
  }

  private check(offset: number, len: number): void {
    if (offset < 0 || offset + len > this.size) throw new RangeError(`past the end: ${offset}+${len}`);
    if (offset % SECTOR !== 0 || len % SECTOR !== 0) throw new RangeError(`not whole sectors: ${offset}+${len}`);
  }

  read(offset: number, dst: Uint8Array): void {
    this.check(offset, dst.length);
    const sequential = offset === this.lastEnd;
    for (let done = 0; done < dst.length;) {
      const at = offset + done;
      if (at < this.cacheOff || at >= this.cacheOff + this.cacheLen) {
        // A miss: the rest of this read, or with a sequential stream as much as the buffer holds.
        const want = sequential ? BLOCK_PROXY_CHUNK : dst.length - done;
        const n = Math.min(BLOCK_PROXY_CHUNK, want, this.size - at);
        this.cacheLen = 0;
        this.call('read', at, n);
        this.cacheOff = at;
        this.cacheLen = n;
      }
      const from = at - this.cacheOff;
      const n = Math.min(this.cacheLen - from, dst.length - done);
      dst.set(this.data.subarray(from, from + n), done);
      done += n;
    }
    this.lastEnd = offset + dst.length;
  }

  write(offset: number, src: Uint8Array): void {
    if (this.readOnly) throw new Error('read-only back end');
    this.check(offset, src.length);
    this.cacheLen = 0; // `data` carries the write
    this.lastEnd = -1;
    for (let done = 0; done < src.length;) {
      const n = Math.min(BLOCK_PROXY_CHUNK, src.length - done);
      this.data.set(src.subarray(done, done + n), 0);
      this.call('write', offset + done, n);
      done += n;
    }
  }

  flush(): void { this.call('flush', 0, 0); }
}

/** What the main thread needs of a disk: blkfront's calls, in sectors of 512 bytes. */
export interface BlockDevice {
  read(sector: number, into: Uint8Array): Promise<void>;
  write(sector: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
}

/** The main thread's side: does one request and wakes the ioreq thread. */
export async function serveBlockRequest(d: RemoteDrive, dev: BlockDevice, m: BlockRequest): Promise<void> {
  const ctl = new Int32Array(d.ctl);
  let status = 0;
  try {
    if (m.len > BLOCK_PROXY_CHUNK || m.offset % SECTOR !== 0 || m.len % SECTOR !== 0) throw new RangeError('bad piece');
    const buf = new Uint8Array(d.data, 0, m.len);
    if (m.op === 'read') await dev.read(m.offset / SECTOR, buf);
    else if (m.op === 'write') await dev.write(m.offset / SECTOR, buf);
    else await dev.flush();
  } catch {
    status = -5; // EIO
  }
  Atomics.store(ctl, STATUS, status);
  Atomics.store(ctl, DONE, m.seq);
  Atomics.notify(ctl, DONE);
}
