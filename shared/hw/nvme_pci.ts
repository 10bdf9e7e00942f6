// The NVMe controller (nvme.ts) as a PCI Express endpoint: class 0x010802,
// 1b36:0010 (QEMU's IDs), BAR0 64-bit 16 KiB: registers at 0, doorbells at
// 0x1000, the MSI-X table at 0x2000 and the PBA at 0x3000 (PCI 3.0 6.8.2).
// Capabilities: MSI-X at 0x40 and PCI Express at 0x80 (a version 2 endpoint
// that can do a function-level reset, PCIe 4.0 7.5.3). INTA# follows the
// controller's pin while MSI-X is off and the command register allows INTx.
//
// An MSI-X vector whose entry or function is masked, or that would fire
// while bus mastering is off (a message is a memory write), sets its PBA
// bit instead; unmasking sends it then (6.8.2.9).
import type { BlockBackend } from './backend.js';
import type { AccessSize, IrqLines } from './machine.js';
import {
  Nvme, NVME_BAR0_SIZE, NVME_CLASS, NVME_DEVICE_ID, NVME_MAX_IO_QUEUES, NVME_MSIX_PBA, NVME_MSIX_TABLE,
  NVME_SUBSYS_ID, NVME_SUBSYS_VENDOR_ID, NVME_VENDOR_ID, type NvmeHost, type NvmeOptions,
} from './nvme.js';
import {
  PCI_CAPABILITY_LIST, PCI_CAP_ID_EXP, PCI_CAP_ID_MSIX, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_MASTER,
  PCI_MSIX_ENTRY_CTRL_MASKBIT, PCI_MSIX_ENTRY_SIZE, PCI_MSIX_FLAGS_ENABLE, PCI_MSIX_FLAGS_MASKALL, PCI_STATUS,
  PCI_STATUS_CAP_LIST, PciFunction,
} from './pci.js';

export {
  PCI_CAP_ID_EXP, PCI_CAP_ID_MSIX, PCI_MSIX_ENTRY_CTRL_MASKBIT, PCI_MSIX_ENTRY_SIZE, PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL, PCI_STATUS_CAP_LIST,
};
export const PCI_EXP_DEVCAP_FLR = 1 << 28;
export const PCI_EXP_DEVCTL_BCR_FLR = 0x8000;

/** Where the capabilities sit in configuration space. */
export const NVME_CAP_MSIX = 0x40;
export const NVME_CAP_EXP = 0x80;
/** Vectors: the admin queue's and one per I/O queue. */
export const NVME_MSIX_VECTORS = NVME_MAX_IO_QUEUES + 1;

/** What plugging the controller in needs: a pin, and a way to send a message interrupt (XEN_DMOP_inject_msi, or the device process's `irq` message). */
export interface NvmePciHost extends NvmeHost {
  irq: IrqLines;
  injectMsi(addr: number, data: number): void;
}

export class NvmePci extends PciFunction {
  readonly nvme: Nvme;
  private line: 0 | 1 = 0;
  private readonly table = new Uint8Array(NVME_MSIX_VECTORS * PCI_MSIX_ENTRY_SIZE);
  private readonly tableView = new DataView(this.table.buffer);
  private readonly pba = new Uint8Array(8 * Math.ceil(NVME_MSIX_VECTORS / 64));
  /** Messages sent, per vector (for tests and statistics). */
  readonly messages = new Array<number>(NVME_MSIX_VECTORS).fill(0);

  constructor(private readonly host: NvmePciHost, disk: BlockBackend, opts: NvmeOptions = {}) {
    super('nvme', {
      vendor: NVME_VENDOR_ID, device: NVME_DEVICE_ID, classCode: NVME_CLASS, revision: 0x02,
      subVendor: NVME_SUBSYS_VENDOR_ID, subDevice: NVME_SUBSYS_ID, interruptPin: 1,
    });
    const msixOn = () => this.msixEnabled;
    this.nvme = new Nvme(host, disk, {
      get msix() { return msixOn(); },
      message: (v) => this.message(v),
      pin: () => this.driveIntx(),
    }, opts);
    this.nvme.busMaster = false; // no DMA before the driver sets the bus master bit
    this.addBar(0, {
      kind: 'mem', size: NVME_BAR0_SIZE, is64: true, name: 'nvme registers',
      handler: { read: (o, s) => this.barRead(o, s), write: (o, s, v) => this.barWrite(o, s, v) },
    });
    this.buildCapabilities();
    this.resetMsix();
  }

  private buildCapabilities(): void {
    const c = this.config;
    const dv = new DataView(c.buffer);
    dv.setUint16(PCI_STATUS, dv.getUint16(PCI_STATUS, true) | PCI_STATUS_CAP_LIST, true);
    c[PCI_CAPABILITY_LIST] = NVME_CAP_MSIX;
    // MSI-X (6.8.2): control (table size - 1, mask all, enable), table and PBA offsets in BAR0 (BIR 0).
    c[NVME_CAP_MSIX] = PCI_CAP_ID_MSIX;
    c[NVME_CAP_MSIX + 1] = NVME_CAP_EXP;
    dv.setUint16(NVME_CAP_MSIX + 2, NVME_MSIX_VECTORS - 1, true);
    dv.setUint32(NVME_CAP_MSIX + 4, NVME_MSIX_TABLE, true);
    dv.setUint32(NVME_CAP_MSIX + 8, NVME_MSIX_PBA, true);
    this.writable[NVME_CAP_MSIX + 3] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
    // PCI Express (PCIe 4.0 7.5.3): version 2 endpoint, FLR capable, 2.5 GT/s x1 link.
    c[NVME_CAP_EXP] = PCI_CAP_ID_EXP;
    c[NVME_CAP_EXP + 1] = 0;
    dv.setUint16(NVME_CAP_EXP + 2, 0x0002, true);
    dv.setUint32(NVME_CAP_EXP + 4, PCI_EXP_DEVCAP_FLR, true);
    dv.setUint16(NVME_CAP_EXP + 8, 0x2810, true); // DEVCTL: relaxed ordering, no snoop, MRRS 512
    this.writable[NVME_CAP_EXP + 8] = 0xff;
    this.writable[NVME_CAP_EXP + 9] = 0xff; // includes Initiate FLR, which reads back 0
    dv.setUint32(NVME_CAP_EXP + 0x0c, 0x11, true); // LNKCAP: 2.5 GT/s, x1
    dv.setUint16(NVME_CAP_EXP + 0x12, 0x11, true); // LNKSTA: 2.5 GT/s, x1
  }

  get msixEnabled(): boolean { return (this.config[NVME_CAP_MSIX + 3]! & (PCI_MSIX_FLAGS_ENABLE >> 8)) !== 0; }
  private get msixMaskAll(): boolean { return (this.config[NVME_CAP_MSIX + 3]! & (PCI_MSIX_FLAGS_MASKALL >> 8)) !== 0; }

  private resetMsix(): void {
    this.table.fill(0);
    for (let i = 0; i < NVME_MSIX_VECTORS; i++) this.tableView.setUint32(i * PCI_MSIX_ENTRY_SIZE + 12, PCI_MSIX_ENTRY_CTRL_MASKBIT, true);
    this.pba.fill(0);
  }

  protected override configWriteHook(offset: number, size: AccessSize, value: number): void {
    const devctl = NVME_CAP_EXP + 8;
    if (offset <= devctl + 1 && offset + size > devctl + 1 && ((value >>> (8 * (devctl + 1 - offset))) & 0x80)) {
      this.functionLevelReset();
      return;
    }
    this.nvme.busMaster = (this.command & PCI_COMMAND_MASTER) !== 0;
    this.nvme.updatePin();
    this.driveIntx();
    this.sendPending();
  }

  /**
   * Function-level reset (PCIe 4.0 6.6.2): the controller as at power-on,
   * MSI-X off with every vector masked, command register cleared. The BAR
   * addresses are kept, as the owner's configuration is restored around an
   * FLR anyway (Linux's pci_reset_function saves and restores it).
   */
  functionLevelReset(): void {
    this.nvme.reset(true);
    this.resetMsix();
    this.config[NVME_CAP_EXP + 9] = this.config[NVME_CAP_EXP + 9]! & 0x7f;
    this.config[NVME_CAP_MSIX + 3] = this.config[NVME_CAP_MSIX + 3]! & ~0xc0;
    this.configWrite(PCI_COMMAND, 2, 0);
  }

  // --- BAR0.

  private barRead(off: number, size: AccessSize): number {
    if (off < NVME_MSIX_TABLE) return this.nvme.mmioRead(off, size);
    const bytes = off < NVME_MSIX_PBA ? this.table : this.pba;
    const at = off - (off < NVME_MSIX_PBA ? NVME_MSIX_TABLE : NVME_MSIX_PBA);
    let v = 0;
    for (let i = 0; i < size; i++) v |= (bytes[at + i] ?? 0) << (8 * i);
    return v >>> 0;
  }

  private barWrite(off: number, size: AccessSize, value: number): void {
    if (off < NVME_MSIX_TABLE) { this.nvme.mmioWrite(off, size, value); return; }
    if (off >= NVME_MSIX_PBA) return; // the PBA is read-only
    const at = off - NVME_MSIX_TABLE;
    if (at + size > this.table.length) return;
    for (let i = 0; i < size; i++) this.table[at + i] = (value >>> (8 * i)) & 0xff;
    // Vector control: only the mask bit is writable.
    const entry = at - (at % PCI_MSIX_ENTRY_SIZE);
    const ctrl = entry + 12;
    this.tableView.setUint32(ctrl, this.tableView.getUint32(ctrl, true) & PCI_MSIX_ENTRY_CTRL_MASKBIT, true);
    this.sendPending();
  }

  // --- Interrupts.

  private vectorMasked(v: number): boolean {
    return this.msixMaskAll || (this.tableView.getUint32(v * PCI_MSIX_ENTRY_SIZE + 12, true) & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
  }

  private message(v: number): void {
    if (!this.msixEnabled || v >= NVME_MSIX_VECTORS) return;
    if (this.vectorMasked(v) || !(this.command & PCI_COMMAND_MASTER)) { this.pba[v >> 3] |= 1 << (v & 7); return; }
    this.send(v);
  }

  private send(v: number): void {
    const e = v * PCI_MSIX_ENTRY_SIZE;
    const addr = this.tableView.getUint32(e, true) + this.tableView.getUint32(e + 4, true) * 0x100000000;
    this.messages[v]!++;
    this.host.injectMsi(addr, this.tableView.getUint32(e + 8, true));
  }

  /** Sends what waits in the PBA for vectors that are no longer masked. */
  private sendPending(): void {
    if (!this.msixEnabled || !(this.command & PCI_COMMAND_MASTER)) return;
    for (let v = 0; v < NVME_MSIX_VECTORS; v++) {
      if (!(this.pba[v >> 3]! & (1 << (v & 7))) || this.vectorMasked(v)) continue;
      this.pba[v >> 3] &= ~(1 << (v & 7));
      this.send(v);
    }
  }

  /** Whether vector `v`'s PBA bit is set. */
  pending(v: number): boolean { return (this.pba[v >> 3]! & (1 << (v & 7))) !== 0; }

  /** INTA# follows the controller's pin unless MSI-X is on or the command register disables INTx. */
  private driveIntx(): void {
    const pending = this.nvme.interruptLevel === 1;
    this.setInterruptStatus(pending);
    const level: 0 | 1 = pending && !this.msixEnabled && !(this.command & PCI_COMMAND_INTX_DISABLE) ? 1 : 0;
    if (level === this.line || this.device < 0) return;
    this.line = level;
    this.host.irq.setPciIntx(this.device, 0, level);
  }
}
