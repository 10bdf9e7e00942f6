// The configuration-space channel of an emulated physical PCI device
// (docs/passthrough.md): a Unix stream socket <rundir>/pci/<bdf>.cfg that
// the device process serves and only Domain-0's programs (pciback, qemu-dm's
// xen_pt) connect to. Fixed-size little-endian records, each request
// answered once with its seq:
//
//   request  12 bytes  { u32 seq; u8 op; u8 size; u16 offset; u32 value }
//   reply    12 bytes  { u32 seq; i32 err; u32 value }
//
// op: 0 read, 1 write, 2 reset (function-level reset); size 1, 2 or 4;
// err: 0 or a negative Xen errno; value: what a read gave.
import { join } from 'node:path';

export const PCI_CFG_OP_READ = 0;
export const PCI_CFG_OP_WRITE = 1;
export const PCI_CFG_OP_RESET = 2;
export const PCI_CFG_RECORD = 12;

export interface PciCfgRequest { seq: number; op: number; size: number; offset: number; value: number }
export interface PciCfgReply { seq: number; err: number; value: number }

/** The directory of the host's device sockets. */
export function pciCfgDir(rundir: string): string { return join(rundir, 'pci'); }
/** `bdf` in the canonical form 0000:03:00.0. */
export function pciCfgSocket(rundir: string, bdf: string): string { return join(pciCfgDir(rundir), `${bdf}.cfg`); }

export function encodePciCfgRequest(r: PciCfgRequest): Buffer {
  const b = Buffer.alloc(PCI_CFG_RECORD);
  b.writeUInt32LE(r.seq >>> 0, 0);
  b.writeUInt8(r.op & 0xff, 4);
  b.writeUInt8(r.size & 0xff, 5);
  b.writeUInt16LE(r.offset & 0xffff, 6);
  b.writeUInt32LE(r.value >>> 0, 8);
  return b;
}

export function decodePciCfgRequest(b: Uint8Array, o = 0): PciCfgRequest {
  const dv = new DataView(b.buffer, b.byteOffset + o, PCI_CFG_RECORD);
  return { seq: dv.getUint32(0, true), op: dv.getUint8(4), size: dv.getUint8(5), offset: dv.getUint16(6, true), value: dv.getUint32(8, true) };
}

export function encodePciCfgReply(r: PciCfgReply): Buffer {
  const b = Buffer.alloc(PCI_CFG_RECORD);
  b.writeUInt32LE(r.seq >>> 0, 0);
  b.writeInt32LE(r.err | 0, 4);
  b.writeUInt32LE(r.value >>> 0, 8);
  return b;
}

export function decodePciCfgReply(b: Uint8Array, o = 0): PciCfgReply {
  const dv = new DataView(b.buffer, b.byteOffset + o, PCI_CFG_RECORD);
  return { seq: dv.getUint32(0, true), err: dv.getInt32(4, true), value: dv.getUint32(8, true) };
}
