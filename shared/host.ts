// One virtual host's run directory and its reaping (docs/hypervisor.md).
//
//   <root>/<name>/            root = $XENEMU_RUN_DIR or /run/xenemu
//     hypervisor.pid          pid of the hypervisor
//     host.json               HostRecord: name, memoryMB, pcpus, pids (spares too), started
//     ready                   written once Dom0 reported ready
//     logs/                   hypervisor.log, dom<id>.log, qemu-dm-<name>.log
//     logs/console/<name>.log a guest's console: xenconsoled's PV console, or
//                             qemu-dm's first serial port for an HVM guest
//     dom<id>.hypercall       ZeroMQ ipc endpoint of each domain
//     pci/<bdf>.cfg, .ctl     a host PCI device's config space socket and control endpoint
//     logs/pcidev-<bdf>.log   a host PCI device process's output
//     xenstored.sock, xend.sock   created by Dom0 services
//     net.json                what `xenemu up --netns` made (shared/net/uplink.ts)
//
// Used by the hypervisor (writes), Dom0 (cleanup if the hypervisor vanished)
// and the launcher (up/down/status).
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shmPrefix, shmSweep } from './shm.js';
import { titleHost } from './runtime/title.js';
import { NET_RECORD, releaseHostNet } from './net/uplink.js';

export const DEFAULT_HOST_NAME = 'xenemu';
export const HOST_NAME_RE = /^[A-Za-z0-9_-]{1,32}$/;

/** A host PCI device (processes/pcidev, docs/passthrough.md) as host.json lists it. */
export interface PciRecord {
  bdf: string;
  model: string;
  /** The --pci argument it came from. */
  spec: string;
  /** `Domain-0`, `quarantine`, or `d<domid>`. */
  owner: string;
  state: 'starting' | 'running' | 'gone';
  pid: number;
  /** DMA its IOMMU refused, and DMA done in quarantine (on the scratch page). */
  faults: { iommu: number; quarantine: number };
  /** MSIs the device posted to its owner's ports itself, and those it sent the hypervisor (docs/passthrough.md). */
  msi?: { posted: number; relayed: number };
  /** A NIC's TAP in the host's namespace (xpt03, or xpt03-<hash> for a host without a namespace of its own). */
  tap?: string;
}

export interface HostRecord {
  name: string;
  memoryMB: number;
  pcpus: number;
  started: string; // ISO time
  /**
   * Every live process of the host: the hypervisor, each domain process, and
   * the spare guest processes that have no domain yet
   * (processes/hypervisor/spare.ts).
   */
  pids: { hypervisor: number; domains: Record<string, number>; spares: number[]; pcidevs?: number[] };
  /** Number of domains (Dom0 included) the hypervisor knows of. */
  domains: number;
  /** The host's PCI devices (`xenemu up --pci`), in BDF order. */
  pci?: PciRecord[];
}

export function runRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.XENEMU_RUN_DIR && env.XENEMU_RUN_DIR.length > 0 ? env.XENEMU_RUN_DIR : '/run/xenemu';
}

export function hostDir(root: string, name: string): string {
  return join(root, name);
}

export const hostFiles = {
  pid: 'hypervisor.pid',
  record: 'host.json',
  ready: 'ready',
  logs: 'logs',
  /** Domain-0's system paths for Xen's C tools (dom0SystemPath). */
  dom0: 'dom0',
  /** The hypercall socket of xenemu's privcmd library (shared/wire/privcmd.ts). */
  privcmdSock: 'privcmd.sock',
} as const;

/**
 * The paths Xen's C tools write in Domain-0 (libxl's /var/lib/xen userdata,
 * /var/run/xen, /var/log/xen, xl's /var/lock/xl and /etc/xen/xl.conf) are,
 * for a xenemu host, under <rundir>/dom0/: xenemu's privcmd library
 * (shared/native/xenemu_privcmd.c) sends them there, and Domain-0's
 * toolstack writes what libxl would (processes/dom0/toolstack/init_dom0.ts,
 * libxl_json.ts).
 */
export const DOM0_SYSTEM_DIRS = ['/etc/xen', '/var/lib/xen', '/var/log/xen', '/var/run/xen', '/var/lock'] as const;

/** Where Domain-0's `path` (absolute) is kept for host `rundir`. */
export function dom0SystemPath(rundir: string, path: string): string {
  return join(rundir, hostFiles.dom0, path);
}

/**
 * A guest's console log, `<logDir>/console/<name>.log`: written by
 * xenconsoled for a PV console and by qemu-dm for an HVM guest's first serial
 * port; the toolstack replays its tail on `xl console`. The name is the
 * domain's with every byte outside [A-Za-z0-9_.-] made `_` (the domid when
 * nothing is left).
 */
export function consoleLogFile(logDir: string, name: string, domid: number): string {
  const safe = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  return join(logDir, 'console', `${safe.length > 0 && safe !== '.' && safe !== '..' ? safe : String(domid)}.log`);
}

/** An HVM guest's device model log (libxl's qemu-dm-<name>.log): its stdout and stderr. */
export function deviceModelLogFile(rundir: string, name: string): string {
  return join(rundir, hostFiles.logs, `qemu-dm-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.log`);
}

export function isValidHostName(name: string): boolean {
  return HOST_NAME_RE.test(name);
}

export function ensureHostDir(dir: string): void {
  mkdirSync(join(dir, hostFiles.logs), { recursive: true });
}

/** Writes host.json atomically (rename), so readers never see half a record. */
export function writeHostRecord(dir: string, rec: HostRecord): void {
  const tmp = join(dir, `.${hostFiles.record}.${process.pid}`);
  writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n');
  renameSync(tmp, join(dir, hostFiles.record));
}

export function readHostRecord(dir: string): HostRecord | null {
  try {
    return JSON.parse(readFileSync(join(dir, hostFiles.record), 'utf8')) as HostRecord;
  } catch {
    return null;
  }
}

export function readHypervisorPid(dir: string): number | null {
  try {
    const n = Number.parseInt(readFileSync(join(dir, hostFiles.pid), 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * The host a command line (/proc/<pid>/cmdline, split at NULs) belongs to:
 * its title (`xenemu-... host=<name>`, shared/runtime/title.ts), or, before
 * a process set one, its `--host <name>` argument.
 */
export function cmdlineHost(argv: string[]): string | null {
  const fromTitle = titleHost(argv[0] ?? '');
  if (fromTitle !== null) return fromTitle;
  const i = argv.indexOf('--host');
  return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : null;
}

/** /proc/<pid>/cmdline split at NULs; [] when the process is gone. */
export function procCmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').split('\0');
  } catch {
    return [];
  }
}

/** True when pid is alive and is a process of host `name` (by its title or its `--host <name>`). */
export function isHostProcess(pid: number, name: string): boolean {
  try {
    if (cmdlineHost(procCmdline(pid)) !== name) return false;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat); // a zombie is gone already
  } catch {
    return false;
  }
}

/** Every pid host.json lists that still belongs to the host. */
export function liveHostPids(dir: string, name: string): number[] {
  const rec = readHostRecord(dir);
  const pids = new Set<number>();
  const hv = readHypervisorPid(dir);
  if (hv) pids.add(hv);
  if (rec) {
    pids.add(rec.pids.hypervisor);
    for (const p of Object.values(rec.pids.domains)) pids.add(p);
    for (const p of rec.pids.spares ?? []) pids.add(p); // a file on disk: trust no field
    for (const p of rec.pids.pcidevs ?? []) pids.add(p);
  }
  return [...pids].filter((p) => p !== process.pid && isHostProcess(p, name));
}

/**
 * Every process of the host, recorded or not: a title naming the host (or a
 * `--host <name>` argument) and XENEMU_HOST_DIR=<dir> in its environment (a
 * host of the same name under another run root is not this one). That finds
 * what host.json does not list, such as a spare guest process
 * (processes/hypervisor/spare.ts) that was still loading its modules, and so
 * not yet watching its lifeline, when the hypervisor was killed.
 */
export function hostProcessesByScan(dir: string, name: string): number[] {
  const mark = `XENEMU_HOST_DIR=${dir}`;
  const found: number[] = [];
  let entries: string[];
  try { entries = readdirSync('/proc'); } catch { return found; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid || !isHostProcess(pid, name)) continue;
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(mark)) found.push(pid);
    } catch { /* gone, or not ours to read */ }
  }
  return found;
}

/**
 * Removes what a dead host left: kills its remaining processes (SIGCONT first,
 * so a paused domain dies too), recorded ones and any other found by a scan
 * of /proc, unlinks its shm segments, and removes run directory files.
 * `keepLogs` keeps logs/ for a post-mortem.
 */
export function reapHost(dir: string, name: string, opts: { keepLogs?: boolean } = {}): void {
  for (const pid of new Set([...liveHostPids(dir, name), ...hostProcessesByScan(dir, name)])) {
    try { process.kill(pid, 'SIGCONT'); process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  shmSweep(shmPrefix(name));
  removeHostFiles(dir, opts.keepLogs ?? false);
}

export function removeHostFiles(dir: string, keepLogs: boolean): void {
  if (!existsSync(dir)) return;
  // The host's namespace, veth and pool bridge (net.json), before the record
  // goes; a release from inside the namespace leaves the record for the
  // pool side (shared/net/uplink.ts), and it stays with the logs.
  const netDone = releaseHostNet(dir);
  if (!keepLogs) { rmSync(dir, { recursive: true, force: true }); return; }
  for (const f of readdirSync(dir)) {
    if (f === hostFiles.logs || (f === NET_RECORD && !netDone)) continue;
    rmSync(join(dir, f), { recursive: true, force: true });
  }
}
