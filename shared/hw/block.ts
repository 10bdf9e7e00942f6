// Two BlockBackends (shared/hw/backend.ts): a disk in memory, and a raw
// image file. The file back end does synchronous positioned I/O, because
// device models run inside a synchronous access; qemu-dm's ioreq loop is
// where that blocking is allowed to happen.
import * as fs from 'node:fs';
import type { BlockBackend } from './backend.js';

/** A disk held in a byte array (tests, ISO images built on the fly). */
export class MemoryBlockBackend implements BlockBackend {
  constructor(readonly data: Uint8Array, readonly readOnly = false) {}

  get size(): number { return this.data.length; }

  read(offset: number, dst: Uint8Array): void {
    if (offset < 0 || offset + dst.length > this.data.length) throw new RangeError(`read past the end: ${offset}+${dst.length}`);
    dst.set(this.data.subarray(offset, offset + dst.length));
  }

  write(offset: number, src: Uint8Array): void {
    if (this.readOnly) throw new Error('read-only back end');
    if (offset < 0 || offset + src.length > this.data.length) throw new RangeError(`write past the end: ${offset}+${src.length}`);
    this.data.set(src, offset);
  }

  flush(): void { /* nothing to make durable */ }
}

/** A raw image file opened once; close() when the device goes. */
export class FileBlockBackend implements BlockBackend {
  readonly size: number;
  private fd: number;

  constructor(readonly path: string, readonly readOnly = false) {
    this.fd = fs.openSync(path, readOnly ? 'r' : 'r+');
    this.size = fs.fstatSync(this.fd).size;
  }

  read(offset: number, dst: Uint8Array): void {
    if (offset < 0 || offset + dst.length > this.size) throw new RangeError(`read past the end: ${offset}+${dst.length}`);
    let done = 0;
    while (done < dst.length) {
      const n = fs.readSync(this.fd, dst, done, dst.length - done, offset + done);
      if (n === 0) throw new RangeError(`short read at ${offset + done}`);
      done += n;
    }
  }

  write(offset: number, src: Uint8Array): void {
    if (this.readOnly) throw new Error('read-only back end');
    if (offset < 0 || offset + src.length > this.size) throw new RangeError(`write past the end: ${offset}+${src.length}`);
    let done = 0;
    while (done < src.length) done += fs.writeSync(this.fd, src, done, src.length - done, offset + done);
  }

  flush(): void { fs.fdatasyncSync(this.fd); }

  close(): void {
    if (this.fd >= 0) { fs.closeSync(this.fd); this.fd = -1; }
  }
}
