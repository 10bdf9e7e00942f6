// The i440FX host bridge (82441FX PMC, 8086:1237 revision 2, at 00.0; Intel
// 82441FX/82442FX datasheet 290549) and PCI configuration mechanism #1 (PCI
// Local Bus Specification 3.0, configuration mechanism #1) on ports 0xCF8-0xCFF.
//
//   0xCF8  CONFIG_ADDRESS, dword only: bit 31 enable, 23:16 bus, 15:11 device,
//          10:8 function, 7:2 register
//   0xCFC  CONFIG_DATA: byte, word or dword at 0xCFC + (offset & 3)
//
// A byte or word access to 0xCF8-0xCFB is not CONFIG_ADDRESS (Linux's
// pci_check_type1 writes a byte to 0xCFB and expects CONFIG_ADDRESS to
// survive); 0xCF9 is the PIIX3's reset control register, reached through
// `resetControl` since both live in the same four ports. Only bus 0 exists:
// other buses read all-ones. Under Xen, the hypervisor also latches 0xCF8
// (hvm_access_cf8) to route 0xCFC accesses to an ioreq server as
// IOREQ_TYPE_PCI_CONFIG; those come to PciBus.configRead/Write directly.
//
// The PAM registers (0x59-0x5F) and SMRAM (0x72) are stored and read back,
// as QEMU's i440fx does; the memory they describe belongs to Xen under HVM,
// where 0xC0000-0xFFFFF is always RAM, readable and writable, whatever PAM
// says. So PAM starts by saying so (0x33: read and write to DRAM, 0x30 for
// PAM0's 0xF0000 segment): firmware that checks it (SeaBIOS's
// make_bios_writable) then finds its code in RAM, as it is, instead of
// jumping to a flash alias to copy itself.
import type { AccessSize, IoHandler, IoSpace } from './machine.js';
import { PciBus, PciFunction } from './pci.js';

export const I440FX_PAM = 0x59;
export const I440FX_PAM_SIZE = 7;
export const I440FX_SMRAM = 0x72;
export const SMRAM_G_SMRAME = 0x08;
export const SMRAM_D_LCK = 0x10;
export const SMRAM_D_CLS = 0x20;
export const SMRAM_D_OPEN = 0x40;
/** C_BASE_SEG, hardwired to 010b: SMRAM at 0xA0000. */
const SMRAM_C_BASE_SEG = 0x02;

export const PCI_CONFIG_ADDRESS = 0xcf8;
export const PCI_CONFIG_DATA = 0xcfc;

export class I440fx extends PciFunction {
  /**
   * D_LCK was set: D_OPEN is cleared and, with D_LCK itself, read-only until
   * reset (82441FX datasheet, SMRAM control register); G_SMRAME is frozen
   * too, as on the 82443BX. QEMU stores the bits without the lock.
   */
  private smramLocked = false;

  constructor() {
    super('i440fx', { vendor: 0x8086, device: 0x1237, classCode: 0x060000, revision: 0x02 });
    // Device-specific registers are writable, as QEMU's default write mask for 0x40-0xFF.
    for (let r = 0x40; r < 0x100; r++) this.writable[r] = 0xff;
    this.writable[I440FX_SMRAM] = SMRAM_D_OPEN | SMRAM_D_CLS | SMRAM_D_LCK | SMRAM_G_SMRAME;
    this.config[I440FX_SMRAM] = SMRAM_C_BASE_SEG;
    this.config.fill(0x33, I440FX_PAM + 1, I440FX_PAM + I440FX_PAM_SIZE);
    this.config[I440FX_PAM] = 0x30;
  }

  /** PAM0-PAM6 as the guest programmed them (read/write enables for the BIOS and option ROM areas). */
  get pam(): Uint8Array { return this.config.subarray(I440FX_PAM, I440FX_PAM + I440FX_PAM_SIZE); }

  get smram(): number { return this.config[I440FX_SMRAM]!; }

  protected override configWriteHook(offset: number, size: AccessSize, value: number): void {
    if (offset > I440FX_SMRAM || offset + size <= I440FX_SMRAM) return;
    const v = (value >>> (8 * (I440FX_SMRAM - offset))) & 0xff;
    if (this.smramLocked) {
      // Only D_CLS stays writable once locked.
      this.config[I440FX_SMRAM] = (this.lockedSmram & ~SMRAM_D_CLS) | (v & SMRAM_D_CLS);
      return;
    }
    if (v & SMRAM_D_LCK) {
      this.smramLocked = true;
      this.config[I440FX_SMRAM] = (this.config[I440FX_SMRAM]! & ~SMRAM_D_OPEN) | SMRAM_D_LCK;
      this.lockedSmram = this.config[I440FX_SMRAM]!;
    }
  }

  private lockedSmram = 0;
}

/**
 * Configuration mechanism #1: the host bridge's port interface to bus 0.
 * Registers 0xCF8 (4 ports) and 0xCFC (4 ports) on `ports`.
 */
export class PciConfigMech1 {
  /** CONFIG_ADDRESS as written (reserved bits 30:24 and 1:0 read as 0). */
  address = 0;
  /** The PIIX3's reset control register at 0xCF9 (byte accesses only). */
  resetControl: IoHandler | null = null;

  constructor(readonly bus: PciBus, ports: IoSpace) {
    ports.register(PCI_CONFIG_ADDRESS, 4, {
      read: (offset, size) => this.readAddress(offset, size),
      write: (offset, size, value) => this.writeAddress(offset, size, value),
    }, 'pci-conf-idx');
    ports.register(PCI_CONFIG_DATA, 4, {
      read: (offset, size) => this.readData(offset, size),
      write: (offset, size, value) => this.writeData(offset, size, value),
    }, 'pci-conf-data');
  }

  private readAddress(offset: number, size: AccessSize): number {
    if (offset === 0 && size === 4) return this.address >>> 0;
    if (offset === 1 && size === 1 && this.resetControl) return this.resetControl.read(0, 1);
    return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
  }

  private writeAddress(offset: number, size: AccessSize, value: number): void {
    if (offset === 0 && size === 4) { this.address = (value & 0x80fffffc) >>> 0; return; }
    if (offset === 1 && size === 1 && this.resetControl) this.resetControl.write(0, 1, value);
  }

  /** The devfn and register a data access at 0xCFC+offset targets, or -1 (disabled, or not bus 0). */
  private target(): number {
    const a = this.address;
    if (!(a & 0x80000000) || ((a >>> 16) & 0xff) !== 0) return -1;
    return a & 0xfffc;
  }

  private readData(offset: number, size: AccessSize): number {
    const t = this.target();
    if (t < 0) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return this.bus.configRead(t >>> 8, (t & 0xfc) + offset, size);
  }

  private writeData(offset: number, size: AccessSize, value: number): void {
    const t = this.target();
    if (t < 0) return;
    this.bus.configWrite(t >>> 8, (t & 0xfc) + offset, size, value);
  }
}
