// The launcher's side of a virtual host: start it (detached or in the
// foreground), take it down, list hosts and clean up after dead ones.
// Run directory layout: shared/host.ts.
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import {
  ensureHostDir, hostDir, isValidHostName, hostFiles, isHostProcess, liveHostPids, readHostRecord, readHypervisorPid,
  reapHost, removeHostFiles, type HostRecord, type PciRecord,
} from '../shared/host.js';
import { lifelineEnv, lifelineStdio } from '../shared/runtime/lifeline.js';
import { hypervisorTitle, nodeTitleArgs } from '../shared/runtime/title.js';
import { shmList, shmPrefix, shmSweep } from '../shared/shm.js';
import { inHostNetns, NS_BRIDGE, ROOT_NETNS_FD_ENV, setupHostNet, type UplinkOptions } from '../shared/net/uplink.js';
import { NetError } from '../shared/net/netns.js';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..');
export const HYPERVISOR_MAIN = join(dist, 'processes', 'hypervisor', 'main.js');

export interface UpOptions {
  root: string;
  name: string;
  memoryMB: number;
  pcpus: number;
  foreground: boolean;
  /** Seconds to wait for Dom0 to report ready. */
  timeoutS?: number;
  /** Extra hypervisor arguments (e.g. --dom0 for tests). */
  extraArgs?: string[];
  /** --netns [--join] [--address]: the host runs in that network namespace (shared/net/uplink.ts). */
  net?: UplinkOptions;
}

export class HostError extends Error {}

/** A host is running when its hypervisor pid is alive and really its hypervisor. */
export function hostRunning(root: string, name: string): number | null {
  const pid = readHypervisorPid(hostDir(root, name));
  return pid && isHostProcess(pid, name) ? pid : null;
}

function hypervisorArgs(o: UpOptions, dir: string): string[] {
  return [HYPERVISOR_MAIN, '--host', o.name, '--rundir', dir, '--memory', String(o.memoryMB),
          '--pcpus', String(o.pcpus), ...(o.extraArgs ?? [])];
}

function logTail(dir: string): string {
  try {
    const t = readFileSync(join(dir, hostFiles.logs, 'hypervisor.log'), 'utf8').trimEnd().split('\n');
    return t.slice(-15).join('\n');
  } catch { return '(no log)'; }
}

/**
 * xenemu up: starts the hypervisor and resolves once the host is ready (Dom0
 * reported ready). Detached: its own session, output to logs/hypervisor.log;
 * the hypervisor writes "ready" to fd 3 and closes it. Foreground: attached
 * with a lifeline, and this promise resolves when the host is down again.
 */
export async function up(o: UpOptions, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<void> {
  const dir = hostDir(o.root, o.name);
  if (hostRunning(o.root, o.name)) throw new HostError(`host ${o.name} is already running (${dir})`);
  if (existsSync(dir)) { reapHost(dir, o.name); }
  shmSweep(shmPrefix(o.name));
  ensureHostDir(dir);
  let net = null;
  if (o.net) {
    try { net = setupHostNet(dir, o.net); } catch (e) {
      removeHostFiles(dir, false);
      throw e instanceof NetError ? new HostError(e.message) : e;
    }
    o = { ...o, extraArgs: [...(o.extraArgs ?? []), '--uplink', NS_BRIDGE] };
  }
  const log = openSync(join(dir, hostFiles.logs, 'hypervisor.log'), 'a');
  // Its title from the first instant (it sets it again itself: shared/runtime/title.ts).
  const argv0 = hypervisorTitle(o.name);
  const args = [...nodeTitleArgs(argv0), ...hypervisorArgs(o, dir)];
  // In the host's namespace from its first instruction: what the hypervisor
  // spawns (Domain-0, guests) is born there too.
  // It also gets this namespace's descriptor, to reach the pool bridge from
  // inside its own (shared/net/uplink.ts ROOT_NETNS_FD_ENV).
  const rootNs = net ? openSync('/proc/thread-self/ns/net', 'r') : null;
  const nsFd = (i: number) => (rootNs === null ? {} : { [ROOT_NETNS_FD_ENV]: String(i) });
  const start = () => o.foreground
    ? spawn(process.execPath, args, {
        stdio: [...(lifelineStdio('inherit') as unknown[]), 'pipe', ...(rootNs === null ? [] : [rootNs])] as never,
        env: { ...lifelineEnv(), XENEMU_READY_FD: '4', ...nsFd(5) }, argv0,
      })
    : spawn(process.execPath, args, {
        detached: true, stdio: ['ignore', log, log, 'pipe', ...(rootNs === null ? [] : [rootNs])], argv0,
        env: { ...process.env, XENEMU_READY_FD: '3', ...nsFd(4) },
      });
  let child;
  try { child = net ? inHostNetns(net, start) : start(); } finally { if (rootNs !== null) closeSync(rootNs); }
  closeSync(log);
  const readyPipe = child.stdio[o.foreground ? 4 : 3] as NodeJS.ReadableStream;
  const exited = new Promise<number>((res) => child.once('exit', (code, sig) => res(code ?? (sig ? 128 : 1))));
  const ready = await new Promise<boolean>((resolve) => {
    let buf = '';
    const timer = setTimeout(() => resolve(false), (o.timeoutS ?? 60) * 1000);
    readyPipe.on('data', (d) => { buf += String(d); if (buf.includes('ready')) { clearTimeout(timer); resolve(true); } });
    readyPipe.on('end', () => { clearTimeout(timer); resolve(buf.includes('ready')); });
    readyPipe.on('error', () => { clearTimeout(timer); resolve(false); });
  });
  if (!ready) {
    try { process.kill(child.pid!, 'SIGTERM'); } catch { /* gone */ }
    await down(o.root, o.name);
    throw new HostError(`host ${o.name} did not come up; hypervisor log:\n${logTail(dir)}`);
  }
  out(`host ${o.name} up: hypervisor pid ${child.pid}, ${o.memoryMB} MB, ${o.pcpus} pCPUs, run dir ${dir}\n`);
  if (!o.foreground) {
    child.unref();
    (readyPipe as unknown as { destroy(): void }).destroy();
    return;
  }
  const stop = () => { try { process.kill(child.pid!, 'SIGTERM'); } catch { /* gone */ } };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const code = await exited;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  await down(o.root, o.name);
  out(`host ${o.name} down (hypervisor exit ${code})\n`);
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function waitGone(pids: number[], name: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  // The processes are not our children: nothing signals their exit, so poll.
  while (Date.now() < deadline) {
    if (pids.every((p) => !alive(p) || !isHostProcess(p, name))) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

/**
 * xenemu down: SIGTERM to the hypervisor, wait for every process of the host
 * to go (SIGKILL after a few seconds), then sweep shm and remove the run dir.
 * Returns false when there was no such host.
 */
export async function down(root: string, name: string, graceMs = 4000): Promise<boolean> {
  const dir = hostDir(root, name);
  if (!existsSync(dir) && shmList(shmPrefix(name)).length === 0) return false;
  const hv = hostRunning(root, name);
  const pids = liveHostPids(dir, name);
  if (hv) { try { process.kill(hv, 'SIGTERM'); } catch { /* gone */ } }
  if (!(await waitGone(pids, name, graceMs))) {
    for (const p of pids) { try { process.kill(p, 'SIGCONT'); process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    await waitGone(pids, name, 2000);
  }
  reapHost(dir, name);
  removeHostFiles(dir, false);
  return true;
}

export interface HostStatus {
  name: string;
  pid: number;
  memoryMB: number;
  pcpus: number;
  domains: number;
  started: string;
  ready: boolean;
  rundir: string;
  /** Its PCI devices (`xenemu up --pci`). */
  pci: PciRecord[];
}

/** xenemu status: running hosts; dead hosts' leftovers are reaped on the way. */
export function status(root: string): { hosts: HostStatus[]; reaped: string[] } {
  const hosts: HostStatus[] = [];
  const reaped: string[] = [];
  let names: string[] = [];
  try { names = readdirSync(root).filter((n) => statSync(join(root, n)).isDirectory()); } catch { /* no root */ }
  for (const name of names) {
    const dir = hostDir(root, name);
    const pid = hostRunning(root, name);
    const rec: HostRecord | null = readHostRecord(dir);
    if (pid && rec) {
      hosts.push({ name, pid, memoryMB: rec.memoryMB, pcpus: rec.pcpus, domains: rec.domains, started: rec.started,
                   ready: existsSync(join(dir, hostFiles.ready)), rundir: dir, pci: rec.pci ?? [] });
    } else if (!pid && isValidHostName(name) && (rec || existsSync(join(dir, hostFiles.pid)) ||
                                                 existsSync(join(dir, hostFiles.logs, 'hypervisor.log')))) {
      // No live hypervisor: whatever is here is a leftover.
      reapHost(dir, name);
      reaped.push(name);
    }
  }
  return { hosts, reaped };
}
