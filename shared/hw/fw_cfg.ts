// QEMU's firmware configuration device (docs/specs/fw_cfg.txt in QEMU): how
// SeaBIOS, running as it does on QEMU, learns what machine it is on. The
// traditional I/O interface: a 16-bit selector written to 0x510, then the
// item's bytes read one at a time from 0x511 (no DMA interface: FW_CFG_ID
// says so, and SeaBIOS then reads through the port).
//
// Items given: the signature "QEMU", the ID, RAM size, CPU counts, and a
// file directory with `bootorder` (the boot devices as OpenFirmware paths,
// one per line, as QEMU writes it from bootindex=), derived from
// -boot order=: c is the first IDE disk, d the first IDE CD-ROM.
import type { IoSpace } from './machine.js';

export const FW_CFG_PORT_SEL = 0x510;
export const FW_CFG_PORT_DATA = 0x511;

export const FW_CFG_SIGNATURE = 0x00;
export const FW_CFG_ID = 0x01;
export const FW_CFG_RAM_SIZE = 0x03;
export const FW_CFG_NB_CPUS = 0x05;
export const FW_CFG_NUMA = 0x0d;
export const FW_CFG_MAX_CPUS = 0x0f;
export const FW_CFG_FILE_DIR = 0x19;
export const FW_CFG_FILE_FIRST = 0x20;

export interface FwCfgOptions {
  ramBytes: number;
  cpus: number;
  /** Named files (FW_CFG_FILE_DIR), e.g. bootorder. */
  files?: Record<string, Uint8Array>;
}

export class FwCfg {
  private readonly items = new Map<number, Uint8Array>();
  private selected: Uint8Array = new Uint8Array(0);
  private offset = 0;

  constructor(ports: IoSpace, o: FwCfgOptions) {
    const u16 = (v: number) => { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, v, true); return b; };
    const u32 = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, true); return b; };
    const u64 = (v: number) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(v), true); return b; };
    this.items.set(FW_CFG_SIGNATURE, new TextEncoder().encode('QEMU'));
    this.items.set(FW_CFG_ID, u32(1)); // bit 0: the traditional interface; no DMA
    this.items.set(FW_CFG_RAM_SIZE, u64(o.ramBytes));
    this.items.set(FW_CFG_NB_CPUS, u16(o.cpus));
    this.items.set(FW_CFG_MAX_CPUS, u16(o.cpus));
    this.items.set(FW_CFG_NUMA, u64(0));
    // The directory: a big-endian count, then 64-byte entries of big-endian
    // size, select and reserved, and a NUL-padded 56-byte name.
    const files = Object.entries(o.files ?? {});
    const dir = new Uint8Array(4 + 64 * files.length);
    const dv = new DataView(dir.buffer);
    dv.setUint32(0, files.length, false);
    files.forEach(([name, data], i) => {
      const at = 4 + 64 * i;
      dv.setUint32(at, data.length, false);
      dv.setUint16(at + 4, FW_CFG_FILE_FIRST + i, false);
      dir.set(new TextEncoder().encode(name).subarray(0, 55), at + 8);
      this.items.set(FW_CFG_FILE_FIRST + i, data);
    });
    this.items.set(FW_CFG_FILE_DIR, dir);
    // 0x510 is the 16-bit selector, 0x511 the data port; data writes are
    // obsolete and ignored, as QEMU 2.4+ does.
    ports.register(FW_CFG_PORT_SEL, 2, {
      read: (off) => (off === 1 ? this.next() : 0),
      write: (off, size, v) => { if (off === 0 && size === 2) this.select(v & 0xffff); },
    }, 'fw_cfg');
  }

  private select(key: number): void {
    // Bit 14 selects writing (obsolete); bit 15 is FW_CFG_ARCH_LOCAL, a table
    // of its own (x86: ACPI tables, SMBIOS, e820, ...): none given here.
    this.selected = this.items.get(key & ~0x4000) ?? new Uint8Array(0);
    this.offset = 0;
  }

  private next(): number {
    return this.offset < this.selected.length ? this.selected[this.offset++]! : 0;
  }
}

/**
 * `bootorder` for -boot order=: OpenFirmware paths of the IDE devices in
 * the order of the letters (c: first disk, d: first CD-ROM), as SeaBIOS
 * matches them (/pci@i0cf8/*@1,1/drive@<channel>/disk@<unit>).
 */
export function bootorderFile(order: string, drives: ReadonlyArray<{ index: number; media: 'disk' | 'cdrom' }>): Uint8Array {
  const path = (index: number) => `/pci@i0cf8/ide@1,1/drive@${index >> 1}/disk@${index & 1}`;
  const lines: string[] = [];
  for (const letter of order) {
    const media = letter === 'c' ? 'disk' : letter === 'd' ? 'cdrom' : null;
    if (!media) continue;
    const d = [...drives].sort((a, b) => a.index - b.index).find((x) => x.media === media);
    if (d && !lines.includes(path(d.index))) lines.push(path(d.index));
  }
  return new TextEncoder().encode(lines.map((l) => `${l}\n`).join(''));
}
