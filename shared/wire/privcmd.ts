// The privcmd socket: how Xen's C tools, through xenemu's LD_PRELOAD library
// (shared/native/xenemu_privcmd.c), reach the hypervisor as Domain-0
// (docs/xenctrl.md). A Unix stream socket, <rundir>/privcmd.sock (mode 0600),
// served by processes/hypervisor/privcmd_sock.ts.
//
// The library knows no hypercall layout. It sends the hypercall's number and
// its five register arguments; the hypervisor, which decodes Xen's structs,
// asks for the caller's memory it needs (Xen's copy_from_guest) and sends
// what it writes back (copy_to_guest), then the return value:
//
//   library (a Dom0 program)                     hypervisor
//     | HELLO {version, kind, pid}                   |
//     |--------------------------------------------->|
//     |<--------- HELLO_OK {id, hints[op,arg,len]}   |   what to send along with each call
//     | HYPERCALL {op, arg[5], blocks}               |   blocks: the bytes the hints name
//     |--------------------------------------------->|
//     |<------------------------- READ {addr, len}   |   only for what no block held
//     | DATA {status, bytes}                         |
//     |--------------------------------------------->|
//     |<---------------------- WRITE {addr, bytes}   |   no answer: a write that faults
//     |<------------------------------- RET {ret}    |   makes the result -EFAULT
//
// Hints keep the common call at one round trip: HELLO_OK lists, per
// hypercall, which argument points at the struct and how many bytes of it to
// send with the call (struct xen_domctl: 144 bytes at arg 0). They are data
// the hypervisor gives; the library only follows them. An IOCTL (evtchn,
// gntdev: xen/sys/*.h) carries the _IOC_SIZE bytes at its argument the same
// way. A /dev/xen/evtchn file is a connection of its own (kind EVTCHN): after
// HELLO_OK the hypervisor writes pending ports on it as raw u32s, and the
// program's write() of a port unmasks it, as with Linux's evtchn device.
//
// Frames, little-endian: u32 size (of the whole frame, header included),
// u32 type, body. Blocks: u32 count, then per block u64 addr, u32 len, bytes.

export const PRIVCMD_SOCKET = 'privcmd.sock';
export const PRIVCMD_PROTO_VERSION = 1;
export const FRAME_HEADER = 8;
/** A frame larger than this is a broken peer: the connection is closed. */
export const FRAME_MAX = 4 << 20;

/** library -> hypervisor */
export const PC_HELLO = 1;
export const PC_HYPERCALL = 2;
export const PC_IOCTL = 3;
export const PC_DATA = 4;
export const PC_FILE = 5;
export const PC_PING = 6;

/** hypervisor -> library */
export const PC_HELLO_OK = 101;
export const PC_READ = 102;
export const PC_WRITE = 103;
export const PC_RET = 104;
export const PC_FILE_DATA = 105;
export const PC_PONG = 106;
/** Text the library writes to the caller's stderr (why a call was refused), before its RET. */
export const PC_MESSAGE = 107;

/** HELLO kinds. */
export const PC_KIND_MAIN = 1;
export const PC_KIND_EVTCHN = 2;

/** IOCTL devices. */
export const PC_DEV_EVTCHN = 2;
export const PC_DEV_GNTDEV = 3;

/** DATA status: the read faulted (EFAULT) or succeeded (0). */
export const PC_DATA_OK = 0;

/** A hint: with hypercall `op`, send `len` bytes at the address in argument `arg`. */
export interface PrefetchHint { op: number; arg: number; len: number }

/** A block of the caller's memory sent with a call. */
export interface MemBlock { addr: bigint; data: Buffer }

export function frame(type: number, body: Buffer | null): Buffer {
  const len = FRAME_HEADER + (body?.length ?? 0);
  const b = Buffer.allocUnsafe(len);
  b.writeUInt32LE(len, 0);
  b.writeUInt32LE(type, 4);
  if (body) body.copy(b, FRAME_HEADER);
  return b;
}

export function helloOkFrame(id: number, hints: readonly PrefetchHint[]): Buffer {
  const body = Buffer.alloc(8 + 12 * hints.length);
  body.writeUInt32LE(id, 0);
  body.writeUInt32LE(hints.length, 4);
  hints.forEach((h, i) => {
    body.writeUInt32LE(h.op, 8 + 12 * i);
    body.writeUInt32LE(h.arg, 12 + 12 * i);
    body.writeUInt32LE(h.len, 16 + 12 * i);
  });
  return frame(PC_HELLO_OK, body);
}

export function readFrame(addr: bigint, len: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER + 12);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(PC_READ, 4);
  b.writeBigUInt64LE(addr, 8);
  b.writeUInt32LE(len, 16);
  return b;
}

export function writeFrame(addr: bigint, data: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER + 8 + data.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(PC_WRITE, 4);
  b.writeBigUInt64LE(addr, 8);
  b.set(data, 16);
  return b;
}

export function retFrame(ret: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER + 8);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(PC_RET, 4);
  b.writeBigInt64LE(BigInt(ret), 8);
  return b;
}

export function fileDataFrame(err: number, data: Buffer | null): Buffer {
  const body = Buffer.alloc(4 + (data?.length ?? 0));
  body.writeInt32LE(err, 0);
  if (data) data.copy(body, 4);
  return frame(PC_FILE_DATA, body);
}

/** Blocks at `off` of `body`; null when they overrun it. */
export function parseBlocks(body: Buffer, off: number): MemBlock[] | null {
  if (off + 4 > body.length) return off === body.length ? [] : null;
  const n = body.readUInt32LE(off);
  off += 4;
  const out: MemBlock[] = [];
  for (let i = 0; i < n; i++) {
    if (off + 12 > body.length) return null;
    const addr = body.readBigUInt64LE(off);
    const len = body.readUInt32LE(off + 8);
    off += 12;
    if (off + len > body.length) return null;
    out.push({ addr, data: body.subarray(off, off + len) });
    off += len;
  }
  return out;
}

/**
 * Splits a byte stream into frames: push() what arrived, then take whole
 * frames with next() until it returns null. A size below the header or over
 * FRAME_MAX throws (the peer is broken).
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  next(): { type: number; body: Buffer } | null {
    if (this.buf.length < FRAME_HEADER) return null;
    const size = this.buf.readUInt32LE(0);
    if (size < FRAME_HEADER || size > FRAME_MAX) throw new Error(`bad frame size ${size}`);
    if (this.buf.length < size) return null;
    const type = this.buf.readUInt32LE(4);
    const body = this.buf.subarray(FRAME_HEADER, size);
    this.buf = this.buf.subarray(size);
    return { type, body };
  }

  /** What is left past the last whole frame (taken: the reader is empty after). */
  rest(): Buffer {
    const r = this.buf;
    this.buf = Buffer.alloc(0);
    return r;
  }
}
