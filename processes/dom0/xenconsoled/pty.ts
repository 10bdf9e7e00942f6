// One pseudo-terminal pair made with node-pty 1.1.0's `open()` (DESIGN.md §7).
//
// What node-pty gives and what it does not:
//   - `_fd` is the master descriptor, `_pty` the slave's path (/dev/pts/N);
//     `_master` and `_slave` are tty.ReadStreams on them. Both descriptors are
//     non-blocking (node-pty sets O_NONBLOCK), so fs.writeSync on the master
//     never blocks: a full PTY answers EAGAIN.
//   - `write()` throws on an opened PTY, so output goes to the master with fs.
//   - `destroy()` must not be used: it sends SIGHUP to `pid`, which is -1 for
//     an opened PTY, and kill(-1) means every process we may signal.
//   - libuv re-opens a slave tty by path and dup2()s it, leaving node-pty's
//     original slave descriptor open behind the stream; we close it here, or
//     every console would leak one descriptor.
//
// The slave stream is put in raw mode (cfmakeraw, as Xen's xenconsoled does:
// no echo, no CR/LF translation) and paused: it is never read, it only keeps
// the slave open so the master does not see EIO while no client is attached,
// and a paused reader takes nothing away from a client reading the slave.
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
  private readonly slave: ReadStream;
  private readonly slaveFd: number;
  private closed = false;

  constructor(onInput: (data: Buffer) => void) {
    const nodePty = require('node-pty') as NodePty;
    const p = nodePty.open({ cols: 80, rows: 25, encoding: null });
    this.path = p._pty;
    this.masterFd = p._fd;
    this.master = p._master;
    this.slave = p._slave;
    this.slave.pause();
    this.slave.setRawMode(true);
    this.slaveFd = (this.slave as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    closeStraySlaveFds(this.path, this.slaveFd);
    this.master.on('data', (d: Buffer) => onInput(d));
    // EIO from the master would mean the slave is gone; it is not while we
    // hold it, and a daemon must never die of a console anyway.
    this.master.on('error', () => {});
    this.slave.on('error', () => {});
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
   * Reads our own (paused, non-blocking) slave descriptor until EAGAIN.
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
      if (s.destroyed && (s as unknown as { closed?: boolean }).closed) { resolve(); return; }
      s.once('close', () => resolve());
      s.destroy();
    });
    return Promise.all([done(this.slave), done(this.master)]).then(() => undefined);
  }
}

function closeStraySlaveFds(ptyPath: string, keep: number): void {
  let fds: string[];
  try { fds = fs.readdirSync('/proc/self/fd'); } catch { return; }
  for (const f of fds) {
    const fd = Number(f);
    if (fd === keep || !Number.isInteger(fd)) continue;
    let target: string;
    try { target = fs.readlinkSync(`/proc/self/fd/${f}`); } catch { continue; }
    if (target === ptyPath) {
      try { fs.closeSync(fd); } catch { /* already gone */ }
    }
  }
}
