// The saved-domain file of `xl save` / `xl restore` (docs/saverestore.md).
//
//   xl's header (xl_saverestore.c), byte for byte:
//     magic[32]            "Xen saved domain, xl format\n \0 \r"
//     u32 byteorder        0x01020304
//     u32 mandatory_flags  XL_MANDATORY_FLAG_JSON (the config as JSON: xenemu's parsed xl.cfg)
//     u32 optional_flags   0
//     u32 optional_data_len 0
//     u32 config length, the config (JSON)
//   then a stream framed as libxc's migration stream v2 (docs/specs/libxc-migration-stream):
//     image header         u64 marker ~0, u32 id "XENF", u32 version 3, u16 options (0: little endian), 6 reserved
//     domain header        u32 type XENEMU_DOMAIN_TYPE_PV (xenemu's memory model, not Xen's x86 PV:
//                          there is no P2M to carry) or XENEMU_DOMAIN_TYPE_HVM, u16 page_shift 12,
//                          u16 reserved, u32 xen major, u32 minor
//     records              u32 type, u32 body length, body, zeros to a multiple of 8
//       XENEMU_FRAMES      u32 the domain's frames (its memory segment), before any page
//       PAGE_DATA (1)      u32 count, u32 reserved, u64 pfn[count], then count pages; all-zero pages are left out
//       HVM_CONTEXT (6)    HVM only: the vCPU's context (XEN_DOMCTL_gethvmcontext; processes/domu/hvm/context.ts)
//       XENEMU_EMULATOR_CONTEXT  HVM only: libxl's emulator header (u32 id 2 = QEMU_XEN, u32 index 0),
//                          then the device model's state (QMP xen-save-devices-state; processes/qemu-dm/dm_state.ts)
//       XENEMU_CHECKSUM    sha256 of every byte of the file before this record
//       END (0)            empty
//
// A reader checks all of it before anything is created: a truncated,
// corrupted or foreign file is refused with what is wrong.
import { createHash } from 'node:crypto';
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import type { DomainConfig } from '../../../shared/toolstack/xlcfg.js';

export const SAVEFILE_MAGIC = 'Xen saved domain, xl format\n \0 \r';
const SAVEFILE_BYTEORDER = 0x01020304;
const XL_MANDATORY_FLAG_JSON = 1 << 0;
const XENF = 0x58454e46;
const STREAM_VERSION = 3;
/** xenemu's own domain type: a PV domain whose pages are its whole state (no P2M, no vCPU registers). */
export const XENEMU_DOMAIN_TYPE_PV = 0x8001;
/** xenemu's HVM domain: pages, the vCPU's context (v86's, not Xen's hvm_save records) and the device model's state. */
export const XENEMU_DOMAIN_TYPE_HVM = 0x8002;
const REC_END = 0;
const REC_PAGE_DATA = 1;
/** libxc's REC_TYPE_HVM_CONTEXT (xg_sr_stream_format.h). */
const REC_HVM_CONTEXT = 6;
const REC_XENEMU_EMULATOR_CONTEXT = 0x80000003;
/** libxl's EMULATOR_QEMU_XEN (libxl_sr_stream_format.h). */
const EMULATOR_QEMU_XEN = 2;
const REC_XENEMU_CHECKSUM = 0x80000001;
const REC_XENEMU_FRAMES = 0x80000002;
const PAGES_PER_RECORD = 1024;

export class SaveImageError extends Error {
  constructor(file: string, what: string) { super(`${file}: ${what}`); this.name = 'SaveImageError'; }
}

/** What an HVM guest saves beside its pages. */
export interface HvmSaved {
  /** The vCPU's context (XEN_DOMCTL_gethvmcontext). */
  context: Uint8Array;
  /** The device model's state (QMP xen-save-devices-state). */
  dm: Uint8Array;
}

export interface SaveImage {
  config: DomainConfig;
  /** Frames the domain had (its memory segment), and the non-zero pages by pfn. */
  maxPfns: number;
  pages: Map<number, Uint8Array>;
  hvm?: HvmSaved;
}

const pad8 = (n: number) => (8 - (n % 8)) % 8;

function record(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(type >>> 0, 0);
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body, Buffer.alloc(pad8(body.length))]);
}

function isZero(p: Uint8Array): boolean {
  const w = new BigUint64Array(p.buffer, p.byteOffset, p.byteLength / 8);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0n) return false;
  return true;
}

/** The file's bytes for `config` and the domain's memory `mem` (its whole segment). */
export function encodeSaveImage(config: DomainConfig, mem: Uint8Array, xenVersion: { major: number; minor: number }, hvm?: HvmSaved): Buffer[] {
  const parts: Buffer[] = [];
  const cfg = Buffer.from(JSON.stringify(config), 'utf8');
  const xl = Buffer.alloc(32 + 20);
  xl.write(SAVEFILE_MAGIC, 0, 'latin1');
  xl.writeUInt32LE(SAVEFILE_BYTEORDER, 32);
  xl.writeUInt32LE(XL_MANDATORY_FLAG_JSON, 36);
  xl.writeUInt32LE(0, 40);
  xl.writeUInt32LE(0, 44);
  xl.writeUInt32LE(cfg.length, 48);
  parts.push(xl, cfg);
  const ih = Buffer.alloc(24);
  ih.writeBigUInt64LE(0xffffffffffffffffn, 0);
  ih.writeUInt32LE(XENF, 8);
  ih.writeUInt32LE(STREAM_VERSION, 12);
  ih.writeUInt16LE(0, 16);
  const dh = Buffer.alloc(16);
  dh.writeUInt32LE(hvm ? XENEMU_DOMAIN_TYPE_HVM : XENEMU_DOMAIN_TYPE_PV, 0);
  dh.writeUInt16LE(12, 4);
  dh.writeUInt32LE(xenVersion.major, 8);
  dh.writeUInt32LE(xenVersion.minor, 12);
  const maxPfns = mem.byteLength / PAGE_SIZE;
  const nr = Buffer.alloc(8);
  nr.writeUInt32LE(maxPfns, 0);
  parts.push(ih, dh, record(REC_XENEMU_FRAMES, nr));
  let batch: number[] = [];
  const flush = () => {
    if (batch.length === 0) return;
    const head = Buffer.alloc(8 + 8 * batch.length);
    head.writeUInt32LE(batch.length, 0);
    batch.forEach((pfn, i) => head.writeBigUInt64LE(BigInt(pfn), 8 + 8 * i));
    const data = Buffer.concat(batch.map((pfn) => Buffer.from(mem.buffer, mem.byteOffset + pfn * PAGE_SIZE, PAGE_SIZE)));
    parts.push(record(REC_PAGE_DATA, Buffer.concat([head, data])));
    batch = [];
  };
  for (let pfn = 0; pfn < maxPfns; pfn++) {
    if (isZero(mem.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE))) continue;
    batch.push(pfn);
    if (batch.length === PAGES_PER_RECORD) flush();
  }
  flush();
  if (hvm) {
    parts.push(record(REC_HVM_CONTEXT, Buffer.from(hvm.context)));
    const eh = Buffer.alloc(8);
    eh.writeUInt32LE(EMULATOR_QEMU_XEN, 0);
    eh.writeUInt32LE(0, 4);
    parts.push(record(REC_XENEMU_EMULATOR_CONTEXT, Buffer.concat([eh, Buffer.from(hvm.dm)])));
  }
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  parts.push(record(REC_XENEMU_CHECKSUM, h.digest()), record(REC_END, Buffer.alloc(0)));
  return parts;
}

/** Checks and decodes a saved-domain file; throws SaveImageError naming what is wrong. */
export function decodeSaveImage(file: string, b: Buffer): SaveImage {
  const bad = (what: string): never => { throw new SaveImageError(file, what); };
  if (b.length < 52 || b.toString('latin1', 0, 32) !== SAVEFILE_MAGIC) bad('not a saved Xen domain (bad magic)');
  if (b.readUInt32LE(32) !== SAVEFILE_BYTEORDER) bad('saved in another byte order');
  const mandatory = b.readUInt32LE(36);
  if (mandatory & ~XL_MANDATORY_FLAG_JSON) bad(`unknown mandatory flags 0x${mandatory.toString(16)}`);
  const optLen = b.readUInt32LE(44);
  let off = 48 + optLen;
  if (off + 4 > b.length) bad('truncated in its header');
  const cfgLen = b.readUInt32LE(off);
  off += 4;
  if (off + cfgLen > b.length) bad('truncated in its configuration');
  let config: DomainConfig;
  try { config = JSON.parse(b.toString('utf8', off, off + cfgLen)) as DomainConfig; } catch { return bad('its configuration is not JSON'); }
  if (!config || typeof config.name !== 'string' || typeof config.type !== 'string') bad('its configuration has no name or type');
  off += cfgLen;
  if (off + 40 > b.length) bad('truncated before its image header');
  if (b.readBigUInt64LE(off) !== 0xffffffffffffffffn || b.readUInt32LE(off + 8) !== XENF) bad('no migration stream image header');
  if (b.readUInt32LE(off + 12) !== STREAM_VERSION) bad(`stream version ${b.readUInt32LE(off + 12)}, not ${STREAM_VERSION}`);
  off += 24;
  const dtype = b.readUInt32LE(off);
  if (dtype !== XENEMU_DOMAIN_TYPE_PV && dtype !== XENEMU_DOMAIN_TYPE_HVM) bad(`domain type 0x${dtype.toString(16)} is not a xenemu PV or HVM domain`);
  const isHvm = dtype === XENEMU_DOMAIN_TYPE_HVM;
  if (isHvm !== (config.type === 'hvm')) bad(`a ${isHvm ? 'HVM' : 'PV'} stream for a ${config.type} configuration`);
  if (b.readUInt16LE(off + 4) !== 12) bad('page shift is not 12');
  off += 16;
  let maxPfns = -1;
  let checked = false;
  const pages = new Map<number, Uint8Array>();
  let context: Uint8Array | undefined;
  let dm: Uint8Array | undefined;
  for (;;) {
    if (off + 8 > b.length) bad('truncated (no END record)');
    const type = b.readUInt32LE(off);
    const len = b.readUInt32LE(off + 4);
    const body = off + 8;
    if (body + len + pad8(len) > b.length) bad(`record 0x${type.toString(16)} runs past the end`);
    if (type === REC_END) break;
    if (type === REC_XENEMU_FRAMES) {
      if (len < 4) bad('frame count record too short');
      maxPfns = b.readUInt32LE(body);
    } else if (type === REC_PAGE_DATA) {
      if (maxPfns < 0) bad('page data before the frame count');
      const count = b.readUInt32LE(body);
      if (len !== 8 + count * (8 + PAGE_SIZE)) bad(`PAGE_DATA record of ${len} bytes for ${count} pages`);
      for (let i = 0; i < count; i++) {
        const pfn = Number(b.readBigUInt64LE(body + 8 + 8 * i));
        if (pfn >= maxPfns) bad(`page ${pfn} beyond the domain's ${maxPfns} frames`);
        const at = body + 8 + 8 * count + i * PAGE_SIZE;
        pages.set(pfn, b.subarray(at, at + PAGE_SIZE));
      }
    } else if (type === REC_HVM_CONTEXT && isHvm) {
      if (len === 0) bad('empty HVM context');
      context = b.subarray(body, body + len);
    } else if (type === REC_XENEMU_EMULATOR_CONTEXT && isHvm) {
      if (len < 8 || b.readUInt32LE(body) !== EMULATOR_QEMU_XEN || b.readUInt32LE(body + 4) !== 0) bad('emulator record is not QEMU_XEN\'s');
      dm = b.subarray(body + 8, body + len);
    } else if (type === REC_XENEMU_CHECKSUM) {
      const want = createHash('sha256').update(b.subarray(0, off)).digest();
      if (len !== 32 || !want.equals(b.subarray(body, body + 32))) bad('checksum mismatch: the file is corrupt');
      checked = true;
    } else {
      bad(`unknown record type 0x${type.toString(16)}`);
    }
    off = body + len + pad8(len);
  }
  if (maxPfns < 0) bad('no frame count');
  if (!checked) bad('no checksum record');
  if (isHvm && (!context || !dm)) bad(`no ${context ? 'device model' : 'HVM context'} record`);
  return { config, maxPfns, pages, ...(isHvm ? { hvm: { context: context!, dm: dm! } } : {}) };
}
