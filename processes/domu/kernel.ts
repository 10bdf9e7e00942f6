// The PV guest kernel's boot, in the order of Mini-OS's start_kernel and
// Linux's xen_start_kernel:
//
//   start_info (written by Dom0's builder, address from setvcpucontext)
//     -> console frontend on start_info.console.domU.{mfn,evtchn}
//     -> boot banner
//     -> xenbus on start_info.store_{mfn,evtchn}; read our name (the process's
//        title in `ps` follows it, renames included)
//     -> balloon (memory/target), vCPU hotplug (cpu/), control/shutdown watches
//     -> control/feature-* advertised
//     -> shell prompt
import { XEN_START_INFO_MAGIC, type StartInfo, PAGE_SIZE } from '../../shared/abi/xen.js';
import { SUSPEND_RECORD_PAGES, clearSuspendRecord, readSuspendRecord, writeSuspendRecord } from './suspend.js';
import { memCommands, setMemAccess } from './commands/mem.js';
import { domUTitle, setProcessTitle } from '../../shared/runtime/title.js';
import { SCHEDOP_shutdown, SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend } from '../../shared/abi/sched.js';
import type { XenDomain } from '../../shared/xen/index.js';
import type { XsClient } from '../../shared/xenstore/client.js';
import { ConsoleFrontend } from '../../shared/front/console.js';
import { connectXenbus } from '../../shared/front/xenbus.js';
import { KernelLog } from './printk.js';
import { Balloon } from './balloon.js';
import { startVcpus, type Vcpus } from './cpu.js';
import { Shell } from './shell.js';
import { systemCommands } from './commands/system.js';
import { xenstoreCommands } from './commands/xenstore.js';
import { watchShutdown } from './control.js';
import { startBlockDevices } from './drivers/blk_boot.js';
import { NetInterfaces } from './net/interfaces.js';
import { netCommands } from './commands/net.js';
import { pciCommands } from './commands/pci.js';
import { startPcifront, type Pcifront } from './drivers/pcifront.js';
import { pciNvmeDisks } from './drivers/pci_nvme.js';
import { pciNics } from './drivers/pci_net.js';
import type { KernelServices } from './services.js';

export const KERNEL_BANNER = 'Xen Minimal OS (xenemu)';

const hex = (n: number) => `0x${n.toString(16)}`;

function bannerLines(si: StartInfo, siAddr: number): string {
  return `${KERNEL_BANNER}!\n` +
    `  start_info: ${hex(siAddr)}(PA)\n` +
    `    nr_pages: ${hex(si.nr_pages)}\n` +
    `  shared_inf: (own frame)\n` +
    `   store_mfn: ${hex(si.store_mfn)} evtchn ${si.store_evtchn}\n` +
    ` console_mfn: ${hex(si.console_mfn)} evtchn ${si.console_evtchn}\n` +
    `   mod_start: ${hex(si.mod_start)}\n` +
    `     mod_len: ${si.mod_len}\n` +
    `       flags: ${hex(si.flags)}\n` +
    `    cmd_line: ${si.cmd_line}\n`;
}

export interface Kernel extends KernelServices {
  console: ConsoleFrontend;
  shell: Shell;
}

/** Counts cpu/<n>/availability = online (Linux cpu_hotplug.c vcpu_online). */
async function onlineVcpus(xs: XsClient, max: number): Promise<number> {
  let n = 0;
  for (let i = 0; i < max; i++) if ((await xs.tryRead(`cpu/${i}/availability`).catch(() => null)) === 'online') n++;
  return Math.max(1, n);
}

export async function bootKernel(dom: XenDomain): Promise<Kernel> {
  const si = dom.startInfo();
  const maxPfns = dom.memory.nrFrames;
  const valid = (pfn: number) => Number.isInteger(pfn) && pfn > 0 && pfn < maxPfns;
  if (!si || si.magic !== XEN_START_INFO_MAGIC || !valid(si.console_mfn) || !valid(si.store_mfn)) {
    // Nothing to print on but the hypervisor's console: Mini-OS's early panic.
    dom.log(`${KERNEL_BANNER}: no valid start_info (magic '${si?.magic ?? ''}'); halting`);
    await dom.shutdown(SHUTDOWN_crash, 1);
  }
  const start = si!;
  const console = new ConsoleFrontend(dom.memory.page(start.console_mfn), dom.evtchn, start.console_evtchn);
  // The first frames above the rings hold a suspend record only when this
  // domain's pages were restored from a saved guest (suspend.ts).
  const floor = Math.max(Math.floor(dom.hello.start_info / PAGE_SIZE), start.store_mfn, start.console_mfn) + 1;
  const resumed = readSuspendRecord(dom.memory, floor);
  const klog = new KernelLog((t) => console.write(t), resumed ? { uptimeS: resumed.uptimeS, lines: resumed.klog } : undefined);
  if (resumed) {
    klog.printk(`xen:manage: resuming from a saved image as domid ${dom.domid} (up ${resumed.uptimeS.toFixed(1)} s)`, true);
  } else {
    klog.raw(bannerLines(start, dom.hello.start_info));
    klog.printk(`Linux version xenemu-pv (root@xenemu) #1 SMP x86_64`);
    klog.printk(`Booting paravirtualized kernel on Xen (domid ${dom.domid})`);
    klog.printk(`Command line: ${start.cmd_line}`);
  }

  const xs = connectXenbus(dom, start.store_mfn, start.store_evtchn);
  const hostname = (await xs.tryRead('name')) ?? `domU-${dom.domid}`;
  const title = (name: string) => setProcessTitle((n) => domUTitle(dom.host, dom.domid, n), name);
  title(hostname);
  klog.printk(`xenbus: connected to xenstored (ring pfn ${hex(start.store_mfn)}, port ${start.store_evtchn}), home /local/domain/${dom.domid}`);

  const balloon = new Balloon(dom.hv, maxPfns, start.nr_pages, floor, (m) => klog.printk(m));
  // The suspend record's pages: the first reservation, so every boot finds them at `floor`.
  const recordPfn = balloon.reserve(SUSPEND_RECORD_PAGES);
  if (recordPfn !== floor) throw new Error(`the suspend record's pages are not at pfn ${floor}`);
  if (resumed) clearSuspendRecord(dom.memory, recordPfn);
  klog.printk(`Memory: ${balloon.pages * 4}K/${maxPfns * 4}K available (${floor * 4}K kernel code and rings reserved)`);

  const vcpus: Vcpus = await startVcpus(dom, await onlineVcpus(xs, dom.hello.max_vcpus), (m) => klog.printk(m));
  klog.printk(`smp: Brought up 1 node, ${vcpus.online} CPU${vcpus.online === 1 ? '' : 's'} (${dom.hello.max_vcpus} possible)`);
  klog.printk(`hvc0: console ring pfn ${hex(start.console_mfn)}, event channel ${start.console_evtchn}`);

  let down = false;
  const k: Kernel = {
    domid: dom.domid, hostname, startInfo: start, xs, balloon, vcpus, klog, bootTime: Date.now() - klog.uptime() * 1000,
    console, shell: undefined as unknown as Shell, mem: resumed?.mem ?? null,
    async shutdown(reason: number): Promise<void> {
      if (down) return;
      down = true;
      klog.toConsole = true;
      if (reason === SHUTDOWN_poweroff) klog.printk('reboot: Power down');
      else if (reason === SHUTDOWN_reboot) klog.printk('reboot: Restarting system');
      await console.drain(1000);
      // Bounded: a pool stuck waiting for a slice must not keep the domain up.
      await Promise.race([vcpus.close().catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
      await dom.shutdown(reason);
    },
  };

  // xenbus watches fire once when set: each handler sees the current value.
  await xs.watch('memory/target', 'balloon', () => {
    void xs.tryRead('memory/target').then((v) => {
      if (v !== null) return balloon.setTargetKb(Number(v));
    }).catch((e: Error) => klog.printk(`xen:balloon: ${e.message}`));
  });
  klog.printk('xen:balloon: Initialising balloon driver');
  // One hot-plug at a time: a second change waits for the first to finish.
  let hotplug: Promise<void> = Promise.resolve();
  await xs.watch('cpu', 'cpu-hotplug', () => {
    hotplug = hotplug.then(() => onlineVcpus(xs, dom.hello.max_vcpus)).then((n) => {
      if (n === vcpus.online) return;
      return vcpus.setOnline(n).then(() => klog.printk(`cpu: ${vcpus.online} vCPU${vcpus.online === 1 ? '' : 's'} online`));
    }).catch((e: Error) => klog.printk(`cpu: hotplug failed: ${e.message}`));
  });
  // The toolstack renames a domain in xenstore (xl rename, on_crash =
  // "rename-restart"): `ps` and `pgrep -f <name>` follow. The shell's host
  // name stays as booted, as a Linux guest's does.
  await xs.watch('name', 'proctitle', () => {
    void xs.tryRead('name').then((n) => { if (n) title(n); }).catch(() => undefined);
  });
  let suspending = false;
  /** control/shutdown = suspend: quiesce, the record into our pages, SCHEDOP_shutdown(suspend). */
  const suspend = async (): Promise<void> => {
    if (suspending || down) return;
    suspending = true;
    try {
      klog.printk('xen:manage: suspending (xl save or migration)', true);
      // Freeze: a running command would go on writing after the record is taken.
      await k.shell.interrupt();
      await Promise.all([...blk.devices.devices.values()].map((d) => d.quiesce()));
      await console.drain(1000);
      writeSuspendRecord(dom.memory, recordPfn, {
        hostname, uptimeS: klog.uptime(), klog: klog.dmesg(), net: net.addresses(), mem: k.mem ?? null, vcpus: vcpus.online,
      });
      // Returns only if the toolstack resumes this domain in place (xl save -c): 1, "cancelled".
      const r = await dom.hv.sched_op(SCHEDOP_shutdown, { reason: SHUTDOWN_suspend });
      clearSuspendRecord(dom.memory, recordPfn);
      klog.printk(`xen:manage: resumed in place (SCHEDOP_shutdown returned ${r.ret})`, true);
    } finally {
      suspending = false;
    }
  };
  await watchShutdown(xs, klog, (reason) => void (reason === SHUTDOWN_suspend ? suspend() : k.shutdown(reason)));
  for (const f of ['feature-poweroff', 'feature-reboot', 'feature-suspend']) await xs.write(`control/${f}`, '1').catch(() => undefined);
  klog.printk('xen_manage: shutdown watch registered (poweroff, halt, reboot)');

  const net = new NetInterfaces(resumed?.net);
  k.net = net;
  await net.start(dom, xs, balloon, (m) => klog.printk(m)).catch((e: Error) => klog.printk(`netfront: ${e.message}`));

  const blk = await startBlockDevices(dom, xs, balloon, klog);
  // PCI devices passed through (xl.cfg pci=): pcifront, when the toolstack gave us a bus;
  // an NVMe function's namespace joins the disks (nvme<N>n1), an e1000 the interfaces (eth<N>).
  const nvmeDisks = pciNvmeDisks(blk.devices, (m) => klog.printk(m));
  const nics = pciNics(net, (m) => klog.printk(m));
  let pcifront: Pcifront | null = null;
  let pciStarting: Promise<void> | null = null;
  const startPci = (): Promise<void> => {
    pciStarting ??= startPcifront({ dom, xs, reservePages: (n) => balloon.reserve(n), log: (m) => klog.printk(m), noMsi: /(^|\s)pci=nomsi(\s|$)/.test(start.cmd_line) })
      .then((f) => {
        if (!f) return;
        pcifront = f;
        k.pci = f;
        f.onGone = () => { if (pcifront === f) { pcifront = null; k.pci = undefined; } };
        nvmeDisks.follow(f);
        nics.follow(f);
      })
      .catch((e: Error) => klog.printk(`pcifront pci-0: ${e.message}`))
      .finally(() => { pciStarting = null; });
    return pciStarting;
  };
  await startPci();
  // A bus hot-plugged later (the first xl pci-attach): device/pci/0 appears.
  await xs.watch('device/pci/0/backend', 'pcifront', () => { if (!pcifront) void startPci(); });
  setMemAccess(dom.memory);

  const shell = new Shell(k, (t) => (typeof t === 'string' ? console.write(t) : console.writeBytes(Buffer.from(t))),
                          [...systemCommands, ...xenstoreCommands, ...blk.commands, ...netCommands, ...memCommands, ...pciCommands(() => pcifront)]);
  k.shell = shell;
  console.onInput((d) => shell.input(d));
  if (resumed) {
    klog.printk('xen:manage: resume complete', true);
    klog.toConsole = false;
    console.write('\n');
  } else {
    klog.printk(`Run /bin/sh as init process (boot took ${(klog.uptime() * 1000).toFixed(0)} ms)`);
    klog.toConsole = false;
    console.write(`\nWelcome to xenemu PV guest ${hostname} (domain ${dom.domid})\n\n`);
  }
  shell.prompt();
  dom.log(resumed ? `${hostname}: resumed` : `${hostname}: booted to the shell in ${(klog.uptime() * 1000).toFixed(0)} ms`);
  return k;
}
