// qemu-dm's MSI-X of a passed-through device (QEMU's hw/xen/xen_pt_msi.c):
// the guest's table, emulated. The table's pages are left out of the BAR's
// memory_mapping (xen_pt.ts) and claimed by this device model instead (Xen
// traps them in its msixtbl), so the guest's entries land here:
//
//   guest unmasks entry i, MSI-X on, function not masked
//     -> PHYSDEVOP_map_pirq (MAP_PIRQ_TYPE_MSI_SEG, entry i, the table's host
//        address), once: a pirq; the hypervisor programs the device's entry
//     -> XEN_DOMCTL_bind_pt_irq PT_IRQ_TYPE_MSI: gvec the data's vector, gflags
//        the address's destination, redirection hint and destination mode and
//        the data's delivery and trigger mode, XEN_DOMCTL_VMSI_X86_UNMASKED
//   guest masks a bound entry -> bound again without UNMASKED (the hypervisor
//        masks the device's entry: the mask bit never reaches Xen's msixtbl here)
//   guest turns MSI-X off     -> every entry unbound and its pirq unmapped
//                                (msi_msix_disable)
//
// Message control's enable and function mask are the guest's and are passed
// to the device (xen_pt_msixctrl_reg_write); its table size, table and PBA
// offsets are the device's. The PBA stays mapped: the device's own.
import type { AccessSize, IoSpace } from '../../shared/hw/machine.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import {
  MSI_ADDR_BASE, PCI_MSIX_ENTRY_CTRL_MASKBIT, PCI_MSIX_ENTRY_SIZE, PCI_MSIX_FLAGS_ENABLE, PCI_MSIX_FLAGS_MASKALL,
} from '../../shared/hw/pci.js';
import {
  XEN_DOMCTL_VMSI_X86_DM_MASK, XEN_DOMCTL_VMSI_X86_RH_MASK, XEN_DOMCTL_VMSI_X86_TRIG_MASK, XEN_DOMCTL_VMSI_X86_UNMASKED,
} from '../../shared/abi/domctl.js';

/** What the MSI-X emulation asks of the hypervisor (through qemu-dm's main thread). */
export interface PtMsiHooks {
  /** PHYSDEVOP_map_pirq of MSI-X entry `entry` of the device for the guest: the pirq, or -errno. */
  mapPirq(entry: number, tableBase: number): number;
  /** PHYSDEVOP_unmap_pirq for the guest; 0 or -errno. */
  unmapPirq(pirq: number): number;
  /** XEN_DOMCTL_bind_pt_irq PT_IRQ_TYPE_MSI (bind) or unbind_pt_irq (gvec null); 0 or -errno. */
  bindMsi(pirq: number, gvec: number | null, gflags: number): number;
  log(line: string): void;
}

/** The device's configuration space (xen_pt.ts's PtConfigAccess). */
interface ConfigAccess {
  read(offset: number, size: AccessSize): number | null;
  write(offset: number, size: AccessSize, value: number): boolean;
}

/** gflags' delivery mode field (domctl.h XEN_DOMCTL_VMSI_X86_DELIV_MASK). */
const VMSI_DELIV_SHIFT = 12;
/** The APIC's message window: what an MSI address must be in. */
const MSI_ADDR_MASK = 0xfff00000;

interface MsixEntry { addrLo: number; addrHi: number; data: number; ctrl: number; pirq: number; bound: string | null }

export class XenPtMsix {
  /** Entries in the table. */
  readonly n: number;
  /** The BAR holding the table, and the table's offset in it. */
  readonly bir: number;
  private readonly tableOff: number;
  /** The table's pages in its BAR: [first byte, end), page-aligned. */
  readonly pagesFrom: number;
  readonly pagesTo: number;
  private ctrl = 0;
  private readonly entries: MsixEntry[] = [];
  private region: { unregister(): void } | null = null;

  constructor(private readonly hostaddr: string, readonly cap: number, private readonly dev: ConfigAccess,
              private readonly hooks: PtMsiHooks, private readonly barHostAddr: number,
              private readonly stats: { toDevice: number; msixBinds: number; tableIoreqs: number }) {
    this.n = ((dev.read(cap + 2, 2) ?? 0) & 0x7ff) + 1;
    const table = dev.read(cap + 4, 4) ?? 0;
    this.bir = table & 7;
    this.tableOff = (table & ~7) >>> 0;
    for (let i = 0; i < this.n; i++) this.entries.push({ addrLo: 0, addrHi: 0, data: 0, ctrl: PCI_MSIX_ENTRY_CTRL_MASKBIT, pirq: -1, bound: null });
    this.pagesFrom = this.tableOff - (this.tableOff % PAGE_SIZE);
    this.pagesTo = Math.ceil((this.tableOff + this.n * PCI_MSIX_ENTRY_SIZE) / PAGE_SIZE) * PAGE_SIZE;
    hooks.log(`xen_pt ${hostaddr}: MSI-X at 0x${cap.toString(16)}, ${this.n} entries, table in BAR${this.bir} at 0x${this.tableOff.toString(16)} (trapped)`);
  }

  /** Whether the guest turned MSI-X on. */
  get enabled(): boolean { return (this.ctrl & PCI_MSIX_FLAGS_ENABLE) !== 0; }

  /** Message control's high byte as the guest reads it: the device's table size bits, the guest's enable and mask. */
  controlHigh(): number { return ((this.dev.read(this.cap + 3, 1) ?? 0) & 0x3f) | (this.ctrl >>> 8); }

  /** The guest's write of the enable and function mask (xen_pt_msixctrl_reg_write). */
  control(v: number): void {
    const was = this.ctrl;
    this.ctrl = v & (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    if (was === this.ctrl) return;
    if (!this.enabled && (was & PCI_MSIX_FLAGS_ENABLE)) this.disable();
    // The device's own control: what the guest set (its entries stay masked
    // until a binding unmasks them).
    const cur = this.dev.read(this.cap + 3, 1) ?? 0;
    if (this.dev.write(this.cap + 3, 1, (cur & 0x3f) | (this.ctrl >>> 8))) this.stats.toDevice++;
    if (this.enabled) for (let i = 0; i < this.n; i++) this.update(i);
  }

  /** MSI-X off (or the device model going): every entry unbound and its pirq unmapped (msi_msix_disable). */
  disable(): void {
    for (const e of this.entries) {
      if (e.pirq < 0) continue;
      if (e.bound !== null) this.hooks.bindMsi(e.pirq, null, 0);
      this.hooks.unmapPirq(e.pirq);
      e.pirq = -1;
      e.bound = null;
    }
  }

  /** The table's pages at `barGuest` (the BAR as the guest placed it) are this device model's. */
  claim(mmio: IoSpace, barGuest: number, name: string): void {
    this.unclaim();
    this.region = mmio.register(barGuest + this.pagesFrom, this.pagesTo - this.pagesFrom, {
      read: (off: number, size: AccessSize) => this.tableRead(off, size),
      write: (off: number, size: AccessSize, v: number) => this.tableWrite(off, size, v),
    }, name);
  }

  unclaim(): void {
    this.region?.unregister();
    this.region = null;
  }

  /**
   * Entry `i` as the guest has it now, to the hypervisor: bound to its
   * vector (unmasked) when MSI-X is on, the function not masked and the
   * entry not masked; bound masked when it was bound and is masked now.
   */
  private update(i: number): void {
    const e = this.entries[i]!;
    if (!this.enabled) return;
    const masked = (this.ctrl & PCI_MSIX_FLAGS_MASKALL) !== 0 || (e.ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
    if (masked && e.bound === null) return;
    if ((e.addrLo & MSI_ADDR_MASK) >>> 0 !== MSI_ADDR_BASE || e.addrHi !== 0) {
      if (!masked) this.hooks.log(`xen_pt ${this.hostaddr}: MSI-X entry ${i} address 0x${e.addrHi.toString(16)}:${e.addrLo.toString(16)} is not the APIC's: not bound`);
      return;
    }
    const gvec = e.data & 0xff;
    // QEMU's msi_gflags: the address's destination, redirection hint and destination mode, the data's delivery and trigger mode.
    const gflags = ((e.addrLo >>> 12) & 0xff) | ((e.addrLo & 0x8) ? XEN_DOMCTL_VMSI_X86_RH_MASK : 0) |
      ((e.addrLo & 0x4) ? XEN_DOMCTL_VMSI_X86_DM_MASK : 0) | (((e.data >>> 8) & 7) << VMSI_DELIV_SHIFT) |
      ((e.data & 0x8000) ? XEN_DOMCTL_VMSI_X86_TRIG_MASK : 0) | (masked ? 0 : XEN_DOMCTL_VMSI_X86_UNMASKED);
    const key = `${gvec}:${gflags}`;
    if (e.bound === key) return;
    if (e.pirq < 0) {
      const p = this.hooks.mapPirq(i, this.barHostAddr + this.tableOff);
      if (p < 0) { this.hooks.log(`xen_pt ${this.hostaddr}: MSI-X entry ${i}: map_pirq failed (${p})`); return; }
      e.pirq = p;
    }
    const r = this.hooks.bindMsi(e.pirq, gvec, gflags);
    if (r < 0) { this.hooks.log(`xen_pt ${this.hostaddr}: MSI-X entry ${i}: bind_pt_irq pirq ${e.pirq} vector 0x${gvec.toString(16)} failed (${r})`); return; }
    this.stats.msixBinds++;
    if (e.bound === null) this.hooks.log(`xen_pt ${this.hostaddr}: MSI-X entry ${i} bound: pirq ${e.pirq}, vector 0x${gvec.toString(16)}, gflags 0x${gflags.toString(16)}`);
    e.bound = key;
  }

  /** The guest's read of the trapped pages (offset from their start). */
  private tableRead(off: number, size: AccessSize): number {
    this.stats.tableIoreqs++;
    let v = 0;
    for (let k = 0; k < size; k++) v |= this.tableByte(off + this.pagesFrom - this.tableOff + k) << (8 * k);
    return v >>> 0;
  }

  private tableByte(at: number): number {
    if (at < 0 || at >= this.n * PCI_MSIX_ENTRY_SIZE) return 0;
    const e = this.entries[Math.floor(at / PCI_MSIX_ENTRY_SIZE)]!;
    const f = at % PCI_MSIX_ENTRY_SIZE;
    const word = [e.addrLo, e.addrHi, e.data, e.ctrl][f >> 2]!;
    return (word >>> (8 * (f & 3))) & 0xff;
  }

  /** The guest's write into the trapped pages: an entry's field, then the entry to the hypervisor. */
  private tableWrite(off: number, size: AccessSize, value: number): void {
    this.stats.tableIoreqs++;
    const at = off + this.pagesFrom - this.tableOff;
    if (at < 0 || at + size > this.n * PCI_MSIX_ENTRY_SIZE) return;
    const i = Math.floor(at / PCI_MSIX_ENTRY_SIZE);
    const e = this.entries[i]!;
    for (let k = 0; k < size; k++) {
      const f = (at + k) % PCI_MSIX_ENTRY_SIZE;
      const sh = 8 * (f & 3);
      const byte = (value >>> (8 * k)) & 0xff;
      const put = (w: number) => ((w & ~(0xff << sh)) | (byte << sh)) >>> 0;
      if (f < 4) e.addrLo = put(e.addrLo);
      else if (f < 8) e.addrHi = put(e.addrHi);
      else if (f < 12) e.data = put(e.data);
      else e.ctrl = put(e.ctrl) & PCI_MSIX_ENTRY_CTRL_MASKBIT; // only the mask bit is writable
    }
    this.update(i);
  }
}
