// One PV guest's PCI back end (Linux xen-pciback xenbus.c + pciback_ops.c),
// at /local/domain/0/backend/pci/<domid>/0, serving every device the
// toolstack gave that guest on one virtual bus 0000:00 (Linux's vpci mode:
// each device in the first free slot).
//
//   toolstack                pciback (this)                        pcifront
//   backend dir, state 1 ──> InitWait; export each dev-N whose state-N is 1:
//                            seize it (ConfSpaceFilter), vdev-N, state-N 3;
//                            root_num, root-0; Initialised(3) ──>
//                                                             <── pci-op-ref, event-channel,
//                                                                 magic "7", Initialised(3)
//                            map pci-op-ref, bind event-channel,
//                            Connected(4) ───────────────────────> scan the roots, Connected
//   hot-plug: dev-N, state-N 1, state 7 (Reconfiguring) ─────────> Reconfiguring
//   hot-unplug: state-N 5, state 7                              <── Reconfiguring
//                            state-N 1: export; state-N 5: let go,
//                            state-N 6; Reconfigured(8) ─────────> scan again, Connected
//                            Connected(4) <──────────────────────
//
// The op page (io/pciif.h xen_pci_sharedinfo) carries one op at a time.
// On an event, if XEN_PCIF_active is set the op is copied out once
// (XSA-155), served against the device's filtered configuration space, its
// err and value written back, XEN_PCIF_active cleared and the front end
// kicked. One op per turn of the event loop: a front end that sets the bit
// again at once (a flood) gets each op answered once, in turn with everyone
// else's; events that come while an op is served are folded into one
// re-check (Linux's _PDEVF_op_active).
import type { XenDomain } from '../../../shared/xen/index.js';
import type { XsClient } from '../../../shared/xenstore/client.js';
import {
  PCI_DEVFN, PCI_FUNC, PCI_SLOT, SH_INFO_MAX_VEC, XEN_PCIF_active, XEN_PCI_ERR_dev_not_found, XEN_PCI_ERR_invalid_offset,
  XEN_PCI_ERR_not_implemented, XEN_PCI_ERR_op_failed, XEN_PCI_ERR_success, XEN_PCI_MAGIC, XEN_PCI_OP_conf_read,
  XEN_PCI_OP_conf_write, XEN_PCI_OP_disable_msi, XEN_PCI_OP_disable_msix, XEN_PCI_OP_enable_msi, XEN_PCI_OP_enable_msix,
  XEN_PCI_OP_enable_multi_msi, readPciOp, xen_msix_entry, xen_pci_op, xen_pci_sharedinfo, type XenPciOp,
} from '../../../shared/abi/io/pciif.js';
import { XEN_ENOSYS } from '../../../shared/abi/errno.js';
import { pciCfgSocket } from '../../../shared/wire/pci_cfg.js';
import { hostGsiOfBus } from '../../../shared/wire/pcidev.js';
import { PCI_INTERRUPT_PIN } from '../../../shared/hw/pci.js';
import {
  XenbusState, xenbusGather, xenbusReadInt, xenbusSwitchState, xenbusWatch, xenbusWatchState, type XenbusWatch,
} from '../../../shared/xen/xenbus.js';
import type { BackendDevice, BackendDriver } from '../backend_stats.js';
import { PciCfgClient } from './cfg_client.js';
import { ConfSpaceFilter } from './conf_space.js';
import { mapMsiPirq, msixCapability, setMsixEnable } from './msi.js';
import { PciifReject } from './reject.js';

export interface PdevContext {
  dom0: XenDomain;
  xs: XsClient;
  log(msg: string): void;
  driver: BackendDriver<PciifReject>;
}

/** A device exported to the guest. */
interface Exported {
  index: number;
  bdf: string;
  machine: { domain: number; bus: number; devfn: number };
  devfn: number;
  filter: ConfSpaceFilter;
  client: PciCfgClient;
  msi: boolean;
  msix: boolean;
}

interface Connection { handle: number; port: number; dv: DataView; flags: Int32Array; busy: boolean; again: boolean; dead: boolean }

export class PciBackendDevice {
  private readonly devs = new Map<number, Exported>();
  private conn: Connection | undefined;
  private beWatch: XenbusWatch | undefined;
  private feWatch: XenbusWatch | undefined;
  private frontendDir = '';
  private frontendId = -1;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  readonly stats = { ops: 0, conf_read: 0, conf_write: 0, notify_received: 0, notify_sent: 0, msi_unavailable: 0 };
  readonly dev: BackendDevice<PciifReject>;

  constructor(private readonly ctx: PdevContext, readonly dir: string, readonly domid: number) {
    this.dev = ctx.driver.device(domid, 0, () => ({ ...this.stats, devices: this.devs.size }), (m) => this.log(m));
  }

  private log(m: string): void { this.ctx.log(`pciback: d${this.domid}: ${m}`); }

  /** One state change at a time, as Linux's xenbus callbacks. */
  private serial(fn: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(() => (this.closed ? undefined : fn())).catch((e: Error) => this.log(`error: ${e.message}`));
    return this.chain;
  }

  async start(): Promise<void> {
    const k = await xenbusGather(this.ctx.xs, this.dir, ['frontend', 'frontend-id'] as const);
    if (!k.frontend || k['frontend-id'] === null) throw new Error(`incomplete backend directory ${this.dir}`);
    this.frontendDir = k.frontend;
    this.frontendId = Number(k['frontend-id']);
    // xen_pcibk_xenbus_probe: wait for the toolstack's configuration.
    await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.InitWait);
    this.beWatch = await xenbusWatch(this.ctx.xs, this.dir, () => void this.serial(() => this.backendChanged()), `pciback-be-${this.domid}`);
    this.feWatch = await xenbusWatchState(this.ctx.xs, this.frontendDir, (s) => this.serial(() => this.frontendChanged(s)));
  }

  private state(): Promise<XenbusState> { return xenbusReadInt(this.ctx.xs, this.dir, 'state') as Promise<XenbusState>; }

  /** xen_pcibk_be_watch. */
  private async backendChanged(): Promise<void> {
    const s = await this.state();
    if (s === XenbusState.InitWait) await this.setup();
    else if (s === XenbusState.Initialised) await this.exportPending(false);
  }

  /** xen_pcibk_setup_backend: every device exported, the roots published, Initialised. */
  private async setup(): Promise<void> {
    const num = await this.numDevs();
    if (num === 0) return; // the toolstack writes dev-0 with the directory: not complete yet
    await this.exportPending(false);
    await this.publishRoots();
    await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.Initialised);
    if ((await xenbusReadInt(this.ctx.xs, this.frontendDir, 'state')) === XenbusState.Initialised) await this.attach();
  }

  private async numDevs(): Promise<number> {
    const n = Number(await this.ctx.xs.tryRead(`${this.dir}/num_devs`).catch(() => null));
    return Number.isInteger(n) && n > 0 && n <= 256 ? n : 0;
  }

  /** Exports devices whose state-N is Initialising; with `reconfigure`, lets go of those Closing. */
  private async exportPending(reconfigure: boolean): Promise<void> {
    const xs = this.ctx.xs;
    const num = await this.numDevs();
    for (let i = 0; i < num; i++) {
      const sub = await xenbusReadInt(xs, this.dir, `state-${i}`);
      if (sub === XenbusState.Initialising) {
        await this.exportDevice(i);
      } else if (reconfigure && sub === XenbusState.Closing) {
        const bdf = await xs.tryRead(`${this.dir}/dev-${i}`).catch(() => null);
        for (const [devfn, d] of this.devs) if (d.bdf === bdf) { this.devs.delete(devfn); d.client.close(); this.log(`${d.bdf} removed`); }
        await xs.rm(`${this.dir}/vdev-${i}`).catch(() => undefined);
        await xs.write(`${this.dir}/state-${i}`, String(XenbusState.Closed));
      }
    }
  }

  /** xen_pcibk_export_device: seize the device, a free slot on bus 00, vdev-N, state-N Initialised. */
  private async exportDevice(i: number): Promise<void> {
    const xs = this.ctx.xs;
    const k = await xenbusGather(xs, this.dir, [`dev-${i}`, `opts-${i}`] as const);
    const bdf = k[`dev-${i}`];
    const m = bdf === null ? null : /^([0-9a-f]{4}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/.exec(bdf);
    if (!m) { this.log(`dev-${i}: bad device ${bdf}`); return; }
    if ([...this.devs.values()].some((d) => d.bdf === bdf)) {
      await xs.write(`${this.dir}/state-${i}`, String(XenbusState.Initialised));
      return;
    }
    const permissive = /(^|,)permissive=1(,|$)/.test(k[`opts-${i}`] ?? '');
    const client = new PciCfgClient(pciCfgSocket(this.ctx.dom0.rundir, bdf!));
    let filter: ConfSpaceFilter;
    try {
      // The line the guest reads is the device's GSI, when it has a pin (the host's routing, shared/wire/pcidev.ts).
      const pin = await client.read(PCI_INTERRUPT_PIN, 1);
      const irq = pin ? hostGsiOfBus(parseInt(m[2]!, 16)) : 0;
      filter = await ConfSpaceFilter.seize(client, { permissive, irq, log: (msg) => this.dev.limitedLog(`${bdf}: ${msg}`) });
    } catch (e) {
      client.close();
      this.log(`${bdf}: cannot seize the device: ${(e as Error).message}`);
      await xs.write(`${this.dir}/state-${i}`, String(XenbusState.Closed));
      return;
    }
    let slot = 0;
    while (slot < 32 && this.devs.has(PCI_DEVFN(slot, 0))) slot++;
    if (slot === 32) { client.close(); this.log(`${bdf}: no free slot on the virtual bus`); return; }
    const devfn = PCI_DEVFN(slot, 0);
    this.devs.set(devfn, {
      index: i, bdf: bdf!, devfn, filter, client, msi: false, msix: false,
      machine: { domain: parseInt(m[1]!, 16), bus: parseInt(m[2]!, 16), devfn: PCI_DEVFN(parseInt(m[3]!, 16), parseInt(m[4]!, 16)) },
    });
    const h = (n: number) => n.toString(16).padStart(2, '0');
    await xs.write(`${this.dir}/vdev-${i}`, `0000:00:${h(PCI_SLOT(devfn))}.${h(PCI_FUNC(devfn))}`);
    await xs.write(`${this.dir}/state-${i}`, String(XenbusState.Initialised));
    this.log(`${bdf} exported as 0000:00:${h(slot)}.0${permissive ? ' (permissive)' : ''}`);
  }

  /** xen_pcibk_publish_pci_roots: the one virtual root bus. */
  private async publishRoots(): Promise<void> {
    await this.ctx.xs.write(`${this.dir}/root_num`, '1');
    await this.ctx.xs.write(`${this.dir}/root-0`, '0000:00');
  }

  /** xen_pcibk_frontend_changed. */
  private async frontendChanged(s: XenbusState): Promise<void> {
    const xs = this.ctx.xs;
    switch (s) {
      case XenbusState.Initialised:
        await this.attach();
        return;
      case XenbusState.Reconfiguring:
        if ((await this.state()) !== XenbusState.Reconfiguring) return;
        await this.exportPending(true);
        await this.publishRoots();
        await xenbusSwitchState(xs, this.dir, XenbusState.Reconfigured);
        return;
      case XenbusState.Connected:
        // pcifront went from Reconfiguring to Connected.
        if ((await this.state()) === XenbusState.Reconfigured) await xenbusSwitchState(xs, this.dir, XenbusState.Connected);
        return;
      case XenbusState.Closing:
        await this.disconnect();
        await xenbusSwitchState(xs, this.dir, XenbusState.Closing).catch(() => undefined);
        return;
      case XenbusState.Closed: case XenbusState.Unknown:
        await this.disconnect();
        await xenbusSwitchState(xs, this.dir, XenbusState.Closed).catch(() => undefined);
        return;
      default:
        return;
    }
  }

  /** xen_pcibk_attach: once both ends are Initialised. */
  private async attach(): Promise<void> {
    const xs = this.ctx.xs;
    if (this.conn || (await this.state()) !== XenbusState.Initialised) return;
    if ((await xenbusReadInt(xs, this.frontendDir, 'state')) !== XenbusState.Initialised) return;
    const k = await xenbusGather(xs, this.frontendDir, ['pci-op-ref', 'event-channel', 'magic'] as const);
    if (k.magic !== XEN_PCI_MAGIC) {
      await this.fatal(PciifReject.bad_magic, `version mismatch (${k.magic}/${XEN_PCI_MAGIC}) with pcifront - halting pciback`);
      return;
    }
    const ref = Number(k['pci-op-ref']);
    const evtchn = Number(k['event-channel']);
    if (k['pci-op-ref'] === null || !Number.isInteger(ref) || ref < 0) {
      await this.fatal(PciifReject.bad_pci_op_ref, `front end gave no usable pci-op-ref (${k['pci-op-ref']})`);
      return;
    }
    if (k['event-channel'] === null || !Number.isInteger(evtchn) || evtchn < 0) {
      await this.fatal(PciifReject.bad_event_channel, `front end gave no usable event-channel (${k['event-channel']})`);
      return;
    }
    const dom0 = this.ctx.dom0;
    let map;
    try { map = await dom0.gnttab.mapGrant(this.frontendId, ref, false); } catch (e) {
      await this.fatal(PciifReject.bad_pci_op_ref, `mapping pci-op-ref ${ref}: ${(e as Error).message}`);
      return;
    }
    let port: number;
    try { port = await dom0.evtchn.bindInterdomain(this.frontendId, evtchn); } catch (e) {
      await dom0.gnttab.unmapGrant(map.handle).catch(() => undefined);
      await this.fatal(PciifReject.bad_event_channel, `binding event-channel ${evtchn}: ${(e as Error).message}`);
      return;
    }
    const page = map.page;
    const conn: Connection = {
      handle: map.handle, port, dv: new DataView(page.buffer, page.byteOffset, page.byteLength),
      flags: new Int32Array(page.buffer, page.byteOffset, 1), busy: false, again: false, dead: false,
    };
    this.conn = conn;
    dom0.evtchn.on(port, () => { this.stats.notify_received++; this.kick(conn); });
    await xenbusSwitchState(xs, this.dir, XenbusState.Connected);
    this.log(`connected: pci-op-ref ${ref}, event-channel ${evtchn} (local ${port}), ${this.devs.size} device(s)`);
    this.kick(conn);
  }

  /** xenbus_dev_fatal: the reason counted, `error` written, Closing. Other guests keep their service. */
  private async fatal(reason: PciifReject, why: string): Promise<void> {
    this.dev.reject(reason, why);
    this.dev.sync();
    await this.ctx.xs.write(`${this.dir}/error`, why).catch(() => undefined);
    await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.Closing).catch(() => undefined);
  }

  /** xen_pcibk_handle_event + xen_pcibk_do_op: at most one op in hand; one op per turn. */
  private kick(conn: Connection): void {
    if (conn.dead) return;
    if (conn.busy) { conn.again = true; return; }
    if ((Atomics.load(conn.flags, 0) & XEN_PCIF_active) === 0) return;
    conn.busy = true;
    conn.again = false;
    const op = readPciOp(conn.dv, xen_pci_sharedinfo.op);
    void this.doOp(conn, op).catch((e: Error) => {
      this.dev.limitedLog(`op ${op.cmd} failed: ${e.message}`);
      return { err: XEN_PCI_ERR_op_failed, value: 0 } as { err: number; value: number; info?: number };
    }).then((r) => {
      if (conn.dead) return;
      const base = xen_pci_sharedinfo.op;
      conn.dv.setInt32(base + xen_pci_op.err, r.err, true);
      conn.dv.setUint32(base + xen_pci_op.value, r.value >>> 0, true);
      if (r.info !== undefined) conn.dv.setUint32(base + xen_pci_op.info, r.info >>> 0, true);
      this.stats.ops++;
      this.dev.sync();
      Atomics.and(conn.flags, 0, ~XEN_PCIF_active);
      this.stats.notify_sent++;
      this.ctx.dom0.evtchn.notify(conn.port);
      conn.busy = false;
      // The front end may have started another op in between: look again next turn.
      if (conn.again || (Atomics.load(conn.flags, 0) & XEN_PCIF_active)) setImmediate(() => this.kick(conn));
    });
  }

  /** One op, answered with XEN_PCI_ERR_* and a value; never throws. */
  private async doOp(conn: Connection, op: XenPciOp): Promise<{ err: number; value: number; info?: number }> {
    const d = op.domain === 0 && op.bus === 0 ? this.devs.get(op.devfn) : undefined;
    const known = [XEN_PCI_OP_conf_read, XEN_PCI_OP_conf_write, XEN_PCI_OP_enable_msi, XEN_PCI_OP_disable_msi,
      XEN_PCI_OP_enable_msix, XEN_PCI_OP_disable_msix, XEN_PCI_OP_enable_multi_msi];
    if (!known.includes(op.cmd)) {
      this.dev.reject(PciifReject.bad_op, `op ${op.cmd} is not served`);
      return { err: XEN_PCI_ERR_not_implemented, value: 0 };
    }
    if (!d) {
      // pcifront's bus scan asks for every slot: not a refusal of bad input.
      if (op.cmd !== XEN_PCI_OP_conf_read) {
        this.dev.reject(PciifReject.dev_not_found, `op ${op.cmd} for ${op.domain.toString(16)}:${op.bus.toString(16)}:${op.devfn.toString(16)}`);
      }
      return { err: XEN_PCI_ERR_dev_not_found, value: 0 };
    }
    try {
      switch (op.cmd) {
        case XEN_PCI_OP_conf_read: case XEN_PCI_OP_conf_write: {
          if (op.cmd === XEN_PCI_OP_conf_read) this.stats.conf_read++; else this.stats.conf_write++;
          const r = op.cmd === XEN_PCI_OP_conf_read ? await d.filter.read(op.offset, op.size) : await d.filter.write(op.offset, op.size, op.value);
          if (r.err === XEN_PCI_ERR_invalid_offset) this.dev.reject(PciifReject.invalid_offset, `${d.bdf}: offset ${op.offset} size ${op.size}`);
          return { err: r.err, value: r.value };
        }
        case XEN_PCI_OP_enable_msi: case XEN_PCI_OP_enable_multi_msi: {
          if (d.msi || d.msix) { this.dev.reject(PciifReject.msi_state, `${d.bdf}: enable_msi with MSI${d.msix ? '-X' : ''} on`); return { err: XEN_PCI_ERR_op_failed, value: 0 }; }
          const pirq = await mapMsiPirq(this.ctx.dom0, this.domid, d.machine, -1);
          if (pirq === -XEN_ENOSYS) { this.stats.msi_unavailable++; return { err: XEN_PCI_ERR_not_implemented, value: 0 }; }
          if (pirq < 0) return { err: XEN_PCI_ERR_op_failed, value: 0 };
          d.msi = true;
          return { err: XEN_PCI_ERR_success, value: pirq };
        }
        case XEN_PCI_OP_enable_msix: {
          const n = op.value;
          if (n === 0 || n > SH_INFO_MAX_VEC) { this.dev.reject(PciifReject.bad_msix_count, `${d.bdf}: ${n} vectors`); return { err: XEN_PCI_ERR_op_failed, value: 0 }; }
          if (d.msi || d.msix) { this.dev.reject(PciifReject.msi_state, `${d.bdf}: enable_msix with MSI${d.msix ? '-X' : ''} on`); return { err: XEN_PCI_ERR_op_failed, value: 0 }; }
          const cap = await msixCapability(d.client);
          if (!cap) return { err: XEN_PCI_ERR_op_failed, value: 0 };
          const base = xen_pci_sharedinfo.op + xen_pci_op.msix_entries;
          for (let i = 0; i < n; i++) {
            // Each entry copied once: the number the front end asked for, then the pirq answered in place.
            const entry = conn.dv.getUint16(base + i * xen_msix_entry.SIZE + xen_msix_entry.entry, true);
            const pirq = await mapMsiPirq(this.ctx.dom0, this.domid, d.machine, entry);
            if (pirq === -XEN_ENOSYS) { this.stats.msi_unavailable++; return { err: XEN_PCI_ERR_not_implemented, value: 0 }; }
            if (pirq < 0) return { err: XEN_PCI_ERR_op_failed, value: 0 };
            if (conn.dead) return { err: XEN_PCI_ERR_op_failed, value: 0 };
            conn.dv.setUint16(base + i * xen_msix_entry.SIZE + xen_msix_entry.vector, pirq, true);
          }
          await setMsixEnable(d.client, cap, true);
          d.msix = true;
          return { err: XEN_PCI_ERR_success, value: n };
        }
        case XEN_PCI_OP_disable_msi: d.msi = false; return { err: XEN_PCI_ERR_success, value: 0 };
        case XEN_PCI_OP_disable_msix: {
          const cap = d.msix ? await msixCapability(d.client) : 0;
          if (cap) await setMsixEnable(d.client, cap, false);
          d.msix = false;
          return { err: XEN_PCI_ERR_success, value: 0 };
        }
        default: return { err: XEN_PCI_ERR_not_implemented, value: 0 };
      }
    } catch (e) {
      this.dev.limitedLog(`${d.bdf}: op ${op.cmd} failed: ${(e as Error).message}`);
      return { err: XEN_PCI_ERR_op_failed, value: 0 };
    }
  }

  private async disconnect(): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    this.conn = undefined;
    conn.dead = true;
    const dom0 = this.ctx.dom0;
    dom0.evtchn.off(conn.port);
    await dom0.evtchn.close(conn.port).catch(() => undefined);
    await dom0.gnttab.unmapGrant(conn.handle).catch(() => undefined);
    this.log('disconnected');
  }

  /** The back end directory went away: let go of everything. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.beWatch?.close();
    await this.feWatch?.close();
    await this.chain;
    await this.disconnect();
    for (const d of this.devs.values()) d.client.close();
    this.devs.clear();
    this.dev.remove();
  }
}
