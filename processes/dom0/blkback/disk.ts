// A raw disk image served by one vbd: a real file, positioned reads and
// writes straight into (and out of) the mapped guest pages, fdatasync for
// BLKIF_OP_FLUSH_DISKCACHE, hole punching for BLKIF_OP_DISCARD.
//
// The data path uses preadv/pwritev on the ring loop's own thread
// (readvSync/writevSync): one system call per request, straight between the
// image (page cache) and the granted pages. Going through libuv's thread
// pool instead costs two thread hand-offs and a promise per request, more
// than the copy itself for a page-cache hit (1 MiB preadv: ~70 us), and the
// ring loop bounds how much it does per turn (vbd.ts). fdatasync and hole
// punching, which can take milliseconds, stay off the loop.
import { readvSync, writevSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { punchHole } from '../../../shared/shm.js';

export class DiskImage {
  private constructor(private readonly fh: FileHandle, readonly path: string, readonly bytes: number,
                      readonly readonly: boolean) {}

  static async open(path: string, readonly: boolean): Promise<DiskImage> {
    const fh = await open(path, readonly ? 'r' : 'r+');
    try {
      const st = await fh.stat();
      if (!st.isFile() && !st.isBlockDevice()) throw new Error(`${path}: not a file or block device`);
      return new DiskImage(fh, path, st.size, readonly);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get fd(): number { return this.fh.fd; }

  async readv(iov: Uint8Array[], pos: number): Promise<void> {
    let want = iov.reduce((n, b) => n + b.byteLength, 0);
    while (want > 0) {
      const { bytesRead } = await this.fh.readv(iov, pos);
      if (bytesRead === 0) { for (const b of iov) b.fill(0); return; } // past EOF of a sparse tail
      want -= bytesRead;
      pos += bytesRead;
      iov = advance(iov, bytesRead);
    }
  }

  async writev(iov: Uint8Array[], pos: number): Promise<void> {
    let want = iov.reduce((n, b) => n + b.byteLength, 0);
    while (want > 0) {
      const { bytesWritten } = await this.fh.writev(iov, pos);
      want -= bytesWritten;
      pos += bytesWritten;
      iov = advance(iov, bytesWritten);
    }
  }

  /** preadv of the whole vector at `pos` (reads past the end of the file give zeros). */
  readvSync(iov: Uint8Array[], pos: number, want: number): void {
    for (;;) {
      const n = readvSync(this.fh.fd, iov, pos);
      if (n === want) return;
      if (n === 0) { for (const b of iov) b.fill(0); return; } // past EOF of a sparse tail
      want -= n;
      pos += n;
      iov = advance(iov, n);
    }
  }

  /** pwritev of the whole vector at `pos`. */
  writevSync(iov: Uint8Array[], pos: number, want: number): void {
    for (;;) {
      const n = writevSync(this.fh.fd, iov, pos);
      if (n === want) return;
      want -= n;
      pos += n;
      iov = advance(iov, n);
    }
  }

  /** fdatasync: what was written is on the disk when this resolves. */
  async flush(): Promise<void> { await this.fh.datasync(); }

  /**
   * Frees [pos, pos+len): fallocate(PUNCH_HOLE|KEEP_SIZE) through the native
   * addon; where the file system refuses, zeros are written instead (the
   * range reads back as zeros either way, as discard-zeroes-data promises).
   * Returns how it was done.
   */
  async discard(pos: number, len: number): Promise<'punch' | 'zero'> {
    if (punchHole(this.fh.fd, pos, len)) return 'punch';
    const zeros = new Uint8Array(Math.min(len, 1 << 20));
    for (let off = 0; off < len; off += zeros.byteLength) {
      await this.writev([zeros.subarray(0, Math.min(zeros.byteLength, len - off))], pos + off);
    }
    return 'zero';
  }

  async close(): Promise<void> { await this.fh.close().catch(() => undefined); }
}

function advance(iov: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of iov) {
    if (n >= b.byteLength) { n -= b.byteLength; continue; }
    out.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return out;
}
