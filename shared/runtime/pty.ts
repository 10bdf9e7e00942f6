// One pseudo-terminal pair made with node-pty 1.1.0's `open()` (docs/design.md §7): xenconsoled's
// consoles and qemu-dm's emulated serial ports.
//
// What node-pty gives and what it does not:
//   - `_fd` is the master descriptor, `_pty` the slave's path (/dev/pts/N);
//     `_master` and `_slave` are tty.ReadStreams on them. Both descriptors are
//     non-blocking (node-pty sets O_NONBLOCK), so fs.writeSync on the master
//     never blocks: a full PTY answers EAGAIN.
//   - `write()` throws on an opened PTY, so output goes to the master with fs.
//   - `destroy()` must not be used: it sends SIGHUP to `pid`, which is -1 for
//     an opened PTY, and kill(-1) means every process we may signal.
//   - libuv re-opens a slave tty by path for its stream, leaving node-pty's
//     original slave descriptor open behind the stream: that one is ours to
//     keep (below) and to close, or every console would leak it.
//
// The slave is put in raw mode (cfmakeraw, as Xen's xenconsoled does: no
// echo, no CR/LF translation) through the slave stream's setRawMode(true).
// Then one slave descriptor is kept open and never read, so the master does
// not see EIO while no client is attached. A paused stream is not enough for
// that: node's Readable still reads ahead into its buffer (up to its
// highWaterMark) once resumed, and node-pty resumes it, so it would steal
// output from clients. So the slave stream is destroyed before it ever
// reads, and the descriptor kept is node-pty's original slave descriptor (a
// plain, non-blocking fd no event loop watches).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import type { ReadStream } from 'node:tty';

const require = createRequire(import.meta.url);

interface OpenedPty {
  _fd: number;
  _pty: string;
  _master: ReadStream;
  _slave: ReadStream;
}

interface NodePty {
  open(opts: { cols?: number; rows?: number; encoding?: string | null }): OpenedPty;
}

export class ConsolePty {
  readonly path: string;
  readonly masterFd: number;
  private readonly master: ReadStream;
  /** The slave descriptor held open and unread. */
  private slaveFd: number;
  /** Only when no plain slave descriptor could be found (no /proc): a paused stream. */
  private slave: ReadStream | undefined;
  private closed = false;

  constructor(onInput: (data: Buffer) => void) {
    const nodePty = require('node-pty') as NodePty;
    const p = nodePty.open({ cols: 80, rows: 25, encoding: null });
    this.path = p._pty;
    this.masterFd = p._fd;
    this.master = p._master;
    p._slave.setRawMode(true);
    const streamFd = (p._slave as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    const plain = fdsOpenOn(this.path).filter((fd) => fd !== streamFd);
    if (plain.length > 0) {
      // Keep node-pty's own slave descriptor; the stream goes before its first read.
      this.slaveFd = plain[0]!;
      for (const fd of plain.slice(1)) { try { fs.closeSync(fd); } catch { /* gone */ } }
      p._slave.on('error', () => {});
      p._slave.destroy();
    } else {
      this.slaveFd = streamFd;
      this.slave = p._slave;
      this.slave.pause();
      this.slave.on('error', () => {});
    }
    this.master.on('data', (d: Buffer) => onInput(d));
    // EIO from the master would mean the slave is gone; it is not while we
    // hold it, and a daemon must never die of a console anyway.
    this.master.on('error', () => {});
  }

  /**
   * Write guest output to the master. Returns the bytes taken; what a full
   * PTY (nobody reading) cannot take is dropped here: it is kept in the
   * backlog and the log, and the guest is never held up by a missing reader.
   */
  write(data: Uint8Array): number {
    if (this.closed) return 0;
    let off = 0;
    while (off < data.byteLength) {
      try {
        off += fs.writeSync(this.masterFd, data, off, data.byteLength - off);
      } catch {
        break; // EAGAIN: the slave's input queue is full
      }
    }
    return off;
  }

  /**
   * Discard output queued in the PTY that no client has read yet, so that a
   * client attaching after a backlog replay does not see those bytes twice.
   * Reads our own non-blocking slave descriptor until EAGAIN.
   */
  flushUnread(): number {
    if (this.closed || this.slaveFd < 0) return 0;
    const buf = Buffer.allocUnsafe(65536);
    let n = 0;
    for (let i = 0; i < 64; i++) {
      let got: number;
      try { got = fs.readSync(this.slaveFd, buf, 0, buf.length, null); } catch { break; }
      if (got <= 0) break;
      n += got;
    }
    return n;
  }

  /** Close both sides; resolves when the descriptors are closed. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    const done = (s: ReadStream) => new Promise<void>((resolve) => {
      if ((s as unknown as { closed?: boolean }).closed) { resolve(); return; }
      s.once('close', () => resolve());
      s.destroy();
    });
    const waits = [done(this.master)];
    if (this.slave) waits.push(done(this.slave));
    else if (this.slaveFd >= 0) { try { fs.closeSync(this.slaveFd); } catch { /* gone */ } }
    this.slaveFd = -1;
    return Promise.all(waits).then(() => undefined);
  }
}

/** Descriptors of this process open on `ptyPath` (Linux /proc; [] elsewhere). */
function fdsOpenOn(ptyPath: string): number[] {
  let fds: string[];
  try { fds = fs.readdirSync('/proc/self/fd'); } catch { return []; }
  const out: number[] = [];
  for (const f of fds) {
    const fd = Number(f);
    if (!Number.isInteger(fd)) continue;
    try { if (fs.readlinkSync(`/proc/self/fd/${f}`) === ptyPath) out.push(fd); } catch { /* raced */ }
  }
  return out;
}
