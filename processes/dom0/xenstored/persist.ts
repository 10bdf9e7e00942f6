// Durability: no write that was acknowledged is lost, even to SIGKILL.
//
// Every batch of changes made while handling one burst of input is appended
// to a log as one record, with one write(2), before any reply of that burst is
// sent (group commit). Once write(2) has returned the bytes are in the
// kernel's page cache, so they survive the death of this process; surviving
// the death of the machine would need fsync, which a `--fsync` could add at a
// large cost per write. A record is [u32 length][msgpack batch]; a torn last
// record (killed mid-append) is dropped whole on load, so a transaction's
// changes come back all or not at all.
//
// When the log grows past max(8 MiB, twice the last snapshot) the whole tree
// is written to a snapshot (temp file + rename) and the log restarts empty.
// Replaying an old log over a newer snapshot is harmless: records carry
// node states, not deltas.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, ftruncateSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { encode, decode } from '../../../shared/wire/codec.js';
import type { Effect } from './store.js';

export type DomainRecord =
  | { t: 'intro'; domid: number; mfn: number; port: number }
  | { t: 'rel'; domid: number }
  | { t: 'tgt'; domid: number; target: number }
  /** SET_PERMS on @introduceDomain or @releaseDomain. */
  | { t: 'sp'; p: string; perms: string };

export type LogRecord = Effect | DomainRecord;

export interface Snapshot {
  version: 1;
  /** [path, value, perms] with every parent before its children. */
  nodes: Array<[string, string, string]>;
  domains: Array<{ domid: number; mfn: number; port: number; target?: number }>;
  /** Perms of the special nodes, where SET_PERMS changed them: [name, perms]. */
  special?: Array<[string, string]>;
}

const MIN_COMPACT = 8 << 20;

export class Persistence {
  private readonly logPath: string;
  private readonly snapPath: string;
  private fd: number;
  private logBytes: number;
  private snapBytes = 0;
  private readonly minCompact: number;

  constructor(dir: string, minCompact = MIN_COMPACT) {
    this.minCompact = minCompact;
    mkdirSync(dir, { recursive: true });
    this.logPath = join(dir, 'xenstored.log');
    this.snapPath = join(dir, 'xenstored.snap');
    this.fd = openSync(this.logPath, 'a+');
    this.logBytes = fstatSync(this.fd).size;
  }

  /** Snapshot (if any) and the log's records, torn tail dropped. */
  load(): { snapshot: Snapshot | undefined; batches: LogRecord[][] } {
    let snapshot: Snapshot | undefined;
    if (existsSync(this.snapPath)) {
      const buf = readFileSync(this.snapPath);
      this.snapBytes = buf.length;
      snapshot = decode<Snapshot>(buf);
    }
    const log = readFileSync(this.logPath);
    const batches: LogRecord[][] = [];
    let off = 0;
    while (off + 4 <= log.length) {
      const len = log.readUInt32LE(off);
      if (off + 4 + len > log.length) break;
      try {
        batches.push(decode<LogRecord[]>(log.subarray(off + 4, off + 4 + len)));
      } catch {
        break;
      }
      off += 4 + len;
    }
    if (off < log.length) {
      // A torn record from a kill mid-append: never acknowledged, drop it.
      ftruncateSync(this.fd, off);
      this.logBytes = off;
    }
    return { snapshot, batches };
  }

  /** Appends one batch; returns once the kernel has it. */
  append(batch: LogRecord[]): void {
    if (batch.length === 0) return;
    const body = encode(batch);
    const rec = Buffer.allocUnsafe(4 + body.length);
    rec.writeUInt32LE(body.length, 0);
    body.copy(rec, 4);
    let off = 0;
    while (off < rec.length) off += writeSync(this.fd, rec, off, rec.length - off);
    this.logBytes += rec.length;
  }

  get wantsCompaction(): boolean {
    return this.logBytes > Math.max(this.minCompact, this.snapBytes * 2);
  }

  /** Writes a full snapshot and empties the log. */
  compact(snap: Snapshot): void {
    const tmp = this.snapPath + '.tmp';
    const body = encode(snap);
    const fd = openSync(tmp, 'w');
    try {
      let off = 0;
      while (off < body.length) off += writeSync(fd, body, off, body.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.snapPath);
    ftruncateSync(this.fd, 0);
    this.logBytes = 0;
    this.snapBytes = body.length;
  }

  close(): void {
    closeSync(this.fd);
  }
}
