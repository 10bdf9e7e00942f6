// qemu-dm as a stub domain (Xen's docs/misc/stubdom.txt, libxl__spawn_stub_dm):
// the device model is the program of a PV domain `<guest>-dm` of its own,
// started by the hypervisor like any guest's kernel, with its own domid and
// hypercall channel. It is privileged over its one target
// (XEN_DOMCTL_set_target, XS_SET_TARGET) and over nothing else; its I/O goes
// through PV front ends to Domain-0's back ends, as a guest's does:
//
//   start_info        console ring, xenstore ring (as a PV kernel boots)
//   target            /local/domain/<self>/target
//   arguments         <guest's /vm path>/image/dm-argv (ESC-separated, libxl's
//                     linux stub domain way), else image/dmargs (spaces)
//   disks             -drive file=/dev/xvdX: the stub's vbd xvdX, blkfront
//                     to blkback (the ioreq thread waits on block_proxy.ts)
//   NICs              -device e1000,id=nic<n>: the stub's vif <n>, netfront
//                     to netback and the bridge
//   COM1              the stub's console: xenconsoled's PTY, `xl console <guest>`
//   its log           logs/qemu-dm-<guest>.log, where libxl puts the stub's log console
//   running           /local/domain/<self>/device-model/<guest>/state
//
// It ends (SCHEDOP_shutdown poweroff) when its target's xenstore home goes,
// so a stub domain never outlives its guest; the toolstack destroys it.
import { appendFileSync } from 'node:fs';
import { startDomain, type XenDomain } from '../../shared/xen/index.js';
import { XEN_START_INFO_MAGIC, PAGE_SIZE, type StartInfo } from '../../shared/abi/xen.js';
import { SHUTDOWN_crash, SHUTDOWN_poweroff } from '../../shared/abi/sched.js';
import { deviceModelLogFile } from '../../shared/host.js';
import { ConsoleFrontend } from '../../shared/front/console.js';
import { connectXenbus } from '../../shared/front/xenbus.js';
import { Blkfront } from '../../shared/front/blkfront.js';
import { NetFront } from '../../shared/front/netfront.js';
import type { PageReserve } from '../../shared/front/netdev.js';
import type { XsClient } from '../../shared/xenstore/client.js';
import { domUTitle, setProcessTitle } from '../../shared/runtime/title.js';
import { parseQemuDmArgs, type QemuDmArgs } from './args.js';
import { runDeviceModel, type NicCable } from './device_model.js';
import type { BlockDevice } from './block_proxy.js';

/** The flag the toolstack passes (createdomain's program arguments). */
export const STUBDOM_FLAG = '--stubdom';
/** How long the stub waits for its back ends (blkback, netback) to answer. */
const FRONTEND_TIMEOUT_MS = 10_000;

/** Frames above the rings start_info names, handed out once (the stub never balloons). */
class BumpReserve implements PageReserve {
  constructor(private next: number, private readonly end: number) {}
  reserve(n: number): number {
    if (this.next + n > this.end) return -1;
    const b = this.next;
    this.next += n;
    return b;
  }
}

/** libxl 4.17's dm-argv joins arguments with ESC; the older dmargs with spaces. */
async function readDmArgs(xs: XsClient, target: number): Promise<string[]> {
  const vm = await xs.tryRead(`/local/domain/${target}/vm`);
  if (!vm) throw new Error(`d${target} has no /vm path`);
  const argv = await xs.tryRead(`${vm}/image/dm-argv`);
  if (argv !== null) return argv.split('\x1b').filter((s) => s !== '');
  const old = await xs.tryRead(`${vm}/image/dmargs`);
  if (old === null) throw new Error(`${vm}/image: no dm-argv or dmargs`);
  return old.split(' ').filter((s) => s !== '');
}

async function connectDisks(dom: XenDomain, xs: XsClient, reserve: PageReserve, a: QemuDmArgs, log: (m: string) => void):
    Promise<Map<number, { dev: BlockDevice; size: number; readOnly: boolean }>> {
  const home = `/local/domain/${dom.domid}/device/vbd`;
  const ids = (await xs.directory(home).catch(() => [] as string[])).filter((d) => /^\d+$/.test(d)).map(Number);
  const fronts = await Promise.all(ids.map(async (devid) => {
    const f = new Blkfront({ dom, xs, log, reservePages: (n) => reserve.reserve(n) }, devid, `${home}/${devid}`);
    await f.connect(FRONTEND_TIMEOUT_MS);
    return f;
  }));
  const disks = new Map<number, { dev: BlockDevice; size: number; readOnly: boolean }>();
  for (const d of a.drives) {
    if (!d.file) continue;
    const name = /^\/dev\/([a-z]+)$/.exec(d.file)?.[1];
    const f = fronts.find((x) => x.name === name);
    if (!f) throw new Error(`drive ${d.index}: ${d.file} is not a vbd of this stub domain (it has ${fronts.map((x) => x.name).join(', ') || 'none'})`);
    disks.set(d.index, { dev: f, size: f.sectors * 512, readOnly: f.readonly || d.readOnly });
  }
  return disks;
}

async function connectNics(dom: XenDomain, xs: XsClient, reserve: PageReserve, a: QemuDmArgs, log: (m: string) => void): Promise<NicCable[]> {
  return Promise.all(a.nics.map(async (n) => {
    const nf = new NetFront(dom, xs, reserve, n.devid, log);
    await nf.connect(FRONTEND_TIMEOUT_MS);
    return {
      // A full ring drops the frame, as a NIC's queue does; the guest's TCP resends.
      send: (frame: Uint8Array) => { nf.transmit(frame); },
      onReceive: (fn: (f: Uint8Array) => void) => nf.onReceive(fn),
    };
  }));
}

/** The domain's start: its channel, start_info, console and xenstore rings (as a PV kernel boots). */
export async function bootStubdom(): Promise<{ dom: XenDomain; si: StartInfo; console: ConsoleFrontend; xs: XsClient }> {
  const dom = await startDomain();
  const si = dom.startInfo();
  if (!si || si.magic !== XEN_START_INFO_MAGIC) {
    dom.log('qemu-dm stub domain: no valid start_info; halting');
    return dom.shutdown(SHUTDOWN_crash, 1);
  }
  const console = new ConsoleFrontend(dom.memory.page(si.console_mfn), dom.evtchn, si.console_evtchn);
  const xs = connectXenbus(dom, si.store_mfn, si.store_evtchn);
  return { dom, si, console, xs };
}

/** Runs the device model in the stub domain `booted` (bootStubdom's), started by the hypervisor. */
export async function runStubdom(booted?: Awaited<ReturnType<typeof bootStubdom>>): Promise<void> {
  const { dom, si, console, xs } = booted ?? await bootStubdom();
  const name = await xs.tryRead('name').catch(() => null);
  if (name) setProcessTitle((n) => domUTitle(dom.host, dom.domid, n), name);
  let logFile = '';
  const log = (m: string) => {
    const line = `${new Date().toISOString()} qemu-dm[stubdom d${dom.domid}]: ${m}\n`;
    process.stderr.write(line);
    if (logFile) { try { appendFileSync(logFile, line); } catch { /* the run directory is going */ } }
  };
  let ending = false;
  const cleanups: Array<() => void> = [];
  const exit = (code: number): never => {
    for (const c of cleanups.splice(0).reverse()) { try { c(); } catch { /* going */ } }
    if (!ending) {
      ending = true;
      void console.drain(500).then(() => dom.shutdown(code === 0 ? SHUTDOWN_poweroff : SHUTDOWN_crash, code));
    }
    // The hypervisor ends this process once the shutdown is recorded.
    return undefined as never;
  };
  process.on('SIGTERM', () => exit(0));

  const target = Number(await xs.read(`/local/domain/${dom.domid}/target`));
  if (!Number.isInteger(target) || target <= 0) throw new Error(`no target at /local/domain/${dom.domid}/target`);
  const a = parseQemuDmArgs(await readDmArgs(xs, target));
  if (a.domid !== target) throw new Error(`the arguments name d${a.domid}, the target is d${target}`);
  logFile = deviceModelLogFile(dom.rundir, a.name);
  log(`stub domain of d${target} (${a.name}): ${a.drives.length} drives, ${a.nics.length} NICs`);

  // A stub domain never outlives its target: its home going is the sign.
  await xs.watch(`/local/domain/${target}`, 'stubdom-target', () => {
    void xs.tryRead(`/local/domain/${target}/domid`).catch(() => null).then((v) => {
      if (v === null) { log(`d${target} is gone: ending`); exit(0); }
    });
  });

  const firstFree = Math.max(Math.floor(dom.hello.start_info / PAGE_SIZE), si.store_mfn, si.console_mfn) + 1;
  const reserve = new BumpReserve(firstFree, si.nr_pages);
  const disks = await connectDisks(dom, xs, reserve, a, log);
  const nics = await connectNics(dom, xs, reserve, a, log);

  await runDeviceModel(a, {
    hypercall: (op, cmd, arg) => dom.hv.hypercall(op, cmd, arg),
    xs, rundir: dom.rundir, statePath: `/local/domain/${dom.domid}/device-model/${target}/state`,
    serial: a.serial === 'pty' ? {
      write: (bytes) => console.writeBytes(Buffer.from(bytes)),
      onInput: (fn) => console.onInput(fn),
    } : null,
    nics, disks, log, exit, cleanups,
  });
}
