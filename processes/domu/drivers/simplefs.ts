// A small file system on a block device, enough to show data surviving a
// reboot: one flat directory, one extent per file, 4 KiB blocks.
//
//   block 0        superblock: "XENEMUFS" magic, version, total blocks,
//                  next free block, directory blocks
//   blocks 1..16   directory: 64-byte entries {name[48], start, length,
//                  mtime, used}; 1024 files
//   blocks 17..    file data, allocated from `next free` upward; a rewrite
//                  reuses its extent when it fits
//
// Every change writes data, then the directory block, then the superblock,
// then BLKIF_OP_FLUSH_DISKCACHE: when `write` returns, the file is in the
// image on the host's disk.
import type { BlockDevice } from './blkdev.js';

const BLOCK = 4096;
const SECT = BLOCK / 512;
const MAGIC = 'XENEMUFS';
const VERSION = 1;
const DIR_BLOCKS = 16;
const ENTRY = 64;
const NAME_MAX = 47;
const ENTRIES = (DIR_BLOCKS * BLOCK) / ENTRY;
const FIRST_DATA = 1 + DIR_BLOCKS;

export interface FileEntry { index: number; name: string; start: number; length: number; mtime: number }

export class FsError extends Error {
  constructor(readonly code: string, msg: string) { super(msg); this.name = 'FsError'; }
}

export class SimpleFs {
  private constructor(readonly dev: BlockDevice, private total: number, private nextFree: number,
                      private readonly dir: Uint8Array) {}

  /** Formats `dev` (mkfs). */
  static async mkfs(dev: BlockDevice): Promise<SimpleFs> {
    const total = Math.floor(dev.sectors / SECT);
    if (total < FIRST_DATA + 1) throw new FsError('ENOSPC', `${dev.name} is too small for a file system`);
    const fs = new SimpleFs(dev, total, FIRST_DATA, new Uint8Array(DIR_BLOCKS * BLOCK));
    await dev.write(SECT, fs.dir);
    await fs.writeSuper();
    await dev.flush();
    return fs;
  }

  /** Mounts `dev` when it holds a file system; null otherwise. */
  static async mount(dev: BlockDevice): Promise<SimpleFs | null> {
    if (dev.sectors < (FIRST_DATA + 1) * SECT) return null;
    const sb = new Uint8Array(BLOCK);
    await dev.read(0, sb);
    if (Buffer.from(sb.subarray(0, 8)).toString('latin1') !== MAGIC) return null;
    const dv = new DataView(sb.buffer);
    if (dv.getUint32(8, true) !== VERSION) return null;
    const total = dv.getUint32(12, true);
    const nextFree = dv.getUint32(16, true);
    if (total > Math.floor(dev.sectors / SECT) || nextFree < FIRST_DATA || nextFree > total) return null;
    const dir = new Uint8Array(DIR_BLOCKS * BLOCK);
    await dev.read(SECT, dir);
    return new SimpleFs(dev, total, nextFree, dir);
  }

  private async writeSuper(): Promise<void> {
    const sb = new Uint8Array(BLOCK);
    sb.set(Buffer.from(MAGIC, 'latin1'));
    const dv = new DataView(sb.buffer);
    dv.setUint32(8, VERSION, true);
    dv.setUint32(12, this.total, true);
    dv.setUint32(16, this.nextFree, true);
    dv.setUint32(20, DIR_BLOCKS, true);
    await this.dev.write(0, sb);
  }

  private entry(i: number): FileEntry | null {
    const o = i * ENTRY;
    const dv = new DataView(this.dir.buffer, this.dir.byteOffset + o, ENTRY);
    if (dv.getUint32(60, true) !== 1) return null;
    const raw = this.dir.subarray(o, o + 48);
    const end = raw.indexOf(0);
    return {
      index: i, name: Buffer.from(raw.subarray(0, end < 0 ? 48 : end)).toString('utf8'),
      start: dv.getUint32(48, true), length: dv.getUint32(52, true), mtime: dv.getUint32(56, true),
    };
  }

  list(): FileEntry[] {
    const out: FileEntry[] = [];
    for (let i = 0; i < ENTRIES; i++) { const e = this.entry(i); if (e) out.push(e); }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  find(name: string): FileEntry | null {
    for (let i = 0; i < ENTRIES; i++) { const e = this.entry(i); if (e && e.name === name) return e; }
    return null;
  }

  async read(name: string): Promise<Uint8Array> {
    const e = this.find(name);
    if (!e) throw new FsError('ENOENT', `${name}: No such file or directory`);
    const blocks = Math.ceil(e.length / BLOCK);
    const buf = new Uint8Array(blocks * BLOCK);
    if (blocks > 0) await this.dev.read(e.start * SECT, buf);
    return buf.subarray(0, e.length);
  }

  private async putEntry(i: number, e: Omit<FileEntry, 'index'> | null): Promise<void> {
    const o = i * ENTRY;
    this.dir.fill(0, o, o + ENTRY);
    if (e) {
      this.dir.set(Buffer.from(e.name, 'utf8'), o);
      const dv = new DataView(this.dir.buffer, this.dir.byteOffset + o, ENTRY);
      dv.setUint32(48, e.start, true);
      dv.setUint32(52, e.length, true);
      dv.setUint32(56, e.mtime, true);
      dv.setUint32(60, 1, true);
    }
    const blk = Math.floor(o / BLOCK);
    await this.dev.write((1 + blk) * SECT, this.dir.subarray(blk * BLOCK, (blk + 1) * BLOCK));
  }

  async write(name: string, data: Uint8Array): Promise<void> {
    if (!name || Buffer.byteLength(name) > NAME_MAX || name.includes('/')) throw new FsError('EINVAL', `${name}: invalid file name`);
    const old = this.find(name);
    let index = old?.index ?? -1;
    if (index < 0) for (let i = 0; i < ENTRIES && index < 0; i++) if (!this.entry(i)) index = i;
    if (index < 0) throw new FsError('ENOSPC', 'No space left on device (directory full)');
    const blocks = Math.ceil(data.byteLength / BLOCK);
    let start = old && Math.ceil(old.length / BLOCK) >= blocks ? old.start : this.nextFree;
    if (start === this.nextFree) {
      if (this.nextFree + blocks > this.total) throw new FsError('ENOSPC', 'No space left on device');
      this.nextFree += blocks;
    }
    if (blocks === 0) start = 0;
    if (blocks > 0) {
      const buf = new Uint8Array(blocks * BLOCK);
      buf.set(data);
      await this.dev.write(start * SECT, buf);
    }
    await this.putEntry(index, { name, start, length: data.byteLength, mtime: Math.floor(Date.now() / 1000) });
    await this.writeSuper();
    await this.dev.flush();
  }

  async remove(name: string): Promise<void> {
    const e = this.find(name);
    if (!e) throw new FsError('ENOENT', `${name}: No such file or directory`);
    await this.putEntry(e.index, null);
    if (this.dev.features?.discard && this.dev.discard && e.length > 0) {
      await this.dev.discard(e.start * SECT, Math.ceil(e.length / BLOCK) * SECT).catch(() => undefined);
    }
    await this.dev.flush();
  }

  usage(): { total: number; used: number } { return { total: this.total, used: this.nextFree }; }
}
