// qemu-dm's ioreq thread: owns every device of the guest's PC and answers
// its vCPU's ioreqs, synchronously, as QEMU's main loop does for Xen
// (xen-hvm.c). It sleeps on its server's doorbell in the HVM segment, which
// the vCPU rings with a request and qemu-dm's main thread rings with input
// (serial keystrokes, network frames) it queued on this thread's port.
//
//   main thread                          ioreq thread (this)
//   PTY, tap sockets, xenstore,   <──>   devices (shared/hw), timers,
//   privcmd (dm_op, range claims)        IoreqServerPages (the pages)
//
// A device claiming or moving a range (a BAR the guest programmed) must be
// routed to this server before the guest's next access, as QEMU's memory
// listener does with a hypercall: the claim goes to the main thread, which
// makes the dm_op, and this thread waits for it (a few hundred µs, a few
// times per boot).
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { shmOpen } from '../../shared/shm.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import { IOREQ_READ } from '../../shared/abi/hvm/ioreq.js';
import { XEN_DMOP_IO_RANGE_MEMORY, XEN_DMOP_IO_RANGE_PCI, XEN_DMOP_IO_RANGE_PORT, XEN_DMOP_PCI_SBDF } from '../../shared/abi/hvm/dm_op.js';
import { XENEMU_HVM_SEGMENT_PAGES } from '../../shared/abi/hvm/xenemu_hvm.js';
import { HvmIrqLines } from '../../shared/xen/hvm_ctl.js';
import { FileBlockBackend } from '../../shared/hw/block.js';
import type { AccessSize } from '../../shared/hw/machine.js';
import type { AddressSpaceListener } from '../../shared/hw/iospace.js';
import { IoreqServerPages } from './ioreq_server.js';
import { RemoteBlockBackend, type BlockRequest, type RemoteDrive } from './block_proxy.js';
import { DmGuestMemory } from './guest_memory.js';
import { TimerClock } from './clock.js';
import { buildDmMachine } from './machine.js';
import type { PtArg, QemuDmArgs } from './args.js';
import type { ScreenState } from './qmp.js';
import { XenPtDevice, type PtHostBar } from './xen_pt.js';
import { loadDmState, saveDmState } from './dm_state.js';

export interface IoreqThreadData {
  args: QemuDmArgs;
  hvm: string;
  mem: string;
  ramBytes: number;
  server: number;
  /** Messages from the main thread (ToIoreqThread), read with receiveMessageOnPort. */
  port: MessagePort;
  /** Word 0: the last claim the main thread has made; word 1: messages it posted on `port`. */
  acks: SharedArrayBuffer;
  /** In a stub domain: the drives, by IDE index, that the main thread's blkfront serves (block_proxy.ts). */
  remote?: RemoteDrive[];
  /** Host devices passed through (xen_pt.ts): the argument, the BARs where the host placed them, the GSI. */
  pt: Array<{ arg: PtArg; bars: PtHostBar[]; gsi: number }>;
  /** The main thread's answers to `pt` requests: word 0 the last seq answered, 1 its result, 2 its value. */
  ptAcks: SharedArrayBuffer;
}

/** What xen_pt asks of the main thread (the device's socket, the hypervisor), synchronously. */
export type PtRequest =
  | { op: 'cfg-read'; dev: number; offset: number; size: AccessSize }
  | { op: 'cfg-write'; dev: number; offset: number; size: AccessSize; value: number }
  | { op: 'map'; kind: 'mem' | 'io'; add: boolean; guest: number; host: number; nr: number }
  | { op: 'bind-irq'; gsi: number; device: number; intx: number }
  | { op: 'map-pirq'; dev: number; entry: number; tableBase: number }
  | { op: 'unmap-pirq'; pirq: number }
  | { op: 'bind-msi'; pirq: number; gvec: number; gflags: number }
  | { op: 'unbind-msi'; pirq: number };

export type ToIoreqThread =
  | { type: 'serial-in'; data: Uint8Array }
  | { type: 'net-in'; nic: number; frame: Uint8Array }
  | { type: 'screen'; req: number }
  /** QMP xen-save-devices-state: the devices' state, answered as 'state'. */
  | { type: 'save-state'; req: number }
  | { type: 'stop' };

export type FromIoreqThread =
  | { type: 'claim'; seq: number; add: boolean; kind: number; start: number; end: number; name: string }
  | { type: 'serial-out'; data: Uint8Array }
  | { type: 'net-out'; nic: number; frame: Uint8Array }
  | { type: 'debugcon'; line: string }
  | { type: 'log'; line: string }
  | { type: 'pirq-route'; link: number; irq: number }
  | { type: 'reset' }
  | { type: 'sleep'; typ: number }
  | { type: 'screen'; req: number; state: ScreenState }
  | { type: 'pt'; seq: number; req: PtRequest }
  | { type: 'state'; req: number; bytes: Uint8Array | null; error?: string }
  | { type: 'ready'; stats?: undefined }
  | { type: 'stopped'; stats: { sync: number; buffered: number; rep: number; bad: number } }
  | BlockRequest;

const d = workerData as IoreqThreadData;
const post = (m: FromIoreqThread) => parentPort!.postMessage(m);
const acks = new Int32Array(d.acks);
let seq = 0;

/** A claim the hypervisor must know before the guest's next access: wait for the main thread's dm_op. */
function claim(add: boolean, kind: number, start: number, end: number, name: string): void {
  const s = ++seq;
  post({ type: 'claim', seq: s, add, kind, start, end, name });
  while (Atomics.load(acks, 0) < s) Atomics.wait(acks, 0, Atomics.load(acks, 0), 1000);
}

const listener = (kind: number): AddressSpaceListener => ({
  added: (base, length, name) => claim(true, kind, base, base + length - 1, name),
  removed: (base, length, name) => claim(false, kind, base, base + length - 1, name),
});

const hvm = shmOpen(d.hvm, XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE);
const mem = new DmGuestMemory(shmOpen(d.mem, d.ramBytes), d.ramBytes, hvm);
const irq = new HvmIrqLines(hvm);
const clock = new TimerClock();
const serialIn: Array<(b: Uint8Array) => void> = [];
const netIn = new Map<number, (f: Uint8Array) => void>();
const drives: FileBlockBackend[] = [];
const remoteDrives: RemoteBlockBackend[] = [];

const dm = buildDmMachine(d.args, { mem, irq, clock }, {
  drive: (index) => {
    const a = d.args.drives.find((x) => x.index === index);
    if (!a || !a.file) return null;
    const remote = d.remote?.find((r) => r.index === index);
    if (d.remote) {
      if (!remote) return null;
      const rb = new RemoteBlockBackend(remote, post);
      remoteDrives.push(rb);
      return rb;
    }
    const b = new FileBlockBackend(a.file, a.readOnly);
    drives.push(b);
    return b;
  },
  serial: d.args.serial === 'pty' ? {
    write: (bytes) => post({ type: 'serial-out', data: Uint8Array.from(bytes) }),
    onInput: (fn) => { serialIn.push(fn); },
  } : null,
  nic: (n) => ({
    send: (frame) => post({ type: 'net-out', nic: n, frame: Uint8Array.from(frame) }),
    onReceive: (fn) => { netIn.set(n, fn); },
  }),
  debugcon: (line) => post({ type: 'debugcon', line }),
}, {
  // PIIX3's PIRQ registers: qemu-xen calls xen_set_pci_link_route; the segment takes it directly.
  onPirqRoute: (link, isaIrq) => { irq.setPciLinkRoute(link, isaIrq); post({ type: 'pirq-route', link, irq: isaIrq }); },
  onReset: () => post({ type: 'reset' }),
  onSleep: (typ) => post({ type: 'sleep', typ }),
  log: (line) => post({ type: 'log', line }),
}, { ports: listener(XEN_DMOP_IO_RANGE_PORT), mmio: listener(XEN_DMOP_IO_RANGE_MEMORY) });

// Host devices passed through, after the board and the -device's (libxl adds
// them by QMP once the machine is up: the next free slots), or in the slot asked.
const ptAcks = new Int32Array(d.ptAcks);
let ptSeq = 0;
function ptCall(req: PtRequest): { ret: number; value: number } {
  const s = ++ptSeq;
  post({ type: 'pt', seq: s, req });
  while (Atomics.load(ptAcks, 0) < s) Atomics.wait(ptAcks, 0, Atomics.load(ptAcks, 0), 1000);
  return { ret: Atomics.load(ptAcks, 1), value: Atomics.load(ptAcks, 2) >>> 0 };
}
const ptDevices: XenPtDevice[] = [];
d.pt.forEach((p, i) => {
  const log = (line: string) => post({ type: 'log', line });
  const dev = new XenPtDevice(p.arg.hostaddr, {
    read: (offset, size) => { const r = ptCall({ op: 'cfg-read', dev: i, offset, size }); return r.ret < 0 ? null : r.value; },
    write: (offset, size, value) => ptCall({ op: 'cfg-write', dev: i, offset, size, value }).ret >= 0,
  }, p.bars, {
    map: (kind, add, guest, host, nr) => ptCall({ op: 'map', kind, add, guest, host, nr }).ret,
    mapPirq: (entry, tableBase) => { const r = ptCall({ op: 'map-pirq', dev: i, entry, tableBase }); return r.ret < 0 ? r.ret : r.value; },
    unmapPirq: (pirq) => ptCall({ op: 'unmap-pirq', pirq }).ret,
    bindMsi: (pirq, gvec, gflags) => ptCall(gvec === null ? { op: 'unbind-msi', pirq } : { op: 'bind-msi', pirq, gvec, gflags }).ret,
    log,
  }, p.arg.permissive);
  const slot = p.arg.slot ?? dm.pc.freeSlot();
  dm.pc.bus.plug(dev, slot);
  ptDevices.push(dev);
  // xen_pt_realize: the machine INTx to the pin this slot shows (pt_irq_create_bind, PT_IRQ_TYPE_PCI).
  if (dev.pin) {
    const r = ptCall({ op: 'bind-irq', gsi: p.gsi, device: slot, intx: dev.pin - 1 });
    log(`xen_pt ${p.arg.hostaddr}: 00:${slot.toString(16).padStart(2, '0')}.0, INT${'ABCD'[dev.pin - 1]} bound to machine GSI ${p.gsi}` +
        `${r.ret < 0 ? ` FAILED (${r.ret})` : ''}`);
  }
});
/** What a device state leaves out: the process's own memory, lines, clock, spaces and disk back ends. */
const notState = (): Set<object> => new Set<object>([mem, irq, clock, dm.ports, dm.mmio, dm.machine, dm.pc.bus, ...drives, ...remoteDrives]);

// Every PCI function is this server's, by SBDF (xen_map_pcidev).
for (const f of dm.pc.bus.functions()) {
  const sbdf = XEN_DMOP_PCI_SBDF(0, 0, f.device, f.fn);
  claim(true, XEN_DMOP_IO_RANGE_PCI, sbdf, sbdf, `pci 00:${f.device.toString(16).padStart(2, '0')}.${f.fn} ${f.name}`);
}

const MASKS = [0, 0xff, 0xffff, 0, 0xffffffff] as const;
const TRACE = process.env.XENEMU_QEMU_TRACE === '1';
const trace = (m: string) => { if (TRACE) post({ type: 'log', line: m }); };
const server = new IoreqServerPages(hvm, d.server, 1, {
  pio: (dir, port, size, value) => {
    for (const p of ptDevices) p.sawIoreq('io', port);
    if (port !== 0x402) trace(`pio ${dir ? 'r' : 'w'} ${port.toString(16)} ${size} ${value.toString(16)}`);
    if (dir === IOREQ_READ) return dm.ports.read(port, size) & MASKS[size];
    dm.ports.write(port, size, value);
    return 0;
  },
  pioBlock: (port, size, count, dst, at, step) => {
    if (TRACE) trace(`pio rep r ${port.toString(16)} ${size} x${count}`);
    dm.ports.readBlock(port, size, count, dst, at, step);
  },
  mmio: (dir, addr, size, value) => {
    for (const p of ptDevices) p.sawIoreq('mem', addr);
    trace(`mmio ${dir ? "r" : "w"} ${addr.toString(16)} ${size} ${value.toString(16)}`);
    if (dir === IOREQ_READ) return dm.mmio.read(addr, size) >>> 0;
    dm.mmio.write(addr, size, value);
    return 0;
  },
  pciConfig: (dir, sbdf, reg, size: AccessSize, value) => {
    trace(`pcicfg ${dir ? 'r' : 'w'} ${sbdf.toString(16)} ${reg.toString(16)} ${size} ${value.toString(16)}`);
    const devfn = sbdf & 0xff;
    if ((sbdf >>> 8) !== 0) return dir === IOREQ_READ ? MASKS[size] : 0; // bus 0 only
    if (dir === IOREQ_READ) return dm.pc.bus.configRead(devfn, reg, size) >>> 0;
    dm.pc.bus.configWrite(devfn, reg, size, value);
    return 0;
  },
}, mem, (line) => post({ type: 'log', line }));

// A restored guest (-incoming): its devices as they were saved, before its vCPU runs again.
if (d.args.incoming) {
  loadDmState(dm, notState(), new Uint8Array(readFileSync(d.args.incoming)), (line) => post({ type: 'log', line }));
  post({ type: 'log', line: `restored the device state of ${d.args.incoming}` });
}

post({ type: 'ready' });

function screen(): ScreenState {
  const vga = dm.vga?.vga;
  if (!vga) return { text: null, width: 0, height: 0, rgba: new Uint8Array(0), mode: 'none' };
  const t = vga.textScreen();
  const shot = vga.screenshot();
  return {
    text: t ? { cols: t.cols, rows: t.rows, lines: t.lines, cursor: t.cursor } : null,
    width: shot.width, height: shot.height, rgba: shot.rgba, mode: shot.mode,
  };
}

let stopping = false;
let hostSeen = 0;
function drainHost(): void {
  hostSeen = Atomics.load(acks, 1);
  for (;;) {
    const m = receiveMessageOnPort(d.port)?.message as ToIoreqThread | undefined;
    if (!m) return;
    if (m.type === 'serial-in') for (const fn of serialIn) fn(m.data);
    else if (m.type === 'net-in') netIn.get(m.nic)?.(m.frame);
    else if (m.type === 'screen') post({ type: 'screen', req: m.req, state: screen() });
    else if (m.type === 'save-state') {
      // Transmit kicks and other timers that are due first: their handles are not carried.
      clock.run();
      try {
        post({ type: 'state', req: m.req, bytes: saveDmState(dm, notState()) });
      } catch (err) {
        post({ type: 'state', req: m.req, bytes: null, error: (err as Error).message });
      }
    }
    else if (m.type === 'stop') stopping = true;
  }
}

while (!stopping) {
  drainHost();
  const next = clock.run();
  if (server.serve() > 0) continue;
  server.wait(next < 0 ? 1000 : Math.min(next, 1000), () => Atomics.load(acks, 1) !== hostSeen);
}
for (const b of drives) b.close();
for (const p of ptDevices) p.unmapAll();
post({ type: 'stopped', stats: server.stats });
