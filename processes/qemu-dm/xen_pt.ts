// qemu-dm's xen_pt: a host PCI device on the HVM guest's bus, with the
// configuration space the guest sees built as QEMU's hw/xen/xen_pt.c and
// xen_pt_config_init.c build it: some registers emulated, some read from
// the device, writes filtered. The device's registers (its BARs) never pass
// through here: the guest's BAR addresses are virtual, and each placement
// the guest makes becomes XEN_DOMCTL_memory_mapping (ioport_mapping for an
// I/O BAR) of the host BAR onto it, which the guest's vCPU then reaches
// directly (the HVM segment's passthrough page). Its INTx is bound with
// XEN_DOMCTL_bind_pt_irq to the pin the guest sees on this slot.
//
//   register                  read                              write
//   vendor, device, revision, the device's (at realize)          ignored
//   class, header, subsystem
//   command                   the guest's value                  I/O, memory, bus master, INTx disable
//                                                                reach the device; the rest is kept
//   status                    the device's, capability-list      ignored
//                             bit as the emulated list has it
//   cache line, latency       the guest's value                  kept (not the device's)
//   BARs 0-5                  emulated: type bits the device's,  the address (above the size) kept;
//                             address the guest's                a placement maps the host BAR there
//   ROM, CardBus CIS          0 (no expansion ROM is shown)      ignored
//   capability pointer        the first capability kept          ignored
//   interrupt line            the guest's value                  kept
//   interrupt pin             the device's                       ignored
//   capabilities kept         the device's, each `next` byte     dropped (permissive: through)
//                             relinked past the hidden ones
//   MSI-X capability          id, table/PBA offsets the          enable and function mask kept and
//                             device's; control's enable and     passed to the device (xen_pt_msixctrl_reg_write)
//                             function mask the guest's
//   MSI capability            hidden (no host device model has one)
//   anything else (0x40+)     0                                  dropped
//
// MSI-X (xen_pt_msi.ts, QEMU's xen_pt_msi.c): the table's pages are left
// out of the BAR's memory_mapping and claimed by this device model, which
// emulates the guest's entries and binds them with XEN_DOMCTL_bind_pt_irq
// PT_IRQ_TYPE_MSI. Without the hooks that binding needs, MSI-X is hidden too.
//
// The ioreq thread answers a configuration ioreq synchronously; the
// device's socket is the main thread's (PtConfigAccess blocks the ioreq
// thread until the main thread has the answer).
import type { AccessSize } from '../../shared/hw/machine.js';
import {
  PCI_BASE_ADDRESS_0, PCI_CAPABILITY_LIST, PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY, PCI_INTERRUPT_LINE, PCI_INTERRUPT_PIN, PCI_STATUS,
  PCI_STATUS_CAP_LIST, PciFunction, pciCapabilities,
} from '../../shared/hw/pci.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import { XenPtMsix, type PtMsiHooks } from './xen_pt_msi.js';

/** A passed-through function's name starts so (the platform device's unplug leaves them alone, as qemu-xen's). */
export const XEN_PT_PREFIX = 'xen-pt ';
/** The command bits the guest's writes pass to the device. */
const CMD_TO_DEVICE = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE;
/** The command bits the guest may set at all (parity, SERR besides). */
const CMD_WRITABLE = CMD_TO_DEVICE | 0x0040 | 0x0100;
/** Header bytes copied from the device at realize and read-only after. */
const FROM_DEVICE = [[0x00, 4], [0x08, 4], [0x0e, 1], [0x2c, 4], [0x3d, 3]] as const;

/** The device's configuration space, synchronously (the ioreq thread waits for the socket's answer). */
export interface PtConfigAccess {
  read(offset: number, size: AccessSize): number | null;
  write(offset: number, size: AccessSize, value: number): boolean;
}

/** A BAR as the host's firmware placed it (the registry's; QEMU's xen_pt reads sysfs `resource`). */
export interface PtHostBar { index: number; kind: 'mem' | 'io'; size: number; addr: number }

export interface PtHooks extends Partial<PtMsiHooks> {
  /** XEN_DOMCTL_memory_mapping (mem: frames) or ioport_mapping (io: ports); 0 or -errno. */
  map(kind: 'mem' | 'io', add: boolean, guest: number, host: number, nr: number): number;
  log(line: string): void;
}

interface EmuBar extends PtHostBar { typeBits: number; is64: boolean; guest: number; high: number; mapped: number | null }

export class XenPtDevice extends PciFunction {
  private readonly ptBars: EmuBar[] = [];
  /** Capabilities shown: offset -> next shown offset (0 at the end). */
  private readonly caps = new Map<number, number>();
  /** [start, end) of each shown capability's bytes. */
  private readonly capSpans: Array<[number, number]> = [];
  private firstCap = 0;
  private cmd = 0;
  private cacheLatency = 0;
  private line = 0;
  private droppedLogged = false;
  private msix: XenPtMsix | null = null;
  readonly stats = { cfgRead: 0, cfgWrite: 0, toDevice: 0, dropped: 0, maps: 0, unmaps: 0, barIoreqs: 0, msixBinds: 0, tableIoreqs: 0 };

  constructor(readonly hostaddr: string, private readonly dev: PtConfigAccess, hostBars: PtHostBar[],
              private readonly hooks: PtHooks, private readonly permissive = false) {
    super(`${XEN_PT_PREFIX}${hostaddr}`, XenPtDevice.ids(hostaddr, dev));
    for (const [off, n] of FROM_DEVICE) for (let i = 0; i < n; i++) this.config[off + i] = dev.read(off + i, 1) ?? 0;
    this.config[PCI_CAPABILITY_LIST] = 0;
    for (const b of hostBars) {
      const reg = dev.read(PCI_BASE_ADDRESS_0 + 4 * b.index, 4) ?? 0;
      const typeBits = b.kind === 'io' ? reg & 0x3 : reg & 0xf;
      this.ptBars.push({ ...b, typeBits, is64: b.kind === 'mem' && (reg & 0x6) === 0x4, guest: 0, high: 0, mapped: null });
    }
    this.walkCaps();
  }

  private static ids(hostaddr: string, dev: PtConfigAccess): { vendor: number; device: number; classCode: number; revision: number } {
    const id = dev.read(0, 4);
    if (id === null || id === 0xffffffff) throw new Error(`xen-pci-passthrough ${hostaddr}: the device does not answer`);
    const cls = dev.read(0x08, 4) ?? 0;
    return { vendor: id & 0xffff, device: id >>> 16, classCode: cls >>> 8, revision: cls & 0xff };
  }

  /** The capability chain without MSI and MSI-X, as xen_pt emulates the list (xen_pt_config_init.c). */
  private walkCaps(): void {
    const status = this.dev.read(PCI_STATUS, 2) ?? 0;
    if (!(status & PCI_STATUS_CAP_LIST)) return;
    const found = pciCapabilities((off, size) => this.dev.read(off, size) ?? 0);
    const starts = found.map((c) => c.off).sort((a, b) => a - b);
    const h = this.hooks;
    const msiHooks: PtMsiHooks | null = h.mapPirq && h.unmapPirq && h.bindMsi
      ? { mapPirq: h.mapPirq, unmapPirq: h.unmapPirq, bindMsi: h.bindMsi, log: h.log } : null;
    const canMsix = msiHooks !== null;
    const shown = found.filter((c) => c.id !== PCI_CAP_ID_MSI && (c.id !== PCI_CAP_ID_MSIX || canMsix));
    for (const c of found) {
      if (!shown.includes(c)) this.hooks.log(`xen_pt ${this.hostaddr}: capability 0x${c.id.toString(16)} at 0x${c.off.toString(16)} hidden`);
      if (c.id === PCI_CAP_ID_MSIX && canMsix) {
        const bar = (this.dev.read(c.off + 4, 4) ?? 0) & 7;
        this.msix = new XenPtMsix(this.hostaddr, c.off, this.dev, msiHooks!, this.ptBars.find((b) => b.index === bar)?.addr ?? 0, this.stats);
      }
    }
    shown.forEach((c, i) => {
      this.caps.set(c.off, shown[i + 1]?.off ?? 0);
      const end = starts.find((s) => s > c.off) ?? 0x100;
      this.capSpans.push([c.off, end]);
    });
    this.firstCap = shown[0]?.off ?? 0;
  }

  /**
   * Binds the device's INTx to the pin the guest sees in this slot (after
   * the bus plugged it: the slot is the guest's device number).
   */
  get pin(): number { return this.config[PCI_INTERRUPT_PIN]!; }

  /**
   * An ioreq this device model was handed at `addr` (memory or port): if it
   * falls in one of the BARs as the guest placed them, the vCPU sent to
   * qemu-dm what Xen's p2m sends straight to the device. Counted and said
   * (the first, then at each power of two): it must never happen.
   */
  sawIoreq(kind: 'mem' | 'io', addr: number): void {
    const b = this.ptBars.find((x) => x.kind === kind && x.mapped !== null && addr >= x.mapped && addr < x.mapped + x.size);
    if (!b) return;
    const m = this.msix;
    if (m && b.index === m.bir && addr - b.mapped! >= m.pagesFrom && addr - b.mapped! < m.pagesTo) return; // the trapped table
    const n = ++this.stats.barIoreqs;
    if ((n & (n - 1)) === 0) this.hooks.log(`xen_pt ${this.hostaddr}: ${n} ioreq(s) reached qemu-dm inside BAR${b.index} (last at 0x${addr.toString(16)})`);
  }

  /** Every BAR unmapped (the guest's machine goes away). */
  unmapAll(): void {
    for (const b of this.ptBars) this.place(b, null);
    this.msix?.disable();
  }

  private emulatedByte(at: number): number | null {
    if (at < 0x40) {
      if (at >= PCI_BASE_ADDRESS_0 && at < PCI_BASE_ADDRESS_0 + 24) return this.barByte(at);
      switch (at) {
        case PCI_COMMAND: return this.cmd & 0xff;
        case PCI_COMMAND + 1: return this.cmd >>> 8;
        case PCI_STATUS: return null; // the device's, bit 4 fixed below
        case PCI_STATUS + 1: return null;
        case 0x0c: return this.cacheLatency & 0xff;
        case 0x0d: return this.cacheLatency >>> 8;
        case PCI_CAPABILITY_LIST: return this.firstCap;
        case PCI_INTERRUPT_LINE: return this.line;
        default: break;
      }
      if (FROM_DEVICE.some(([o, n]) => at >= o && at < o + n)) return this.config[at]!;
      return 0; // CardBus CIS, ROM, reserved
    }
    const m = this.msix;
    if (m && at === m.cap + 3) return m.controlHigh();
    for (const [s, e] of this.capSpans) {
      if (at >= s && at < e) return at === s + 1 ? this.caps.get(s)! : null;
    }
    return 0;
  }

  private barByte(at: number): number {
    const reg = (at - PCI_BASE_ADDRESS_0) >> 2;
    const shift = 8 * ((at - PCI_BASE_ADDRESS_0) & 3);
    const b = this.ptBars.find((x) => x.index === reg);
    if (b) return ((b.guest | b.typeBits) >>> shift) & 0xff;
    const lo = this.ptBars.find((x) => x.is64 && x.index + 1 === reg);
    if (lo) return (lo.high >>> shift) & 0xff;
    return 0;
  }

  override configRead(offset: number, size: AccessSize): number {
    if (offset < 0 || offset + size > 256) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    this.stats.cfgRead++;
    const bytes: Array<number | null> = [];
    for (let i = 0; i < size; i++) bytes.push(this.emulatedByte(offset + i));
    let live = 0;
    if (bytes.some((b) => b === null)) {
      const base = offset & ~3;
      const v = this.dev.read(base, 4);
      live = v === null ? 0xffffffff : v;
      live = (live >>> (8 * (offset - base))) >>> 0;
      if (offset + size > base + 4) live = 0xffffffff; // a misaligned access: the bus never makes one
    }
    let v = 0;
    for (let i = 0; i < size; i++) {
      let b = bytes[i] ?? ((live >>> (8 * i)) & 0xff);
      if (offset + i === PCI_STATUS) b = this.firstCap ? b | PCI_STATUS_CAP_LIST : b & ~PCI_STATUS_CAP_LIST;
      v |= b << (8 * i);
    }
    return v >>> 0;
  }

  override configWrite(offset: number, size: AccessSize, value: number): void {
    if (offset < 0 || offset + size > 256) return;
    this.stats.cfgWrite++;
    let barsTouched = false;
    let cmdTouched = false;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const byte = (value >>> (8 * i)) & 0xff;
      if (at === PCI_COMMAND) { this.cmd = (this.cmd & 0xff00) | (byte & CMD_WRITABLE & 0xff); cmdTouched = true; continue; }
      if (at === PCI_COMMAND + 1) { this.cmd = (this.cmd & 0xff) | ((byte << 8) & CMD_WRITABLE); cmdTouched = true; continue; }
      if (at === 0x0c || at === 0x0d) { const sh = 8 * (at - 0x0c); this.cacheLatency = (this.cacheLatency & ~(0xff << sh)) | (byte << sh); continue; }
      if (at === PCI_INTERRUPT_LINE) { this.line = byte; continue; }
      if (at >= PCI_BASE_ADDRESS_0 && at < PCI_BASE_ADDRESS_0 + 24) { this.barWriteByte(at, byte); barsTouched = true; continue; }
      if (this.msix && at === this.msix.cap + 3) { this.msix.control(byte << 8); continue; }
      if (this.msix && at === this.msix.cap + 2) continue; // the table size: read-only
      if (at >= 0x40 && this.permissive && this.capSpans.some(([s, e]) => at >= s && at < e && at !== s + 1)) {
        if (this.dev.write(at, 1, byte)) this.stats.toDevice++;
        continue;
      }
      if (at === PCI_STATUS || at === PCI_STATUS + 1 || at < 0x40) continue; // read-only header fields
      this.stats.dropped++;
      if (!this.droppedLogged) {
        this.droppedLogged = true;
        this.hooks.log(`xen_pt ${this.hostaddr}: write to 0x${at.toString(16)} dropped (not permissive)`);
      }
    }
    if (cmdTouched) {
      // The device's own command register keeps what the guest does not own (xen_pt_cmd_reg_write).
      const cur = this.dev.read(PCI_COMMAND, 2) ?? 0;
      if (this.dev.write(PCI_COMMAND, 2, (cur & ~CMD_TO_DEVICE) | (this.cmd & CMD_TO_DEVICE))) this.stats.toDevice++;
    }
    if (cmdTouched || barsTouched) this.updateMappings();
  }

  private barWriteByte(at: number, byte: number): void {
    const reg = (at - PCI_BASE_ADDRESS_0) >> 2;
    const shift = 8 * ((at - PCI_BASE_ADDRESS_0) & 3);
    const b = this.ptBars.find((x) => x.index === reg);
    if (b) {
      const v = ((b.guest & ~(0xff << shift)) | (byte << shift)) >>> 0;
      const mask = b.kind === 'io' ? ~3 : ~0xf;
      b.guest = (v & mask & ~(b.size - 1)) >>> 0;
      return;
    }
    const lo = this.ptBars.find((x) => x.is64 && x.index + 1 === reg);
    if (lo) lo.high = ((lo.high & ~(0xff << shift)) | (byte << shift)) >>> 0;
  }

  /** Where each BAR decodes now (QEMU's memory listener over the guest's placement). */
  private updateMappings(): void {
    for (const b of this.ptBars) {
      const on = (b.kind === 'io' ? this.cmd & PCI_COMMAND_IO : this.cmd & PCI_COMMAND_MEMORY) !== 0;
      const probe = (0xffffffff & ~(b.size - 1) & (b.kind === 'io' ? ~3 : ~0xf)) >>> 0;
      const placed = b.guest !== 0 && b.guest !== probe && b.high === 0 &&
        (b.kind === 'mem' ? b.guest % PAGE_SIZE === 0 : b.guest + b.size <= 0x10000);
      this.place(b, on && placed ? b.guest : null);
    }
  }

  /**
   * The pieces of BAR `b` that are mapped (bytes into the BAR: [from, to)):
   * all of it, or all but the MSI-X table's pages, which this device model
   * claims instead.
   */
  private pieces(b: EmuBar): Array<[number, number]> {
    const size = Math.ceil(b.size / PAGE_SIZE) * PAGE_SIZE;
    const m = this.msix;
    if (b.kind !== 'mem' || !m || m.bir !== b.index) return [[0, b.kind === 'mem' ? size : b.size]];
    return ([[0, m.pagesFrom], [m.pagesTo, size]] as Array<[number, number]>).filter(([f, t]) => t > f);
  }

  private place(b: EmuBar, want: number | null): void {
    if (b.mapped === want) return;
    const unit = b.kind === 'mem' ? PAGE_SIZE : 1;
    const m = this.msix;
    const traps = m !== null && b.kind === 'mem' && m.bir === b.index;
    if (b.mapped !== null) {
      for (const [from, to] of this.pieces(b)) {
        const r = this.hooks.map(b.kind, false, (b.mapped + from) / unit, Math.floor((b.addr + from) / unit), (to - from) / unit);
        this.stats.unmaps++;
        if (r < 0) this.hooks.log(`xen_pt ${this.hostaddr}: BAR${b.index} unmap at 0x${(b.mapped + from).toString(16)}: ${r}`);
      }
      if (traps) m.unclaim();
      b.mapped = null;
    }
    if (want === null) return;
    for (const [from, to] of this.pieces(b)) {
      const r = this.hooks.map(b.kind, true, (want + from) / unit, Math.floor((b.addr + from) / unit), (to - from) / unit);
      this.stats.maps++;
      if (r < 0) { this.hooks.log(`xen_pt ${this.hostaddr}: BAR${b.index} map at 0x${(want + from).toString(16)}: ${r}`); return; }
    }
    b.mapped = want;
    if (traps && this.spaces) m.claim(this.spaces.mmio, want, `${this.name} MSI-X table`);
    this.hooks.log(`xen_pt ${this.hostaddr}: BAR${b.index} (${b.kind}, ${b.size} bytes) at guest 0x${want.toString(16)} -> host 0x${b.addr.toString(16)}` +
      (traps ? `, MSI-X table at 0x${(want + m.pagesFrom).toString(16)} trapped` : ''));
  }
}
