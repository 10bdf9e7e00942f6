// qemu-dm as a program of Domain-0 (libxl__spawn_local_dm): hypercalls as
// Domain-0 through the host's privcmd endpoint, xenstore through the
// daemon's socket, COM1 behind a PTY of its own (its path at
// /local/domain/<id>/serial/0/tty, its output also in
// logs/console/<name>.log), each NIC's cable to its bridge's tap port, the
// guest's disks as image files, `running` at
// /local/domain/0/device-model/<id>/state.
//
// It exits when Domain-0 (its parent) dies, on SIGTERM, and when its guest
// is destroyed (@releaseDomain).
import { appendFileSync, closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { HypervisorClient } from '../../shared/xen/hypervisor.js';
import { privcmdEndpoint } from '../../shared/wire/hypercall.js';
import { tapEndpoint, tapName } from '../../shared/wire/tap.js';
import { XEN_DOMCTL_getdomaininfo } from '../../shared/abi/domctl.js';
import { __HYPERVISOR_domctl } from '../../shared/abi/xen.js';
import { XsClient } from '../../shared/xenstore/client.js';
import { ConsolePty } from '../../shared/runtime/pty.js';
import { watchParent } from '../../shared/runtime/lifeline.js';
import type { QemuDmArgs } from './args.js';
import { runDeviceModel, type NicCable, type SerialLine } from './device_model.js';

export async function runLocal(a: QemuDmArgs, rundir: string, log: (m: string) => void): Promise<void> {
  const cleanups: Array<() => void> = [];
  const exit = (code: number): never => {
    for (const c of cleanups.splice(0).reverse()) { try { c(); } catch { /* going */ } }
    process.exit(code);
  };
  watchParent(() => exit(0));
  process.on('SIGTERM', () => exit(0));

  const pc = HypervisorClient.privcmd(privcmdEndpoint(rundir));
  cleanups.push(() => pc.close());
  const xs = await XsClient.connect(join(rundir, 'xenstored.sock'));
  cleanups.push(() => xs.close());
  // The guest's death ends its device model, whoever destroyed it.
  // getdomaininfo answers the first domain at or above the id asked.
  await xs.watch('@releaseDomain', 'qemu-dm', () => {
    void pc.hypercall<{ domain: number }>(__HYPERVISOR_domctl, XEN_DOMCTL_getdomaininfo, { domain: a.domid }).then((r) => {
      if (r.ret < 0 || r.data?.domain !== a.domid) exit(0);
    });
  });

  // COM1: a PTY, and its output logged where xenconsoled logs consoles.
  let serial: SerialLine | null = null;
  if (a.serial === 'pty') {
    let input: (b: Uint8Array) => void = () => undefined;
    const pty = new ConsolePty((bytes) => input(Uint8Array.from(bytes)));
    cleanups.push(() => pty.close());
    mkdirSync(join(rundir, 'logs', 'console'), { recursive: true });
    const serialLog = openSync(join(rundir, 'logs', 'console', `${a.name}.log`), 'a');
    cleanups.push(() => closeSync(serialLog));
    serial = {
      tty: pty.path,
      onInput: (fn) => { input = fn; },
      write: (data) => {
        try { writeSync(pty.masterFd, data); } catch { /* no reader: the log keeps it */ }
        appendFileSync(serialLog, data);
      },
    };
  }

  const nics: NicCable[] = a.nics.map((n) => {
    const sock = new zmq.Pair({ linger: 0, sendHighWaterMark: 1024, receiveHighWaterMark: 1024 });
    sock.connect(tapEndpoint(rundir, tapName(a.domid, n.devid)));
    let receive: (f: Uint8Array) => void = () => undefined;
    void (async () => {
      try { for await (const [frame] of sock) if (frame) receive(frame); } catch { /* closed */ }
    })();
    cleanups.push(() => sock.close());
    return {
      onReceive: (fn) => { receive = fn; },
      send: (frame) => void sock.send(Buffer.from(frame)).catch(() => { /* the bridge's queue is full: dropped, as a tap drops */ }),
    };
  });

  await runDeviceModel(a, {
    hypercall: (op, cmd, arg) => pc.hypercall(op, cmd, arg),
    xs, rundir, statePath: `/local/domain/0/device-model/${a.domid}/state`, serial, nics, log, exit, cleanups,
  });
}
