// Durability: no write that was acknowledged is lost, even to SIGKILL.
//
// Every batch of changes made while handling one burst of input is appended
// to a log as one record before any reply of that burst is sent (group
// commit). The log file is mapped (MAP_SHARED) and a record is stored into
// the mapping: from then on the bytes are in the kernel's page cache, as
// after write(2), so they survive the death of this process, with no system
// call on the way to the reply (write(2) cost 2-4 us a record). Surviving
// the death of the machine would need fsync, which a `--fsync` could add at a
// large cost per write. A record is [u32 length][msgpack batch], the length
// stored after the batch; the file grows in steps of LOG_STEP, the part not
// yet used reads as zeros, and a length of 0 ends the log. A torn last record
// (killed mid-append) is dropped whole on load, so a transaction's changes
// come back all or not at all. Where the file cannot be mapped, records are
// written where the log ends with pwrite(2).
//
// When the log grows past max(8 MiB, twice the last snapshot) the whole tree
// is written to a snapshot (temp file + rename) and the log restarts empty.
// Replaying an old log over a newer snapshot is harmless: records carry
// node states, not deltas.
import { closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, ftruncateSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { encode, decode } from '../../../shared/wire/codec.js';
import type { Effect } from './store.js';
import { dropFilePages, mapFile } from '../../../shared/shm.js';

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
/** The log file grows in steps of this much (mapped as it grows). */
const LOG_STEP = 1 << 20;
const PAGE = 4096;

export class Persistence {
  private readonly logPath: string;
  private readonly snapPath: string;
  private fd: number;
  private logBytes: number;
  private snapBytes = 0;
  private readonly minCompact: number;
  /** The log file's size: logBytes, and the zeros it grew by. */
  private fileBytes: number;
  /** The mapped window of the log, from byte `mapAt` of the file, or undefined (pwrite(2) instead). */
  private map: Buffer | undefined;
  private mapAt = 0;
  private readonly mapped: boolean;

  constructor(dir: string, minCompact = MIN_COMPACT, mapped = true) {
    this.minCompact = minCompact;
    this.mapped = mapped;
    mkdirSync(dir, { recursive: true });
    this.logPath = join(dir, 'xenstored.log');
    this.snapPath = join(dir, 'xenstored.snap');
    // Not O_APPEND: records go where the last one ends, before the zeros.
    this.fd = openSync(this.logPath, constants.O_RDWR | constants.O_CREAT, 0o644);
    this.fileBytes = fstatSync(this.fd).size;
    this.logBytes = this.fileBytes;
  }

  /** Snapshot (if any) and the log's records, torn tail dropped. Called once, before any append. */
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
      if (len === 0 || off + 4 + len > log.length) break; // 0: the zeros past the end
      try {
        batches.push(decode<LogRecord[]>(log.subarray(off + 4, off + 4 + len)));
      } catch {
        break;
      }
      off += 4 + len;
    }
    if (off < log.length) {
      // The zeros the file grew by, or a torn record from a kill
      // mid-append: never acknowledged, drop it.
      ftruncateSync(this.fd, off);
    }
    this.logBytes = this.fileBytes = off;
    return { snapshot, batches };
  }

  /** Appends one batch; returns once the kernel has it. */
  append(batch: LogRecord[]): void {
    if (batch.length === 0) return;
    const body = encode(batch);
    const at = this.logBytes;
    const map = this.windowFor(at, 4 + body.length);
    if (map) {
      // The batch, then its length: until the length is there the record
      // reads as the end of the log.
      body.copy(map, at - this.mapAt + 4);
      map.writeUInt32LE(body.length, at - this.mapAt);
    } else {
      const rec = Buffer.allocUnsafe(4 + body.length);
      rec.writeUInt32LE(body.length, 0);
      body.copy(rec, 4);
      let off = 0;
      while (off < rec.length) off += writeSync(this.fd, rec, off, rec.length - off, at + off);
      this.fileBytes = Math.max(this.fileBytes, at + rec.length);
    }
    this.logBytes = at + 4 + body.length;
  }

  /** The mapping that holds [at, at+len) of the log, the file grown and mapped anew as needed; undefined: use pwrite(2). */
  private windowFor(at: number, len: number): Buffer | undefined {
    if (!this.mapped) return undefined;
    const map = this.map;
    if (map && at + len <= this.mapAt + map.length) return map;
    this.dropMap();
    const size = Math.ceil((at + len) / LOG_STEP) * LOG_STEP;
    const from = Math.floor(at / PAGE) * PAGE;
    let sab: SharedArrayBuffer | undefined;
    try {
      if (size > this.fileBytes) { ftruncateSync(this.fd, size); this.fileBytes = size; }
      sab = mapFile(this.fd, from, size - from);
    } catch {
      sab = undefined;
    }
    if (!sab) return undefined;
    this.mapAt = from;
    this.map = Buffer.from(sab);
    return this.map;
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
    // The mapping goes first: past the file's end it would fault (SIGBUS).
    this.dropMap();
    ftruncateSync(this.fd, 0);
    this.logBytes = this.fileBytes = 0;
    this.snapBytes = body.length;
  }

  /**
   * Forgets the mapping. Its pages leave this process's RSS now (the
   * mapping itself goes when the garbage collector frees it).
   */
  private dropMap(): void {
    if (this.map) dropFilePages(this.map.buffer as SharedArrayBuffer);
    this.map = undefined;
  }

  /** Gives back the zeros the file grew by. */
  close(): void {
    this.dropMap();
    if (this.fileBytes > this.logBytes) ftruncateSync(this.fd, this.logBytes);
    closeSync(this.fd);
  }
}
