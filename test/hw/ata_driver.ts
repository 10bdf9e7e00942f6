// The port-level steps an ATA driver takes (SeaBIOS's src/hw/ata.c, Linux's
// libata-sff), for the IDE tests: task file writes, PIO data blocks with a
// `rep insw`/`rep outsw` loop, bus-master DMA setup.
import type { TestMachine } from './machine_fixture.js';

export const PRI = { base: 0x1f0, ctl: 0x3f6, irq: 14 };
export const SEC = { base: 0x170, ctl: 0x376, irq: 15 };

export const STAT = { ERR: 0x01, DRQ: 0x08, DSC: 0x10, DRDY: 0x40, BSY: 0x80 };

export interface Chan { base: number; ctl: number; irq: number }

export class AtaDriver {
  constructor(readonly m: TestMachine, readonly ch: Chan = PRI) {}

  get status(): number { return this.m.inb(this.ch.base + 7); }
  /** Reads the status register for its side effect: INTRQ is acknowledged. */
  ack(): void { this.m.inb(this.ch.base + 7); }
  get altStatus(): number { return this.m.inb(this.ch.ctl); }
  get error(): number { return this.m.inb(this.ch.base + 1); }
  get irqLevel(): number { return this.m.irq.isa[this.ch.irq]!; }
  reg(n: number): number { return this.m.inb(this.ch.base + n); }

  /** Pulses SRST with nIEN set, then enables interrupts again (SeaBIOS's ata_reset). */
  softReset(): void {
    this.m.outb(this.ch.ctl, 0x08 | 0x02 | 0x04);
    this.m.outb(this.ch.ctl, 0x08 | 0x02);
    this.m.outb(this.ch.ctl, 0x08);
  }

  select(unit: number, extra = 0): void { this.m.outb(this.ch.base + 6, 0xa0 | (unit << 4) | extra); }

  /** LBA28 task file and command. */
  lba28(cmd: number, unit: number, lba: number, count: number, feature = 0): void {
    const b = this.ch.base;
    this.select(unit, 0x40 | ((lba >>> 24) & 0x0f));
    this.m.outb(b + 1, feature);
    this.m.outb(b + 2, count & 0xff);
    this.m.outb(b + 3, lba & 0xff);
    this.m.outb(b + 4, (lba >>> 8) & 0xff);
    this.m.outb(b + 5, (lba >>> 16) & 0xff);
    this.m.outb(b + 7, cmd);
  }

  /** LBA48 task file (high bytes first, as libata's ata_sff_tf_load) and command. */
  lba48(cmd: number, unit: number, lba: number, count: number): void {
    const b = this.ch.base;
    const hi = Math.floor(lba / 0x1000000);
    this.select(unit, 0x40);
    this.m.outb(b + 2, (count >>> 8) & 0xff);
    this.m.outb(b + 3, hi & 0xff);
    this.m.outb(b + 4, (hi >>> 8) & 0xff);
    this.m.outb(b + 5, (hi >>> 16) & 0xff);
    this.m.outb(b + 2, count & 0xff);
    this.m.outb(b + 3, lba & 0xff);
    this.m.outb(b + 4, (lba >>> 8) & 0xff);
    this.m.outb(b + 5, (lba >>> 16) & 0xff);
    this.m.outb(b + 7, cmd);
  }

  command(cmd: number): void { this.m.outb(this.ch.base + 7, cmd); }

  /** `rep insw` of `bytes` from the data port. */
  insw(bytes: number): Uint8Array {
    const out = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i += 2) {
      const w = this.m.inw(this.ch.base);
      out[i] = w & 0xff;
      out[i + 1] = w >> 8;
    }
    return out;
  }

  /** `rep insl`. */
  insl(bytes: number): Uint8Array {
    const out = new Uint8Array(bytes);
    const v = new DataView(out.buffer);
    for (let i = 0; i < bytes; i += 4) v.setUint32(i, this.m.inl(this.ch.base), true);
    return out;
  }

  outsw(data: Uint8Array): void {
    for (let i = 0; i < data.length; i += 2) this.m.outw(this.ch.base, data[i]! | (data[i + 1]! << 8));
  }

  /** IDENTIFY (DEVICE or PACKET DEVICE): the 256 words. */
  identify(unit: number, cmd = 0xec): Uint16Array | null {
    this.select(unit);
    this.command(cmd);
    if (!(this.status & STAT.DRQ)) return null;
    const b = this.insw(512);
    return new Uint16Array(b.buffer);
  }
}

/** An ATA string from IDENTIFY words (high byte first), trimmed. */
export function ataString(id: Uint16Array, word: number, words: number): string {
  let s = '';
  for (let i = 0; i < words; i++) s += String.fromCharCode(id[word + i]! >> 8, id[word + i]! & 0xff);
  return s.trim();
}

/** Writes a PRD table at `table`: [addr, bytes (65536 as 0), eot]. */
export function writePrds(m: TestMachine, table: number, prds: Array<[number, number]>, eot = true): void {
  const v = new DataView(m.mem.bytes.buffer);
  prds.forEach(([addr, bytes], i) => {
    v.setUint32(table + 8 * i, addr, true);
    v.setUint16(table + 8 * i + 4, bytes & 0xffff, true);
    v.setUint16(table + 8 * i + 6, eot && i === prds.length - 1 ? 0x8000 : 0, true);
  });
}
