// One host PCI device as its process holds it: the hosted model, its IOMMU,
// its interrupt line, its BAR channel, and the context the hypervisor
// programs (docs/passthrough.md).
//
//   config socket (Domain-0) ──> configRead/Write, reset (FLR)
//   BAR channel (the owner)  ──> serveBars: each READY slot with the owner's key
//                                goes to the BAR's handler; anything else reads all-ones
//   the model's DMA          ──> Iommu (shared/hw/iommu.ts): the owner's frames, or quarantine
//   the model's INTx         ──> `irq {intx}` to the hypervisor
//   the model's MSI(-X)      ──> posted: the owner's port pending in its shared_info,
//                                a byte on its irq socket when upcall_pending was clear;
//                                else `irq {msi}` to the hypervisor
//   context (hypervisor)     ──> new IOMMU context, owner's shared_info, FLR
import { Worker } from 'node:worker_threads';
import { shmOpen } from '../../shared/shm.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import {
  IOREQ_READ, IOREQ_STATE_WORD, IOREQ_TYPE_PIO, STATE_IOREQ_INPROCESS, STATE_IOREQ_READY, STATE_IORESP_READY, ioreq,
} from '../../shared/abi/hvm/ioreq.js';
import { futexWake } from '../../shared/shm.js';
import { BAR_DMA_RING_SLOTS, BAR_MAGIC, BAR_MAX_SLOTS, BAR_SEGMENT_SIZE, bar_channel, barSlotOffset } from '../../shared/hw/bar_channel.js';
import { recordModified } from '../../shared/abi/hvm/xenemu_hvm.js';
import { Iommu, type IommuFault } from '../../shared/hw/iommu.js';
import { MSI_ADDR_BASE, PCI_CAP_ID_MSIX, PCI_COMMAND_IO, PCI_COMMAND_MEMORY, PCI_MSIX_ENTRY_SIZE, pciCapabilities } from '../../shared/hw/pci.js';
import type { AccessSize } from '../../shared/hw/machine.js';
import { parseBdf, placeBars, type PciDevContext, type PciDevHello, type PciDevMsix, type PciDevToHypervisor, type PciSpec } from '../../shared/wire/pcidev.js';
import { LoopClock } from './clock.js';
import type { ConfigTarget } from './config_server.js';
import type { HostedModel, ModelFactory } from './models.js';
import { PostedIrqTable } from '../../shared/hw/posted_irq.js';
import { evtchn2lSetPending } from '../../shared/xen/evtchn_2l.js';
import type { IrqSocket } from './irq_socket.js';

/** After answering, look for the next request this long before handing the doorbell back to the worker. */
const SPIN_NS = 20_000n;
/** How long MSI counts gather before the hypervisor is told (host.json). */
const MSI_STATS_MS = 200;
/** Fault lines written to the log; beyond, only counted. */
const FAULT_LINES = 100;

export interface DeviceOptions {
  bdf: string;
  spec: PciSpec;
  factory: ModelFactory;
  barSegment: string;
  /** The hypervisor's posted-interrupt table for this device (shared/hw/posted_irq.ts). */
  postedSegment: string;
  /** The owner's wake-up line (irq_socket.ts). */
  irqSocket: IrqSocket;
  log: (m: string) => void;
  send: (m: PciDevToHypervisor) => void;
}

export class HostPciDevice implements ConfigTarget {
  private model: HostedModel;
  private readonly clock = new LoopClock();
  readonly iommu: Iommu;
  private ctx: { owner: number | null; key: number; slots: number } = { owner: null, key: 0, slots: 0 };
  private readonly seg: SharedArrayBuffer;
  private readonly i32: Int32Array;
  private readonly dv: DataView;
  private readonly busy = new SharedArrayBuffer(8);
  private readonly flag = new Int32Array(this.busy);
  private worker: Worker | null = null;
  private intx: 0 | 1 = 0;
  readonly faults = { iommu: 0, quarantine: 0 };
  private faultLines = 0;
  private faultFlush: NodeJS.Timeout | null = null;
  private msiFlush: NodeJS.Timeout | null = null;
  private lastFault = '';
  private staleTold = -2;
  readonly stats = { bar: 0, stale: 0, resets: 0, msiPosted: 0, msiRelayed: 0 };
  private readonly posted: PostedIrqTable;
  /** The owner's shared_info, where posted MSIs land. */
  private si: { i32: Int32Array; u8: Uint8Array } | null = null;

  constructor(private readonly o: DeviceOptions) {
    this.seg = shmOpen(o.barSegment, BAR_SEGMENT_SIZE);
    this.i32 = new Int32Array(this.seg);
    this.dv = new DataView(this.seg);
    // The frames its DMA wrote, for an HVM owner's vCPU to forget code translated from them.
    this.iommu = new Iommu((f) => this.onFault(f),
      (pfn, n) => recordModified(this.i32, this.dv, pfn, n, bar_channel.dma_ring, BAR_DMA_RING_SLOTS));
    if (Atomics.load(this.i32, bar_channel.magic >> 2) !== BAR_MAGIC) throw new Error(`${o.barSegment} is no BAR channel`);
    this.posted = PostedIrqTable.open(o.postedSegment);
    o.irqSocket.onDoorbell = () => this.serveRung();
    this.model = this.build();
  }

  private build(): HostedModel {
    const m = this.o.factory({
      mem: this.iommu, clock: this.clock,
      irq: {
        setIsaIrq: () => { /* a PCI function has no ISA line */ },
        setPciIntx: (_dev, _pin, level) => this.setIntx(level),
      },
      injectMsi: (addr, data) => this.msi(addr, data),
    });
    m.fn.device = 0; // the function is 00.0 of its own bus: INTx is driven from now on
    // The host's firmware places the BARs (shared/wire/pcidev.ts placeBars);
    // the OS restores them after a reset, as Linux's pci_restore_state does.
    const bars = this.bars(m);
    const at = placeBars(this.bus, bars);
    bars.forEach((b, i) => m.fn.configWrite(0x10 + 4 * b.index, 4, at[i]!));
    return m;
  }

  private get bus(): number { return (parseBdf(this.o.bdf)! >> 8) & 0xff; }

  private bars(m: HostedModel): { index: number; kind: 'mem' | 'io'; size: number }[] {
    const out = [];
    for (let i = 0; i < 6; i++) {
      const b = m.fn.barRegion(i);
      if (b) out.push({ index: i, kind: b.kind, size: b.size });
    }
    return out;
  }

  hello(): PciDevHello {
    const list = this.bars(this.model);
    const at = placeBars(this.bus, list);
    const bars = list.map((b, i) => ({ ...b, addr: at[i]! }));
    return {
      type: 'hello', bdf: this.o.bdf, model: this.o.spec.model, bars,
      vendor: this.model.fn.configRead(0, 2), device: this.model.fn.configRead(2, 2),
    };
  }

  configRead(offset: number, size: AccessSize): number { return this.model.fn.configRead(offset, size); }
  configWrite(offset: number, size: AccessSize, value: number): void { this.model.fn.configWrite(offset, size, value); }

  /** Function level reset: the model is built anew, timers and DMA of the old one end. */
  reset(why: string): void {
    this.stats.resets++;
    this.model.dispose();
    this.clock.cancelAll();
    this.model = this.build();
    this.setIntx(0);
    this.o.log(`${why}: device reset`);
  }

  /** The hypervisor's new context: IOMMU mappings, BAR channel key, then FLR. */
  setContext(c: PciDevContext): void {
    let iommu = null;
    if (c.owner !== null && c.owner !== 0 && c.mem && c.frames && c.maxPfns) {
      try {
        iommu = {
          owner: c.owner, maxPfns: c.maxPfns,
          mem: shmOpen(c.mem, c.memBytes ?? c.maxPfns * PAGE_SIZE),
          frames: shmOpen(c.frames, Math.ceil(c.maxPfns / PAGE_SIZE) * PAGE_SIZE),
        };
      } catch (e) {
        this.o.log(`cannot map d${c.owner}'s memory (${(e as Error).message}): quarantined`);
      }
    }
    this.iommu.setContext(iommu);
    this.si = null;
    if (iommu && c.sharedInfo) {
      try {
        const si = shmOpen(c.sharedInfo, PAGE_SIZE);
        this.si = { i32: new Int32Array(si), u8: new Uint8Array(si) };
      } catch (e) {
        this.o.log(`cannot map d${c.owner}'s shared_info (${(e as Error).message}): its MSIs go through the hypervisor`);
      }
    }
    this.o.irqSocket.setKey(iommu ? c.key : 0);
    this.ctx = { owner: iommu ? c.owner : null, key: c.key >>> 0, slots: Math.min(c.slots, BAR_MAX_SLOTS) };
    this.reset(iommu ? `assigned to d${c.owner}` : c.owner === 0 ? 'owned by Domain-0 (no DMA)' : 'quarantined');
  }

  get owner(): number | null { return this.ctx.owner; }

  /**
   * The hypervisor's write of an MSI-X table entry (its pirq's machine
   * message, masked or not): through the table's BAR as any write to it,
   * found by the capability (PCI 3.0 6.8.2: BIR and offset). Nothing for a
   * device without MSI-X or an entry past its table.
   */
  programMsix(m: PciDevMsix): void {
    const fn = this.model.fn;
    const at = pciCapabilities((off, size) => fn.configRead(off, size)).find((c) => c.id === PCI_CAP_ID_MSIX)?.off;
    if (at === undefined) return;
    const n = (fn.configRead(at + 2, 2) & 0x7ff) + 1;
    const table = fn.configRead(at + 4, 4);
    const r = fn.barRegion(table & 7);
    if (!r || r.kind !== 'mem' || m.entry < 0 || m.entry >= n) return;
    const off = (table & ~7) + PCI_MSIX_ENTRY_SIZE * m.entry;
    // Masked first, as a driver reprograms an entry (6.8.3.5).
    r.handler.write(off + 12, 4, 1);
    r.handler.write(off, 4, m.addr >>> 0);
    r.handler.write(off + 4, 4, 0);
    r.handler.write(off + 8, 4, m.data >>> 0);
    if (!m.masked) r.handler.write(off + 12, 4, 0);
  }

  /** The test hook's MSI (config_server.ts). */
  testMsi(data: number): void { this.msi(MSI_ADDR_BASE, data); }

  /**
   * An MSI: posted when the hypervisor's table binds its data (the pirq)
   * to a port of the owner and the owner listens on its irq socket (the
   * port set pending with Xen's 2-level order, the owner kicked only when
   * upcall_pending was clear); otherwise the hypervisor delivers it
   * (processes/hypervisor/pci_irq.ts), as it does every INTx.
   */
  private msi(addr: number, data: number): void {
    const si = this.si;
    const e = si && this.o.irqSocket.connected ? this.posted.lookup(data) : -1;
    this.msiStats();
    if (e < 0 || !si) {
      this.stats.msiRelayed++;
      this.o.send({ type: 'irq', msi: { addr, data } });
      return;
    }
    this.stats.msiPosted++;
    const vcpu = e & 0xff;
    // A line that broke after the bits were set: the hypervisor kicks instead (upcall_pending stays set till then).
    if (evtchn2lSetPending(si.i32, si.u8, e >>> 8, vcpu) && !this.o.irqSocket.kick(vcpu)) this.o.send({ type: 'irq', upcall: vcpu });
  }

  /** The `pcidev-dma` test hook (config_server.ts): one DMA through the IOMMU, as a model does it. */
  testDma(dir: 'read' | 'write', pfn: number): boolean {
    const buf = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
    try {
      if (dir === 'read') this.iommu.read(pfn * PAGE_SIZE, buf); else this.iommu.write(pfn * PAGE_SIZE, buf);
      return true;
    } catch (e) {
      if (e instanceof RangeError) return false;
      throw e;
    }
  }

  private setIntx(level: 0 | 1): void {
    if (level === this.intx) return;
    this.intx = level;
    // The line in the BAR channel first: an access that quietened the device is answered after it.
    Atomics.store(this.i32, bar_channel.intx >> 2, level);
    this.o.send({ type: 'irq', intx: level });
  }

  /** The counts follow to the hypervisor, coalesced. */
  private msiStats(): void {
    this.msiFlush ??= setTimeout(() => {
      this.msiFlush = null;
      this.o.send({ type: 'msi', posted: this.stats.msiPosted, relayed: this.stats.msiRelayed });
    }, MSI_STATS_MS);
  }

  private onFault(f: IommuFault): void {
    if (f.kind === 'iommu') this.faults.iommu++; else this.faults.quarantine++;
    const line = f.kind === 'iommu'
      ? `iommu fault: d${f.owner} dma ${f.dir} gfn 0x${Math.max(f.gfn, 0).toString(16)} (not owned)`
      : `iommu quarantine: dma ${f.dir} gfn 0x${Math.max(f.gfn, 0).toString(16)} to the scratch page`;
    if (this.faultLines++ < FAULT_LINES) this.o.log(line);
    this.lastFault = line;
    // The hypervisor's count follows, coalesced: a model may fault on every descriptor of a ring.
    this.faultFlush ??= setTimeout(() => {
      this.faultFlush = null;
      this.o.send({ type: 'faults', iommu: this.faults.iommu, quarantine: this.faults.quarantine, last: this.lastFault });
    }, 10);
  }

  /** Starts the doorbell worker; `kick` runs on this thread for each wake-up. */
  startBars(workerUrl: URL): void {
    const w = new Worker(workerUrl, { workerData: { segment: this.o.barSegment, busy: this.busy } });
    w.on('message', () => {
      try { this.serveBars(); } finally { Atomics.store(this.flag, 0, 0); Atomics.notify(this.flag, 0); }
    });
    w.on('error', (e) => this.o.log(`BAR doorbell thread: ${e.message}`));
    w.unref();
    this.worker = w;
  }

  /**
   * The owner rang on its irq line (irq_socket.ts): served here, the
   * doorbell thread left asleep. The channel says awake while this runs,
   * so the owner's accesses meanwhile ring nothing; asleep again after,
   * with one more look for a request posted before the owner saw it.
   */
  private serveRung(): void {
    const sleeping = bar_channel.dev_sleeping >> 2;
    do {
      Atomics.store(this.i32, sleeping, 0);
      this.serveBars();
      Atomics.store(this.i32, sleeping, 1);
    } while (this.anyReady());
  }

  private anyReady(): boolean {
    for (let s = 0; s < BAR_MAX_SLOTS; s++) {
      if (((Atomics.load(this.i32, (barSlotOffset(s) + IOREQ_STATE_WORD) >> 2) >>> 16) & 0xf) === STATE_IOREQ_READY) return true;
    }
    return false;
  }

  /** Answers every posted request, then keeps looking for SPIN_NS after the last. */
  serveBars(): void {
    let last = process.hrtime.bigint();
    for (;;) {
      let n = 0;
      for (let s = 0; s < BAR_MAX_SLOTS; s++) n += this.serveSlot(s);
      const now = process.hrtime.bigint();
      if (n) last = now;
      else if (now - last > SPIN_NS) return;
    }
  }

  private serveSlot(s: number): number {
    const at = barSlotOffset(s);
    const word = (at + IOREQ_STATE_WORD) >> 2;
    const w = Atomics.load(this.i32, word);
    if (((w >>> 16) & 0xf) !== STATE_IOREQ_READY) return 0;
    Atomics.store(this.i32, word, (w & ~0xf0000) | (STATE_IOREQ_INPROCESS << 16));
    // Copied once, then checked (docs/style.md rule 6).
    const dv = this.dv;
    const offset = dv.getUint32(at + ioreq.addr, true);
    const bar = dv.getUint32(at + ioreq.addr + 4, true);
    const size = dv.getUint32(at + ioreq.size, true);
    const value = dv.getUint32(at + ioreq.data, true);
    const key = dv.getUint32(at + ioreq.vp_eport, true);
    const bits = (w >>> 16) & 0xff;
    const dir = (bits >> 5) & 1;
    const type = w >>> 24;
    let out = 0xffffffff;
    this.stats.bar++;
    if (this.ctx.owner === null || key !== this.ctx.key || s >= this.ctx.slots) {
      this.stats.stale++;
      if (this.staleTold !== (this.ctx.owner ?? -1)) {
        this.staleTold = this.ctx.owner ?? -1;
        this.o.log(`BAR access not from the owner (slot ${s}${this.ctx.owner === null ? ', quarantined' : ''}): all-ones, not done`);
      }
    } else if (size === 1 || size === 2 || size === 4) {
      const r = this.model.fn.barRegion(bar);
      const cmd = this.model.fn.command;
      const decodes = r && (r.kind === 'io' ? (cmd & PCI_COMMAND_IO) !== 0 && type === IOREQ_TYPE_PIO
                                            : (cmd & PCI_COMMAND_MEMORY) !== 0 && type !== IOREQ_TYPE_PIO);
      if (r && decodes && offset + size <= r.size && offset % size === 0) {
        if (dir === IOREQ_READ) {
          out = r.handler.read(offset, size) >>> 0;
        } else if (r.kind === 'mem') {
          // A memory write is posted (PCIe): the owner goes on while the
          // device does it (an NVMe doorbell runs the commands it rings).
          // Order holds, since this thread serves every later access after it.
          this.answer(s, w);
          r.handler.write(offset, size, value >>> 0);
          return 1;
        } else {
          r.handler.write(offset, size, value >>> 0); // an I/O write is not posted: answered once done
        }
      }
    }
    if (dir === IOREQ_READ) dv.setUint32(at + ioreq.data, size === 4 ? out : out & ((1 << (8 * Math.min(size, 3))) - 1), true);
    this.answer(s, w);
    return 1;
  }

  /** IORESP_READY in slot `s` (whose state word read `w`), and its waiter woken. */
  private answer(s: number, w: number): void {
    const at = barSlotOffset(s);
    Atomics.store(this.i32, (at + IOREQ_STATE_WORD) >> 2, (w & ~0xf0000) | (STATE_IORESP_READY << 16));
    futexWake(this.seg, at + IOREQ_STATE_WORD, 1);
  }

  close(): void {
    Atomics.store(this.flag, 1, 1);
    Atomics.notify(this.flag, 0);
    if (this.faultFlush) clearTimeout(this.faultFlush);
    if (this.msiFlush) clearTimeout(this.msiFlush);
    void this.worker?.terminate();
    this.model.dispose();
    this.clock.cancelAll();
  }
}
