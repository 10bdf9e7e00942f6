// The device model proper, the same wherever it runs (docs/hvm.md, docs/stubdom.md):
//
//   1. XEN_DMOP_create_ioreq_server for the guest; its pages and the guest's
//      RAM mapped (XENMEM_acquire_resource; the guest's memory segment, a
//      foreign mapping of the target: XENEMU_DOMCTL_getsegments)
//   2. the devices built on the ioreq thread (ioreq_thread.ts), each range
//      they claim routed to the server (map_io_range_to_ioreq_server), then
//      the server enabled
//   3. COM1, each NIC's cable and each disk joined to what the placement
//      gives (Domain-0: a PTY, bridge taps, image files; a stub domain: its
//      console, netfronts and blkfronts), QMP on qmp-libxl-<domid>
//   4. `running` at the placement's state node: the toolstack unpauses the guest
//
// Its hypercalls are whatever channel the placement has: privcmd as Domain-0,
// or the stub domain's own, where the hypervisor allows what its target
// allows (XEN_DOMCTL_set_target) and nothing else.
import { Worker, MessageChannel } from 'node:worker_threads';
import { unlinkSync } from 'node:fs';
import type { HypercallResult } from '../../shared/xen/hypervisor.js';
import { shmOpen } from '../../shared/shm.js';
import { __HYPERVISOR_dm_op, __HYPERVISOR_domctl, __HYPERVISOR_memory_op, __HYPERVISOR_physdev_op, PAGE_SIZE } from '../../shared/abi/xen.js';
import { MAP_PIRQ_TYPE_MSI_SEG, PHYSDEVOP_map_pirq, PHYSDEVOP_unmap_pirq } from '../../shared/abi/physdev.js';
import {
  PT_IRQ_TYPE_MSI, PT_IRQ_TYPE_PCI, XEN_DOMCTL_unbind_pt_irq, XENEMU_DOMCTL_getsegments, XENEMU_DOMCTL_pci_assignable_list, XEN_DOMCTL_bind_pt_irq, XEN_DOMCTL_ioport_mapping,
  XEN_DOMCTL_memory_mapping,
} from '../../shared/abi/domctl.js';
import { PciCfgClient, PciCfgError } from '../../shared/hw/pci_cfg_client.js';
import { hostGsiOfBus, parseBdf, pciConfigSocket, type PciBarInfo } from '../../shared/wire/pcidev.js';
import { XENMEM_acquire_resource, XENMEM_resource_ioreq_server } from '../../shared/abi/memory.js';
import * as DM from '../../shared/abi/hvm/dm_op.js';
import { HVM_IOREQSRV_BUFIOREQ_ATOMIC } from '../../shared/abi/hvm/params.js';
import { XENEMU_HVM_SEGMENT_PAGES } from '../../shared/abi/hvm/xenemu_hvm.js';
import { SHUTDOWN_poweroff, SHUTDOWN_reboot } from '../../shared/abi/sched.js';
import { errnoName } from '../../shared/abi/errno.js';
import type { XsClient } from '../../shared/xenstore/client.js';
import { PIIX4_SLP_TYP_S5 } from '../../shared/hw/piix4_pm.js';
import type { QemuDmArgs } from './args.js';
import { ringServer } from './ioreq_server.js';
import { qmpSocketPath, startQmp, type ScreenState } from './qmp.js';
import { remoteDrive, serveBlockRequest, type BlockDevice, type RemoteDrive } from './block_proxy.js';
import type { FromIoreqThread, IoreqThreadData, PtRequest, ToIoreqThread } from './ioreq_thread.js';

export type Hypercall = <T = unknown>(op: number, cmd: number, arg: object) => Promise<HypercallResult<T>>;

/** A byte stream the guest's COM1 is joined to. */
export interface SerialLine {
  write(bytes: Uint8Array): void;
  onInput(fn: (bytes: Uint8Array) => void): void;
  /** Where `xl console` finds it, if the device model publishes it (serial/0/tty). */
  tty?: string;
}

/** An Ethernet cable: frames out, frames in. */
export interface NicCable {
  send(frame: Uint8Array): void;
  onReceive(fn: (frame: Uint8Array) => void): void;
}

export interface Placement {
  hypercall: Hypercall;
  xs: XsClient;
  rundir: string;
  /** The xenstore node `running` goes to. */
  statePath: string;
  serial: SerialLine | null;
  /** One per -device e1000, in order. */
  nics: NicCable[];
  /** Disks the main thread serves (a stub domain's blkfronts), by IDE index; absent: the ioreq thread opens the files. */
  disks?: Map<number, { dev: BlockDevice; size: number; readOnly: boolean }>;
  log(m: string): void;
  /** Runs the cleanups and exits. */
  exit(code: number): never;
  cleanups: Array<() => void>;
}

export async function runDeviceModel(a: QemuDmArgs, p: Placement): Promise<void> {
  const { hypercall, log, cleanups } = p;
  const check = <T>(what: string, r: { ret: number; data?: T }): T => {
    if (r.ret < 0) throw new Error(`${what}: ${errnoName(r.ret)}`);
    return r.data as T;
  };
  const seg = check('getsegments', await hypercall<{ mem: string; mem_bytes: number; hvm?: string }>(
    __HYPERVISOR_domctl, XENEMU_DOMCTL_getsegments, { domain: a.domid }));
  if (!seg.hvm) throw new Error(`d${a.domid} is not an HVM domain`);
  const dm = (op: number, arg: object) => hypercall(__HYPERVISOR_dm_op, 0, { domid: a.domid, op, ...arg });
  const { id } = check('create_ioreq_server', await dm(DM.XEN_DMOP_create_ioreq_server, { handle_bufioreq: HVM_IOREQSRV_BUFIOREQ_ATOMIC })) as { id: number };
  const res = check('acquire_resource', await hypercall<{ segment: string }>(__HYPERVISOR_memory_op, XENMEM_acquire_resource,
    { domid: a.domid, type: XENMEM_resource_ioreq_server, id, frame: 0, nr_frames: 2 }));
  const hvm = shmOpen(res.segment, XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE);
  const ramBytes = Math.min(a.memoryMiB << 20, seg.mem_bytes);
  log(`d${a.domid} (${a.name}): ioreq server ${id}, ${a.memoryMiB} MiB, ${a.drives.length} drives, ${a.nics.length} NICs`);

  const { port1: toThread, port2 } = new MessageChannel();
  const acks = new Int32Array(new SharedArrayBuffer(8));
  const send = (m: ToIoreqThread) => {
    toThread.postMessage(m);
    Atomics.add(acks, 1, 1);
    ringServer(hvm, id);
  };
  // xen_pt's host side: each device's BARs where the host placed them, its
  // GSI, and its configuration socket (Domain-0's, as QEMU opens sysfs).
  const ptCfg: PciCfgClient[] = [];
  const pt: IoreqThreadData['pt'] = [];
  if (a.pt.length) {
    const reg = check('pci list', await hypercall<{ devices: Array<{ bdf: string; owner: string; bars?: PciBarInfo[] }> }>(
      __HYPERVISOR_domctl, XENEMU_DOMCTL_pci_assignable_list, {}));
    for (const d of a.pt) {
      const r = reg.devices.find((x) => x.bdf === d.hostaddr);
      if (!r) throw new Error(`xen-pci-passthrough: no host device ${d.hostaddr}`);
      if (r.owner !== `d${a.domid}`) throw new Error(`xen-pci-passthrough: ${d.hostaddr} is not assigned to d${a.domid} (${r.owner})`);
      const c = await PciCfgClient.connect(pciConfigSocket(p.rundir, d.hostaddr));
      cleanups.push(() => c.close());
      ptCfg.push(c);
      pt.push({ arg: d, bars: r.bars ?? [], gsi: hostGsiOfBus((parseBdf(d.hostaddr)! >> 8) & 0xff) });
    }
  }
  const ptAcks = new Int32Array(new SharedArrayBuffer(12));
  const ptAnswer = (seq: number, ret: number, value = 0) => {
    Atomics.store(ptAcks, 1, ret);
    Atomics.store(ptAcks, 2, value | 0);
    Atomics.store(ptAcks, 0, seq);
    Atomics.notify(ptAcks, 0);
  };
  const domctl = (cmd: number, arg: object) => hypercall(__HYPERVISOR_domctl, cmd, { domain: a.domid, ...arg });
  const servePt = async (seq: number, q: PtRequest): Promise<void> => {
    try {
      switch (q.op) {
        case 'cfg-read': return ptAnswer(seq, 0, await ptCfg[q.dev]!.read(q.offset, q.size, 1000));
        case 'cfg-write': await ptCfg[q.dev]!.write(q.offset, q.size, q.value, 1000); return ptAnswer(seq, 0);
        case 'map': {
          const r = q.kind === 'mem'
            ? await domctl(XEN_DOMCTL_memory_mapping, { first_gfn: q.guest, first_mfn: q.host, nr_mfns: q.nr, add_mapping: q.add ? 1 : 0 })
            : await domctl(XEN_DOMCTL_ioport_mapping, { first_gport: q.guest, first_mport: q.host, nr_ports: q.nr, add_mapping: q.add ? 1 : 0 });
          return ptAnswer(seq, r.ret);
        }
        case 'bind-irq': {
          const r = await domctl(XEN_DOMCTL_bind_pt_irq, { machine_irq: q.gsi, irq_type: PT_IRQ_TYPE_PCI, bus: 0, device: q.device, intx: q.intx });
          return ptAnswer(seq, r.ret);
        }
        // xen_pt_msi.c: msi_msix_setup (xc_physdev_map_pirq_msi), msi_msix_update
        // (xc_domain_update_msi_irq), msi_msix_disable (unbind, xc_physdev_unmap_pirq).
        case 'map-pirq': {
          const sbdf = parseBdf(a.pt[q.dev]!.hostaddr)!;
          const r = await hypercall<{ pirq: number }>(__HYPERVISOR_physdev_op, PHYSDEVOP_map_pirq, {
            domid: a.domid, type: MAP_PIRQ_TYPE_MSI_SEG, index: -1, pirq: -1,
            bus: (sbdf >>> 8) & 0xffffff, devfn: sbdf & 0xff, entry_nr: q.entry, table_base: q.tableBase,
          });
          return ptAnswer(seq, r.ret, r.ret < 0 ? 0 : Number(r.data?.pirq ?? -1));
        }
        case 'unmap-pirq': {
          const r = await hypercall(__HYPERVISOR_physdev_op, PHYSDEVOP_unmap_pirq, { domid: a.domid, pirq: q.pirq });
          return ptAnswer(seq, r.ret);
        }
        case 'bind-msi': {
          const r = await domctl(XEN_DOMCTL_bind_pt_irq, { machine_irq: q.pirq, irq_type: PT_IRQ_TYPE_MSI, gvec: q.gvec, gflags: q.gflags, gtable: 0 });
          return ptAnswer(seq, r.ret);
        }
        case 'unbind-msi': {
          const r = await domctl(XEN_DOMCTL_unbind_pt_irq, { machine_irq: q.pirq, irq_type: PT_IRQ_TYPE_MSI });
          return ptAnswer(seq, r.ret);
        }
      }
    } catch (e) {
      ptAnswer(seq, e instanceof PciCfgError ? e.errno : -5);
    }
  };
  const remote: RemoteDrive[] | undefined = p.disks
    ? [...p.disks].map(([index, d]) => remoteDrive(index, d.size, d.readOnly)) : undefined;
  const data: IoreqThreadData = {
    args: a, hvm: res.segment, mem: seg.mem, ramBytes, server: id, port: port2, acks: acks.buffer as SharedArrayBuffer,
    pt, ptAcks: ptAcks.buffer as SharedArrayBuffer,
    ...(remote ? { remote } : {}),
  };
  const worker = new Worker(new URL('./ioreq_thread.js', import.meta.url), { workerData: data, transferList: [port2] });
  cleanups.push(() => { send({ type: 'stop' }); void worker.terminate(); });

  p.serial?.onInput((bytes) => send({ type: 'serial-in', data: Uint8Array.from(bytes) }));
  p.nics.forEach((n, i) => n.onReceive((frame) => send({ type: 'net-in', nic: i, frame: Uint8Array.from(frame) })));

  const screens = new Map<number, (s: ScreenState) => void>();
  const states = new Map<number, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>();
  let nextScreen = 1;
  const qmpPath = qmpSocketPath(p.rundir, a.domid);
  const qmp = startQmp(qmpPath, {
    screen: () => new Promise<ScreenState>((resolve) => {
      const req = nextScreen++;
      screens.set(req, resolve);
      send({ type: 'screen', req });
    }),
    saveState: () => new Promise<Uint8Array>((resolve, reject) => {
      const req = nextScreen++;
      states.set(req, { resolve, reject });
      send({ type: 'save-state', req });
    }),
    quit: () => p.exit(0),
  }, log);
  cleanups.push(() => { qmp.close(); try { unlinkSync(qmpPath); } catch { /* gone */ } });

  const ready = new Promise<void>((resolve, reject) => {
    worker.on('error', (err) => { log(`ioreq thread failed: ${err.stack ?? err.message}`); reject(err); p.exit(1); });
    worker.on('exit', (code) => { if (code !== 0) { log(`ioreq thread exited with ${code}`); p.exit(1); } });
    worker.on('message', (m: FromIoreqThread) => {
      switch (m.type) {
        case 'claim':
          void dm(m.add ? DM.XEN_DMOP_map_io_range_to_ioreq_server : DM.XEN_DMOP_unmap_io_range_from_ioreq_server,
            { id, type: m.kind, start: m.start, end: m.end }).then((r) => {
            if (r.ret < 0) log(`${m.add ? 'map' : 'unmap'} ${m.name} 0x${m.start.toString(16)}-0x${m.end.toString(16)}: ${errnoName(r.ret)}`);
            Atomics.store(acks, 0, m.seq);
            Atomics.notify(acks, 0);
          });
          return;
        case 'pt': void servePt(m.seq, m.req); return;
        case 'blk': {
          const rd = remote?.find((r) => r.index === m.index);
          const disk = p.disks?.get(m.index);
          if (rd && disk) void serveBlockRequest(rd, disk.dev, m);
          return;
        }
        case 'serial-out': p.serial?.write(m.data); return;
        case 'net-out': p.nics[m.nic]?.send(m.frame); return;
        case 'debugcon': log(`debugcon: ${m.line}`); return;
        case 'log': log(m.line); return;
        case 'pirq-route': return;
        case 'reset':
          log('the guest reset its machine: SHUTDOWN_reboot');
          void dm(DM.XEN_DMOP_remote_shutdown, { reason: SHUTDOWN_reboot });
          return;
        case 'sleep':
          // qemu-xen: a guest's ACPI soft off is qemu_system_shutdown_request,
          // which destroy_hvm_domain turns into SHUTDOWN_poweroff.
          if (m.typ === PIIX4_SLP_TYP_S5) {
            log('the guest entered ACPI S5 (soft off): SHUTDOWN_poweroff');
            void dm(DM.XEN_DMOP_remote_shutdown, { reason: SHUTDOWN_poweroff });
          } else {
            log(`the guest asked for ACPI sleep type ${m.typ}: not emulated, ignored`);
          }
          return;
        case 'screen': screens.get(m.req)?.(m.state); screens.delete(m.req); return;
        case 'state': {
          const w = states.get(m.req);
          states.delete(m.req);
          if (m.bytes) { log(`device state saved: ${m.bytes.byteLength} bytes`); w?.resolve(m.bytes); } else w?.reject(new Error(m.error ?? 'no state'));
          return;
        }
        case 'ready': resolve(); return;
        case 'stopped': return;
      }
    });
  });
  await ready;
  check('set_ioreq_server_state', await dm(DM.XEN_DMOP_set_ioreq_server_state, { id, enabled: 1 }));
  if (p.serial?.tty) await p.xs.write(`/local/domain/${a.domid}/serial/0/tty`, p.serial.tty);
  await p.xs.write(p.statePath, 'running');
  log(`running${p.serial?.tty ? `, COM1 on ${p.serial.tty}` : ''}`);
  if (a.incoming) announceSelf(a, p, log);
}

/**
 * QEMU's qemu_announce_self after an incoming migration: each NIC sends a
 * RARP broadcast from its MAC (three, 50, 100 ms apart here), so that
 * every bridge on the way learns where the guest's MAC is now, whatever
 * its guest does.
 */
function announceSelf(a: QemuDmArgs, p: Placement, log: (m: string) => void): void {
  const frames = a.nics.map((n) => {
    const mac = Buffer.from(n.mac.split(':').map((x) => parseInt(x, 16)));
    const f = Buffer.alloc(60);
    f.fill(0xff, 0, 6);
    mac.copy(f, 6);
    f.writeUInt16BE(0x8035, 12); // ETH_P_RARP
    f.writeUInt16BE(1, 14); // ARPHRD_ETHER
    f.writeUInt16BE(0x0800, 16);
    f[18] = 6;
    f[19] = 4;
    f.writeUInt16BE(3, 20); // ARPOP_RREQUEST
    mac.copy(f, 22);
    mac.copy(f, 32);
    return f;
  });
  [0, 50, 150].forEach((ms) => setTimeout(() => frames.forEach((f, i) => p.nics[i]?.send(new Uint8Array(f))), ms).unref());
  if (frames.length) log(`announced ${frames.length} NIC${frames.length > 1 ? 's' : ''} (RARP) after the restore`);
}
