// qemu-dm: the device model of one HVM guest, a program of Domain-0 started
// by the toolstack with qemu-xen's arguments (args.ts), as libxl starts
// upstream QEMU for Xen:
//
//   1. hypercalls as Domain-0 through the host's privcmd endpoint
//   2. XEN_DMOP_create_ioreq_server for the guest; its pages and the guest's
//      RAM mapped (XENMEM_acquire_resource, the domain's segments)
//   3. the devices built on the ioreq thread (ioreq_thread.ts), each range
//      they claim routed to the server (map_io_range_to_ioreq_server), then
//      the server enabled
//   4. COM1 behind a PTY (its path at /local/domain/<id>/serial/0/tty, its
//      output also in logs/console/<name>.log); each NIC's cable to its
//      bridge's tap port; SeaBIOS's debugcon lines in this process's log
//   5. `running` at /local/domain/0/device-model/<id>/state: the toolstack
//      unpauses the guest
//
// It exits when Domain-0 (its parent) dies, on SIGTERM, and when its guest
// is destroyed (@releaseDomain).
import { Worker, MessageChannel } from 'node:worker_threads';
import { appendFileSync, mkdirSync, openSync, writeSync, closeSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { HypervisorClient } from '../../shared/xen/hypervisor.js';
import { privcmdEndpoint } from '../../shared/wire/hypercall.js';
import { tapEndpoint, tapName } from '../../shared/wire/tap.js';
import { shmOpen } from '../../shared/shm.js';
import { __HYPERVISOR_dm_op, __HYPERVISOR_domctl, __HYPERVISOR_memory_op, PAGE_SIZE } from '../../shared/abi/xen.js';
import { XEN_DOMCTL_getdomaininfo, XENEMU_DOMCTL_getsegments } from '../../shared/abi/domctl.js';
import { XENMEM_acquire_resource, XENMEM_resource_ioreq_server } from '../../shared/abi/memory.js';
import * as DM from '../../shared/abi/hvm/dm_op.js';
import { HVM_IOREQSRV_BUFIOREQ_ATOMIC } from '../../shared/abi/hvm/params.js';
import { XENEMU_HVM_SEGMENT_PAGES } from '../../shared/abi/hvm/xenemu_hvm.js';
import { SHUTDOWN_poweroff, SHUTDOWN_reboot } from '../../shared/abi/sched.js';
import { errnoName } from '../../shared/abi/errno.js';
import { XsClient } from '../../shared/xenstore/client.js';
import { ConsolePty } from '../../shared/runtime/pty.js';
import { watchParent } from '../../shared/runtime/lifeline.js';
import { setProcessTitle } from '../../shared/runtime/title.js';
import { PIIX4_SLP_TYP_S5 } from '../../shared/hw/piix4_pm.js';
import { parseQemuDmArgs, ArgError, type QemuDmArgs } from './args.js';
import { ringServer } from './ioreq_server.js';
import { qmpSocketPath, startQmp, type ScreenState } from './qmp.js';
import type { FromIoreqThread, IoreqThreadData, ToIoreqThread } from './ioreq_thread.js';

const log = (m: string) => process.stderr.write(`${new Date().toISOString()} qemu-dm: ${m}\n`);

/** The title in `ps` (docs/design.md §1). */
const qemuDmTitle = (host: string, domid: number, name?: string): string =>
  `xenemu-qemu-dm ${name ? `${name} ` : ''}domid=${domid} host=${host}`;

async function main(): Promise<void> {
  let a: QemuDmArgs;
  try {
    a = parseQemuDmArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ArgError) { process.stderr.write(`qemu-dm: ${err.message}\n`); process.exit(1); }
    throw err;
  }
  const host = process.env.XENEMU_HOST ?? '';
  const rundir = process.env.XENEMU_HOST_DIR ?? '';
  if (!host || !rundir) throw new Error('XENEMU_HOST and XENEMU_HOST_DIR must name the host (qemu-dm is started by the toolstack)');
  setProcessTitle((n) => qemuDmTitle(host, a.domid, n), a.name);
  const cleanups: Array<() => void> = [];
  const exit = (code: number) => { for (const c of cleanups.splice(0).reverse()) { try { c(); } catch { /* going */ } } process.exit(code); };
  watchParent(() => exit(0));
  process.on('SIGTERM', () => exit(0));

  const pc = HypervisorClient.privcmd(privcmdEndpoint(rundir));
  cleanups.push(() => pc.close());
  const check = <T>(what: string, r: { ret: number; data?: T }): T => {
    if (r.ret < 0) throw new Error(`${what}: ${errnoName(r.ret)}`);
    return r.data as T;
  };
  const seg = check('getsegments', await pc.hypercall<{ mem: string; mem_bytes: number; hvm?: string }>(
    __HYPERVISOR_domctl, XENEMU_DOMCTL_getsegments, { domain: a.domid }));
  if (!seg.hvm) throw new Error(`d${a.domid} is not an HVM domain`);
  const dm = (op: number, arg: object) => pc.hypercall(__HYPERVISOR_dm_op, 0, { domid: a.domid, op, ...arg });
  const { id } = check('create_ioreq_server', await dm(DM.XEN_DMOP_create_ioreq_server, { handle_bufioreq: HVM_IOREQSRV_BUFIOREQ_ATOMIC })) as { id: number };
  const res = check('acquire_resource', await pc.hypercall<{ segment: string }>(__HYPERVISOR_memory_op, XENMEM_acquire_resource,
    { domid: a.domid, type: XENMEM_resource_ioreq_server, id, frame: 0, nr_frames: 2 }));
  const hvm = shmOpen(res.segment, XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE);
  const ramBytes = Math.min(a.memoryMiB << 20, seg.mem_bytes);
  log(`d${a.domid} (${a.name}): ioreq server ${id}, ${a.memoryMiB} MiB, ${a.drives.length} drives, ${a.nics.length} NICs`);

  const xs = await XsClient.connect(join(rundir, 'xenstored.sock'));
  cleanups.push(() => xs.close());
  // The guest's death ends its device model, whoever destroyed it.
  await xs.watch('@releaseDomain', 'qemu-dm', () => {
    void pc.hypercall(__HYPERVISOR_domctl, XEN_DOMCTL_getdomaininfo, { domain: a.domid }).then((r) => { if (r.ret < 0) exit(0); });
  });

  const { port1: toThread, port2 } = new MessageChannel();
  const acks = new Int32Array(new SharedArrayBuffer(8));
  const send = (m: ToIoreqThread) => {
    toThread.postMessage(m);
    Atomics.add(acks, 1, 1);
    ringServer(hvm, id);
  };
  const data: IoreqThreadData = { args: a, hvm: res.segment, mem: seg.mem, ramBytes, server: id, port: port2, acks: acks.buffer as SharedArrayBuffer };
  const worker = new Worker(new URL('./ioreq_thread.js', import.meta.url), { workerData: data, transferList: [port2] });
  cleanups.push(() => { send({ type: 'stop' }); void worker.terminate(); });

  // COM1: a PTY, and its output logged where xenconsoled logs consoles.
  let serial: ConsolePty | null = null;
  let serialLog = -1;
  if (a.serial === 'pty') {
    serial = new ConsolePty((bytes) => send({ type: 'serial-in', data: Uint8Array.from(bytes) }));
    cleanups.push(() => serial!.close());
    mkdirSync(join(rundir, 'logs', 'console'), { recursive: true });
    serialLog = openSync(join(rundir, 'logs', 'console', `${a.name}.log`), 'a');
    cleanups.push(() => closeSync(serialLog));
  }

  const taps = a.nics.map((n, i) => {
    const sock = new zmq.Pair({ linger: 0, sendHighWaterMark: 1024, receiveHighWaterMark: 1024 });
    sock.connect(tapEndpoint(rundir, tapName(a.domid, n.devid)));
    void (async () => {
      try { for await (const [frame] of sock) if (frame) send({ type: 'net-in', nic: i, frame: Uint8Array.from(frame) }); } catch { /* closed */ }
    })();
    cleanups.push(() => sock.close());
    return sock;
  });

  const screens = new Map<number, (s: ScreenState) => void>();
  let nextScreen = 1;
  const qmp = startQmp(qmpSocketPath(rundir, a.domid), {
    screen: () => new Promise<ScreenState>((res) => {
      const req = nextScreen++;
      screens.set(req, res);
      send({ type: 'screen', req });
    }),
    quit: () => exit(0),
  }, log);
  cleanups.push(() => { qmp.close(); try { unlinkSync(qmpSocketPath(rundir, a.domid)); } catch { /* gone */ } });

  const ready = new Promise<void>((resolve, reject) => {
    worker.on('error', (err) => { log(`ioreq thread failed: ${err.stack ?? err.message}`); reject(err); exit(1); });
    worker.on('exit', (code) => { if (code !== 0) { log(`ioreq thread exited with ${code}`); exit(1); } });
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
        case 'serial-out':
          if (serial) { try { writeSync(serial.masterFd, m.data); } catch { /* no reader: the log keeps it */ } }
          if (serialLog >= 0) appendFileSync(serialLog, m.data);
          return;
        case 'net-out':
          void taps[m.nic]?.send(Buffer.from(m.frame)).catch(() => { /* the bridge's queue is full: dropped, as a tap drops */ });
          return;
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
        case 'ready': resolve(); return;
        case 'stopped': return;
      }
    });
  });
  await ready;
  check('set_ioreq_server_state', await dm(DM.XEN_DMOP_set_ioreq_server_state, { id, enabled: 1 }));
  if (serial) await xs.write(`/local/domain/${a.domid}/serial/0/tty`, serial.path);
  await xs.write(`/local/domain/0/device-model/${a.domid}/state`, 'running');
  log(`running${serial ? `, COM1 on ${serial.path}` : ''}`);
}

main().catch((err: Error) => {
  process.stderr.write(`qemu-dm: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
