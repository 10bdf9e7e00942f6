// A test's view of a host PCI device (processes/pcidev): its configuration
// space as the device holds it (through its socket, shared/hw/pci_cfg_client.ts),
// the function level resets it did at the config socket (its log), its
// process; and what a test host with devices needs: disk images in the run
// root, devices made assignable with xl.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PciCfgClient } from '../../shared/hw/pci_cfg_client.js';
import { pciConfigSocket } from '../../shared/wire/pcidev.js';
import { readHostRecord, type TestHost } from './host.js';
import { xlOk } from '../host/xl.js';

interface Tap { teardown(fn: () => unknown): void }

/** A run root for startHost's `root` with raw disk images in it (removed with the last host's teardown). */
export function rootWithImages(names: string[], bytes = 1 << 20): { root: string; images: string[] } {
  const root = mkdtempSync(join(tmpdir(), 'xenemu-run-'));
  const images = names.map((n) => {
    const f = join(root, n);
    writeFileSync(f, Buffer.alloc(bytes));
    return f;
  });
  return { root, images };
}

/** xl pci-assignable-add of each BDF: from Domain-0 to pciback (quarantine). */
export async function makeAssignable(h: TestHost, ...bdfs: string[]): Promise<void> {
  for (const b of bdfs) await xlOk(h, 'pci-assignable-add', b);
}

export class HostDevice {
  private constructor(private readonly h: TestHost, readonly bdf: string, readonly cfg: PciCfgClient) {}

  static async open(t: Tap, h: TestHost, bdf: string): Promise<HostDevice> {
    const cfg = await PciCfgClient.connect(pciConfigSocket(h.rundir, bdf));
    t.teardown(() => cfg.close());
    return new HostDevice(h, bdf, cfg);
  }

  read8(off: number): Promise<number> { return this.cfg.read(off, 1); }
  read16(off: number): Promise<number> { return this.cfg.read(off, 2); }
  read32(off: number): Promise<number> { return this.cfg.read(off, 4); }

  /** The 256 bytes of its configuration space. */
  async snapshot(): Promise<Buffer> {
    const b = Buffer.alloc(256);
    for (let o = 0; o < 256; o += 4) b.writeUInt32LE(await this.read32(o), o);
    return b;
  }

  /** Function level resets asked at its config socket (libxl__device_pci_reset), counted from its log. */
  resets(): number {
    const log = readFileSync(join(this.h.rundir, 'logs', `pcidev-${this.bdf}.log`), 'utf8');
    return log.split('\n').filter((l) => l.endsWith('function level reset (config socket): device reset')).length;
  }

  get pid(): number { return readHostRecord(this.h.rundir)!.pci!.find((d) => d.bdf === this.bdf)!.pid; }
}

/** An e1000 legacy transmit descriptor (8254x SDM 3.3.3) as hex, for a probe domain to write into its ring. */
export function e1000TxDesc(addr: number, len: number, cmd: number): string {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(addr >>> 0, 0);
  b.writeUInt16LE(len, 8);
  b.writeUInt8(cmd, 11);
  return b.toString('hex');
}
