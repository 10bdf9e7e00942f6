// pcifront: the PV guest's PCI front end (Linux drivers/pci/xen-pcifront.c).
//
//   device/pci/0                                  backend (pciback)
//     one page for struct xen_pci_sharedinfo, granted; an event channel
//     pci-op-ref, event-channel, magic "7", Initialised ──>
//                                                 <── Connected (root_num, root-N, vdev-N)
//     scan each root bus (a conf_read of every slot), Connected
//     back end Reconfiguring (xl pci-attach/-detach) ──> forget the devices
//     whose state-N is Closing, Reconfiguring
//                                                 <── Reconfigured
//     scan again, Connected
//
// Ops go one at a time through the page (do_pci_op): the op written,
// XEN_PCIF_active set, the back end kicked; the answer is there once the
// back end cleared the bit and kicked back. An op not answered within
// XEN_PCIF_OP_TIMEOUT_MS is taken back (the bit cleared) and answered
// XEN_PCI_ERR_dev_not_found, as Linux's do_pci_op does after logging
// "pciback not responding!!!"; pcifront_bus_read/write turn that into
// PCIBIOS_DEVICE_NOT_FOUND, which the PCI layer gives its callers as -ENODEV
// (pcibios_err_to_errno) and a read's value as all-ones. So a stopped
// Domain-0 makes configuration accesses fail instead of hanging the guest,
// while BAR, DMA and interrupt traffic, which never pass through it, goes on.
//
// Each device found is a PciDeviceHandle (pci_device.ts) for the kernel's
// drivers: configuration space through the ops above; its BARs through the
// device's BAR channel, which the hypervisor hands its owner
// (XENEMU_PHYSDEVOP_pci_bar_channel with the machine BDF, dev-N of the back
// end for our vdev-N); DMA buffers in frames the balloon never takes back
// (bus address = pfn << 12, what the IOMMU checks); MSI-X through
// XEN_PCI_OP_enable_msix, the pirqs bound to event channels and the
// device's MSI-X table entries written (unmasked, the pirq as data) through
// the BAR channel, the part Xen's msix.c does on the owner's behalf; INTx
// through the pirq of the line pciback shows (the device's GSI, which the
// toolstack let us map: PHYSDEVOP_map_pirq MAP_PIRQ_TYPE_GSI, then
// EVTCHNOP_bind_pirq; level: masked until PHYSDEVOP_eoi).
import type { XenDomain } from '../../../shared/xen/index.js';
import type { XsClient } from '../../../shared/xenstore/client.js';
import {
  PCI_DEVFN, PCI_FUNC, PCI_SLOT, SH_INFO_MAX_VEC, XEN_PCIF_active, XEN_PCI_ERR_dev_not_found, XEN_PCI_ERR_not_implemented,
  XEN_PCI_ERR_success, XEN_PCI_MAGIC, XEN_PCI_OP_conf_read, XEN_PCI_OP_conf_write, XEN_PCI_OP_enable_msix,
  readPciOp, writePciOp, xen_msix_entry, xen_pci_op, xen_pci_sharedinfo, type XenPciOp,
} from '../../../shared/abi/io/pciif.js';
import { EVTCHNOP_bind_pirq } from '../../../shared/abi/event_channel.js';
import { DOMID_SELF, PAGE_SIZE, __HYPERVISOR_physdev_op } from '../../../shared/abi/xen.js';
import { MAP_PIRQ_TYPE_GSI, PHYSDEVOP_eoi, PHYSDEVOP_map_pirq, XENEMU_PHYSDEVOP_pci_bar_channel } from '../../../shared/abi/physdev.js';
import { BarChannel, type BarChannelGrant } from '../../../shared/hw/bar_channel.js';
import type { Socket } from 'node:net';
import { listenPostedIrqs } from '../../../shared/hw/posted_irq.js';
import { EAGAIN, sendNow, socketFd } from '../../../shared/sockio.js';
import {
  XenbusState, frontendPath, xenbusGather, xenbusReadInt, xenbusSwitchState, xenbusWaitState, xenbusWatchState,
  type XenbusWatch,
} from '../../../shared/xen/xenbus.js';
import type { PciBar, PciDeviceHandle, PciDmaBuffer } from './pci_device.js';

/** How long one op may take (Linux's do_pci_op: ns_timeout 2 s, polled every 3 s at most). */
export const XEN_PCIF_OP_TIMEOUT_MS = 2000;

export interface PcifrontDeps {
  dom: XenDomain;
  xs: XsClient;
  /** Frames the balloon never gives back (the shared page). */
  reservePages(n: number): number;
  log(msg: string): void;
  /** Linux's `pci=nomsi` on the kernel command line: no MSI or MSI-X, drivers take INTx. */
  noMsi?: boolean;
}

/**
 * A failure of the PCI layer, with the errno Linux's callers get
 * (pcibios_err_to_errno of pcifront's errno_to_pcibios_err): ENODEV for
 * dev_not_found and an op pciback did not answer in time, EIO otherwise;
 * ENOSYS and EINVAL for what the front end refuses itself.
 */
export class PciError extends Error {
  constructor(readonly code: 'EIO' | 'ENOSYS' | 'ENODEV' | 'EINVAL', message: string) { super(message); this.name = 'PciError'; }
}

const XEN_PCI_ERR_NAMES: Record<number, string> = {
  [-1]: 'dev_not_found', [-2]: 'invalid_offset', [-3]: 'access_denied', [-4]: 'not_implemented', [-5]: 'op_failed',
};
export const pciErrName = (err: number): string => XEN_PCI_ERR_NAMES[err] ?? String(err);

/** What a scan found about a device (the first 16 bytes of its header). */
export interface PciDeviceInfo { vendor: number; device: number; classCode: number; revision: number; headerType: number }

interface Waiter { resolve(op: XenPciOp): void; reject(e: Error): void }

export class Pcifront {
  readonly devices = new Map<string, PcifrontDevice>();
  state: 'none' | 'connecting' | 'connected' | 'closed' = 'none';
  stats = { ops: 0, timeouts: 0 };
  /** Told of every device a scan adds and every one a reconfiguration removes. */
  onChange: (() => void) | undefined;
  /** The bus went away (its directories removed). */
  onGone: (() => void) | undefined;

  private dv!: DataView;
  private flags!: Int32Array;
  private port = -1;
  private ref = -1;
  private backend = '';
  private backendId = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private waiter: Waiter | undefined;
  private beWatch: XenbusWatch | undefined;
  private reconf: Promise<void> = Promise.resolve();

  constructor(private readonly deps: PcifrontDeps, readonly dir: string) {}

  private log(m: string): void { this.deps.log(`pcifront pci-0: ${m}`); }

  /** pcifront_xenbus_probe + pcifront_try_connect: resolves once the devices are known. */
  async connect(timeoutMs = 10_000): Promise<void> {
    const { xs, dom } = this.deps;
    this.state = 'connecting';
    const k = await xenbusGather(xs, this.dir, ['backend', 'backend-id'] as const);
    if (!k.backend || k['backend-id'] === null) throw new Error(`${this.dir}: no backend`);
    this.backend = k.backend;
    this.backendId = Number(k['backend-id']);
    const pfn = this.deps.reservePages(1);
    if (pfn < 0) throw new Error('no memory for the op page');
    const page = dom.memory.page(pfn);
    page.fill(0);
    this.dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
    this.flags = new Int32Array(page.buffer, page.byteOffset, 1);
    this.ref = dom.gnttab.grantAccess(this.backendId, pfn, false);
    if (this.ref < 0) throw new Error('grant table full');
    this.port = await dom.evtchn.allocUnbound(this.backendId);
    dom.evtchn.on(this.port, () => this.event());
    // pcifront_publish_info.
    await xs.transaction(async (tx) => {
      await xs.write(`${this.dir}/pci-op-ref`, String(this.ref), tx);
      await xs.write(`${this.dir}/event-channel`, String(this.port), tx);
      await xs.write(`${this.dir}/magic`, XEN_PCI_MAGIC, tx);
    });
    await xenbusSwitchState(xs, this.dir, XenbusState.Initialised);
    const s = await xenbusWaitState(xs, this.backend, (st) => st === XenbusState.Connected || st >= XenbusState.Closing, { timeoutMs });
    if (s !== XenbusState.Connected) throw new Error(`back end went ${XenbusState[s]} during the handshake`);
    await this.scan();
    await xenbusSwitchState(xs, this.dir, XenbusState.Connected);
    this.state = 'connected';
    this.beWatch = await xenbusWatchState(xs, this.backend, (st) => { this.reconf = this.reconf.then(() => this.backendChanged(st)); return this.reconf; });
    this.log(`connected: pci-op-ref ${this.ref}, event-channel ${this.port}, ${this.devices.size} device(s)`);
  }

  /** pcifront_backend_changed. */
  private async backendChanged(s: XenbusState): Promise<void> {
    const xs = this.deps.xs;
    if (this.state === 'closed') return;
    if (s === XenbusState.Reconfiguring) {
      // pcifront_detach_devices: forget the devices whose state-N is Closing.
      const num = Number((await xs.tryRead(`${this.backend}/num_devs`).catch(() => null)) ?? 0);
      for (let i = 0; i < num; i++) {
        if ((await xenbusReadInt(xs, this.backend, `state-${i}`)) !== XenbusState.Closing) continue;
        const vdev = await xs.tryRead(`${this.backend}/vdev-${i}`).catch(() => null);
        const bdf = vdev === null ? null : guestBdf(vdev);
        const gone = bdf ? this.devices.get(bdf) : undefined;
        if (gone && bdf) { gone.detach(); this.devices.delete(bdf); this.log(`${bdf}: removed`); }
      }
      await xenbusSwitchState(xs, this.dir, XenbusState.Reconfiguring);
      this.onChange?.();
    } else if (s === XenbusState.Reconfigured) {
      // pcifront_attach_devices: the buses scanned again.
      await this.scan();
      await xenbusSwitchState(xs, this.dir, XenbusState.Connected);
      this.onChange?.();
    } else if (s === XenbusState.Unknown && (await xs.tryRead(`${this.backend}/state`).catch(() => null)) === null) {
      // The toolstack took the bus away with its last device.
      await this.shutdown();
      this.onChange?.();
      this.onGone?.();
    } else if (s >= XenbusState.Closing && s <= XenbusState.Closed) {
      this.log('backend going away!');
      await this.shutdown();
      await xenbusSwitchState(xs, this.dir, XenbusState.Closed).catch(() => undefined);
      this.onChange?.();
    }
  }

  /** pcifront_scan_root: every slot of every root bus pciback published. */
  private async scan(): Promise<void> {
    const xs = this.deps.xs;
    const n = Number((await xs.tryRead(`${this.backend}/root_num`).catch(() => null)) ?? 0);
    const seen = new Set<string>();
    for (let r = 0; r < Math.min(n, 16); r++) {
      const root = await xs.tryRead(`${this.backend}/root-${r}`).catch(() => null);
      const m = root === null ? null : /^([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,2})$/.exec(root);
      if (!m) continue;
      const domain = parseInt(m[1]!, 16);
      const bus = parseInt(m[2]!, 16);
      for (let slot = 0; slot < 32; slot++) {
        for (let fn = 0; fn < 8; fn++) {
          const devfn = PCI_DEVFN(slot, fn);
          const id = await this.confRead(domain, bus, devfn, 0, 4).catch(() => 0xffffffff);
          if (id === 0xffffffff || id === 0) { if (fn === 0) break; continue; }
          const bdf = fmtBdf(domain, bus, devfn);
          seen.add(bdf);
          const hdr = await this.confRead(domain, bus, devfn, 0x0c, 4);
          const cls = await this.confRead(domain, bus, devfn, 0x08, 4);
          const info: PciDeviceInfo = {
            vendor: id & 0xffff, device: id >>> 16, classCode: cls >>> 8, revision: cls & 0xff, headerType: (hdr >>> 16) & 0xff,
          };
          if (!this.devices.has(bdf)) {
            const d = new PcifrontDevice(this, this.deps, domain, bus, devfn, info);
            await d.attach(this.backend);
            this.devices.set(bdf, d);
            this.log(`${bdf}: [${hex(info.vendor, 4)}:${hex(info.device, 4)}] type ${hex(info.headerType & 0x7f, 2)} class 0x${hex(info.classCode, 6)}`);
          }
          if (fn === 0 && (info.headerType & 0x80) === 0) break; // single-function device
        }
      }
    }
    for (const bdf of [...this.devices.keys()]) if (!seen.has(bdf)) this.devices.delete(bdf);
  }

  private event(): void {
    const w = this.waiter;
    if (!w || (Atomics.load(this.flags, 0) & XEN_PCIF_active) !== 0) return;
    this.waiter = undefined;
    w.resolve(readPciOp(this.dv, xen_pci_sharedinfo.op));
  }

  /**
   * do_pci_op: one op through the page, in turn with the others; resolves
   * with the answered op (its err and value), or fails after the timeout.
   * `prepare` writes what goes with the op (MSI-X entries); `after` reads
   * what comes back with it, before the next op may use the page.
   */
  op(op: XenPciOp, prepare?: (dv: DataView) => void, after?: (dv: DataView) => void): Promise<XenPciOp> {
    const run = async (): Promise<XenPciOp> => {
      if (this.state === 'closed' || this.state === 'none') throw new PciError('ENODEV', 'pcifront is not connected');
      writePciOp(this.dv, op, xen_pci_sharedinfo.op);
      prepare?.(this.dv);
      this.stats.ops++;
      const answer = new Promise<XenPciOp>((resolve, reject) => { this.waiter = { resolve, reject }; });
      Atomics.or(this.flags, 0, XEN_PCIF_active);
      this.deps.dom.evtchn.notify(this.port);
      let timer: NodeJS.Timeout | undefined;
      try {
        const r = await Promise.race([answer, new Promise<null>((resolve) => {
          timer = setTimeout(() => resolve(null), XEN_PCIF_OP_TIMEOUT_MS);
        })]);
        if (r === null) {
          // The op is taken back: a late answer must not be read as the next op's.
          this.waiter = undefined;
          Atomics.and(this.flags, 0, ~XEN_PCIF_active);
          this.stats.timeouts++;
          this.log('pciback not responding!!!');
          return { ...op, err: XEN_PCI_ERR_dev_not_found };
        }
        after?.(this.dv);
        return r;
      } catch (e) {
        this.waiter = undefined;
        throw e;
      } finally {
        clearTimeout(timer);
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** pcifront_bus_read: a configuration read, or a PciError. */
  async confRead(domain: number, bus: number, devfn: number, offset: number, size: number): Promise<number> {
    const r = await this.op({ cmd: XEN_PCI_OP_conf_read, err: 0, domain, bus, devfn, offset, size, value: 0, info: 0 });
    if (r.err !== XEN_PCI_ERR_success) throw new PciError(r.err === XEN_PCI_ERR_dev_not_found ? 'ENODEV' : 'EIO', `conf_read ${fmtBdf(domain, bus, devfn)} 0x${offset.toString(16)}/${size}: ${pciErrName(r.err)}`);
    return r.value >>> 0;
  }

  async confWrite(domain: number, bus: number, devfn: number, offset: number, size: number, value: number): Promise<void> {
    const r = await this.op({ cmd: XEN_PCI_OP_conf_write, err: 0, domain, bus, devfn, offset, size, value: value >>> 0, info: 0 });
    if (r.err !== XEN_PCI_ERR_success) throw new PciError(r.err === XEN_PCI_ERR_dev_not_found ? 'ENODEV' : 'EIO', `conf_write ${fmtBdf(domain, bus, devfn)} 0x${offset.toString(16)}/${size}: ${pciErrName(r.err)}`);
  }

  private async shutdown(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const { dom } = this.deps;
    this.waiter?.reject(new PciError('ENODEV', 'back end gone'));
    this.waiter = undefined;
    dom.evtchn.off(this.port);
    await dom.evtchn.close(this.port).catch(() => undefined);
    if (this.ref >= 0) dom.gnttab.endAccess(this.ref);
    for (const d of this.devices.values()) d.detach();
    this.devices.clear();
  }

  async close(): Promise<void> {
    await this.beWatch?.close();
    await this.shutdown();
  }
}

const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
export const fmtBdf = (domain: number, bus: number, devfn: number): string =>
  `${hex(domain, 4)}:${hex(bus, 2)}:${hex(PCI_SLOT(devfn), 2)}.${PCI_FUNC(devfn)}`;
/** pciback's vdev-N (0000:00:01.00) as a BDF. */
function guestBdf(vdev: string): string | null {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-9a-f]{1,2})$/.exec(vdev);
  return m ? `${m[1]}:${m[2]}:${m[3]}.${parseInt(m[4]!, 16)}` : null;
}

const enosys = (what: string): PciError => new PciError('ENOSYS', `${what}: not available`);

/** PCI_CAP_ID_MSIX and its registers (PCI 3.0 6.8.2). */
const PCI_CAP_ID_MSIX = 0x11;
const PCI_MSIX_ENTRY_SIZE = 16;
/** The address an MSI-X entry is given: the local APIC's window; the hypervisor routes by device, not by address. */
const MSI_ADDR = 0xfee00000;

/** DMA buffers: frames reserved from the balloon (never given back), reused by size once freed. */
class DmaFrames {
  private readonly free = new Map<number, number[]>();
  constructor(private readonly deps: PcifrontDeps) {}

  alloc(bytes: number): PciDmaBuffer {
    const pages = Math.max(1, Math.ceil(bytes / PAGE_SIZE));
    const pfn = this.free.get(pages)?.pop() ?? this.deps.reservePages(pages);
    if (pfn < 0) throw new PciError('EIO', `no memory for a DMA buffer of ${pages} page(s)`);
    let freed = false;
    return {
      busAddr: pfn * PAGE_SIZE,
      bytes: this.deps.dom.memory.range(pfn, pages),
      free: () => {
        if (freed) return;
        freed = true;
        const l = this.free.get(pages) ?? [];
        l.push(pfn);
        this.free.set(pages, l);
      },
    };
  }
}

/** A doorbell on the device's irq line: any byte. */
const RING = Buffer.of(1);

/** One device on pcifront's buses: PciDeviceHandle. */
export class PcifrontDevice implements PciDeviceHandle {
  readonly bdf: string;
  /** pirq per MSI-X vector, once enabled; the event channel each is bound to. */
  private readonly pirqs: number[] = [];
  private readonly ports = new Map<number, number>();
  /** The device's machine SBDF (pci_encode_bdf), from the back end's dev-N. */
  machine: number | null = null;
  private channel: BarChannel | null = null;
  private channelError = 'not attached';
  private barSizes = new Map<number, number>();
  /** INTx: the pirq of the device's line and its event channel, when it has a pin and we may map it. */
  private intx: { pirq: number; port: number } | null = null;
  private dma: DmaFrames;
  /** The device's posted-interrupt line (processes/pcidev/irq_socket.ts), while connected. */
  private irqLine: Socket | null = null;

  constructor(private readonly front: Pcifront, private readonly deps: PcifrontDeps, readonly domain: number, readonly bus: number,
              readonly devfn: number, readonly info: PciDeviceInfo) {
    this.bdf = fmtBdf(domain, bus, devfn);
    this.dma = new DmaFrames(deps);
  }

  /** Finds the machine device behind our vdev-N and asks the hypervisor for its BAR channel (the owner's). */
  async attach(backend: string): Promise<void> {
    const xs = this.deps.xs;
    const num = Number((await xs.tryRead(`${backend}/num_devs`).catch(() => null)) ?? 0);
    for (let i = 0; i < num && this.machine === null; i++) {
      const vdev = await xs.tryRead(`${backend}/vdev-${i}`).catch(() => null);
      if (vdev === null || guestBdf(vdev) !== this.bdf) continue;
      const dev = await xs.tryRead(`${backend}/dev-${i}`).catch(() => null);
      const m = dev === null ? null : /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(dev);
      if (m) this.machine = ((parseInt(m[1]!, 16) << 16) | (parseInt(m[2]!, 16) << 8) | (parseInt(m[3]!, 16) << 3) | parseInt(m[4]!, 16)) >>> 0;
    }
    if (this.machine === null) { this.channelError = 'no machine device for it in the back end'; return; }
    const g = await this.deps.dom.hv.hypercall<BarChannelGrant>(__HYPERVISOR_physdev_op, XENEMU_PHYSDEVOP_pci_bar_channel, { machine_sbdf: this.machine });
    if (g.ret < 0 || !g.data) { this.channelError = `no BAR channel (${g.ret})`; return; }
    try {
      this.channel = new BarChannel(g.data, 0, (m) => this.deps.log(`pcifront ${this.bdf}: ${m}`));
      for (const b of g.data.bars) this.barSizes.set(b.index, b.size);
    } catch (e) {
      this.channelError = `BAR channel: ${(e as Error).message}`;
    }
    if (this.channel && g.data.irqSocket) this.listenPosted(g.data.irqSocket, g.data.key);
    await this.bindIntx().catch((e: Error) => this.deps.log(`pcifront ${this.bdf}: INTx: ${e.message}`));
  }

  /**
   * The device's posted-interrupt line: connected with the BAR channel key,
   * each byte the device writes is an upcall (the device set an MSI's port
   * pending in our shared_info and upcall_pending with it), so the event
   * loop scans shared_info as for the hypervisor's `upcall` message. Without
   * the line every MSI comes through the hypervisor, as before.
   */
  private listenPosted(path: string, key: number): void {
    const s = listenPostedIrqs(path, key, () => this.deps.dom.evtchn.scan(),
      (e) => this.deps.log(`pcifront ${this.bdf}: posted interrupts: ${e.message}`));
    // The same line rings the BAR channel's doorbell: the device's event loop reads the byte itself.
    s.on('connect', () => {
      const fd = socketFd(s);
      if (fd >= 0) this.channel?.setDoorbell(() => { const r = sendNow(fd, RING); return r > 0 || r === EAGAIN; });
    });
    s.on('close', () => {
      if (this.irqLine !== s) return;
      this.irqLine = null;
      this.channel?.setDoorbell(null);
    });
    this.irqLine = s;
  }

  /** The device left the bus (unplug, the back end gone). */
  detach(): void {
    this.irqLine?.destroy();
    this.irqLine = null;
  }

  /** xen_pcifront_enable_irq: the line's pirq mapped and bound to an event channel. */
  private async bindIntx(): Promise<void> {
    const pin = await this.cfgRead(0x3d, 1);
    const line = await this.cfgRead(0x3c, 1);
    if (!pin || !line) return;
    const { hv } = this.deps.dom;
    const m = await hv.hypercall<{ pirq: number }>(__HYPERVISOR_physdev_op, PHYSDEVOP_map_pirq,
      { domid: DOMID_SELF, type: MAP_PIRQ_TYPE_GSI, index: line, pirq: line, bus: 0, devfn: 0, entry_nr: 0, table_base: 0 });
    if (m.ret < 0) throw new Error(`PHYSDEVOP_map_pirq of GSI ${line}: ${m.ret}`);
    const pirq = m.data?.pirq ?? line;
    const b = await hv.event_channel_op<{ port: number }>(EVTCHNOP_bind_pirq, { pirq, flags: 0 });
    if (b.ret < 0) throw new Error(`EVTCHNOP_bind_pirq ${pirq}: ${b.ret}`);
    this.intx = { pirq, port: b.data!.port };
  }

  cfgRead(off: number, size: 1 | 2 | 4): Promise<number> { return this.front.confRead(this.domain, this.bus, this.devfn, off, size); }
  cfgWrite(off: number, size: 1 | 2 | 4, v: number): Promise<void> { return this.front.confWrite(this.domain, this.bus, this.devfn, off, size, v); }

  bar(n: number): PciBar {
    const ch = this.channel;
    const size = this.barSizes.get(n);
    if (!ch) throw enosys(`${this.bdf}: BAR ${n} (${this.channelError})`);
    if (size === undefined) throw new PciError('ENODEV', `${this.bdf}: no BAR ${n}`);
    return {
      size,
      read: (off, sz) => ch.read(n, off, sz),
      write: (off, sz, v) => ch.write(n, off, sz, v),
    };
  }

  dmaAlloc(bytes: number): PciDmaBuffer { return this.dma.alloc(bytes); }

  /**
   * pci_frontend_enable_msix: XEN_PCI_OP_enable_msix with entries 0..n-1;
   * pciback answers each entry's pirq, which is bound to an event channel
   * (EVTCHNOP_bind_pirq). Fails with ENOSYS while the hypervisor maps no
   * pirqs (XEN_PCI_ERR_not_implemented).
   */
  async enableMsix(vectors: number): Promise<number> {
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > SH_INFO_MAX_VEC) throw new PciError('EINVAL', `${this.bdf}: ${vectors} MSI-X vectors`);
    if (this.deps.noMsi) throw enosys(`${this.bdf}: MSI-X (pci=nomsi)`);
    const base = xen_pci_sharedinfo.op + xen_pci_op.msix_entries;
    const pirqs: number[] = [];
    const r = await this.front.op(
      { cmd: XEN_PCI_OP_enable_msix, err: 0, domain: this.domain, bus: this.bus, devfn: this.devfn, offset: 0, size: 0, value: vectors, info: 0 },
      (dv) => { for (let i = 0; i < vectors; i++) { dv.setUint16(base + i * xen_msix_entry.SIZE + xen_msix_entry.entry, i, true); dv.setUint16(base + i * xen_msix_entry.SIZE + xen_msix_entry.vector, 0, true); } },
      (dv) => { for (let i = 0; i < vectors; i++) pirqs.push(dv.getUint16(base + i * xen_msix_entry.SIZE + xen_msix_entry.vector, true)); },
    );
    if (r.err === XEN_PCI_ERR_not_implemented) throw enosys(`${this.bdf}: MSI-X (pciback answered not_implemented)`);
    if (r.err !== XEN_PCI_ERR_success) throw new PciError('EIO', `${this.bdf}: enable_msix: ${pciErrName(r.err)}`);
    for (let i = 0; i < vectors; i++) {
      const b = await this.deps.dom.hv.event_channel_op<{ port: number }>(EVTCHNOP_bind_pirq, { pirq: pirqs[i], flags: 0 });
      if (b.ret < 0) throw new PciError('ENOSYS', `${this.bdf}: EVTCHNOP_bind_pirq ${pirqs[i]}: ${b.ret}`);
      this.pirqs[i] = pirqs[i]!;
      this.ports.set(i, b.data!.port);
    }
    await this.programMsixTable(pirqs);
    return vectors;
  }

  /** Each vector's MSI-X table entry: the APIC window, the pirq as data, unmasked. */
  private async programMsixTable(pirqs: number[]): Promise<void> {
    let cap = (await this.cfgRead(0x34, 1)) & 0xfc;
    for (let n = 0; cap && n < 48; n++) {
      if ((await this.cfgRead(cap, 1)) === PCI_CAP_ID_MSIX) break;
      cap = (await this.cfgRead(cap + 1, 1)) & 0xfc;
    }
    if (!cap) throw new PciError('ENODEV', `${this.bdf}: no MSI-X capability`);
    const table = await this.cfgRead(cap + 4, 4);
    const bar = this.bar(table & 7);
    const base = table & ~7;
    pirqs.forEach((pirq, i) => {
      const e = base + i * PCI_MSIX_ENTRY_SIZE;
      bar.write(e, 4, MSI_ADDR);
      bar.write(e + 4, 4, 0);
      bar.write(e + 8, 4, pirq);
      bar.write(e + 12, 4, 0);
    });
  }

  onInterrupt(vector: number, cb: () => void): void {
    const port = this.ports.get(vector) ?? (vector === 0 && this.ports.size === 0 ? this.intx?.port : undefined);
    if (port === undefined) throw enosys(`${this.bdf}: interrupt vector ${vector} (${vector === 0 ? 'no MSI-X and no INTx' : 'MSI-X not enabled'})`);
    this.deps.dom.evtchn.on(port, cb);
  }

  /**
   * PHYSDEVOP_eoi for the INTx pirq (level: masked until then). An MSI-X
   * pirq is an edge that needs none (Linux's eoi_pirq asks pirq_needs_eoi,
   * which Xen's PHYSDEVOP_pirq_eoi_gmfn map leaves clear for maskable MSI).
   */
  eoi(vector: number): void {
    if (this.pirqs[vector] !== undefined) return;
    const pirq = vector === 0 && this.ports.size === 0 ? this.intx?.pirq : undefined;
    if (pirq === undefined) throw enosys(`${this.bdf}: EOI of vector ${vector}`);
    void this.deps.dom.hv.hypercall(__HYPERVISOR_physdev_op, PHYSDEVOP_eoi, { irq: pirq });
  }
}

/** Connects the guest's PCI front end when the toolstack gave it one (device/pci/0). */
export async function startPcifront(deps: PcifrontDeps): Promise<Pcifront | null> {
  const dir = frontendPath(deps.dom.domid, 'pci', 0);
  if ((await deps.xs.tryRead(`${dir}/backend`).catch(() => null)) === null) return null;
  const f = new Pcifront(deps, dir);
  await f.connect();
  return f;
}
