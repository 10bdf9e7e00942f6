// A virtual host for one test: private run root (mkdtemp), random name, and
// guaranteed teardown (xenemu down, then kill and sweep whatever is left),
// even when the test fails. Reusable by every integration test:
//
//   const h = await startHost(t, { memory: 1024, pcpus: 2 });
//   ... h.env has XENEMU_RUN_DIR for `xenemu` commands ...
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, readdirSync, statSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { shmList, shmPrefix, shmSweep } from '../../shared/shm.js';
import { liveHostPids, readHostRecord, readHypervisorPid, reapHost } from '../../shared/host.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const DIST = join(here, '..', '..');
export const XENEMU_CLI = join(DIST, 'launcher', 'cli.js');

interface Tap { teardown(fn: () => unknown): void }

export interface HostOptions {
  memory?: number;
  pcpus?: number;
  /** A Dom0 program instead of processes/dom0 (e.g. test/fixtures/probe_domain.js). */
  dom0?: string;
  /** xenemu up --listen ADDR:PORT: the host takes migrations there. */
  listen?: string;
  name?: string;
  /** Extra environment for the host's processes (fault injection). */
  env?: NodeJS.ProcessEnv;
  /**
   * A run root shared with other hosts of the test (a pool is the hosts of
   * one run root): its teardown removes this host's directory, and the root
   * once no other host's directory is in it.
   */
  root?: string;
  /** xenemu up --netns NS [--join BRIDGE] [--address CIDR] (docs/net.md "Uplink"). */
  netns?: string;
  join?: string;
  address?: string;
  /** xenemu up --pci SPEC, each: the host's PCI devices (docs/passthrough.md). */
  pci?: string[];
}

export interface TestHost {
  name: string;
  /** The run root (XENEMU_RUN_DIR). */
  root: string;
  /** The host's run directory (<root>/<name>). */
  rundir: string;
  env: NodeJS.ProcessEnv;
  hypervisorPid: number;
  /** Every pid of the host that is alive now. */
  pids(): number[];
  /** Runs `xenemu <args>` against this host's run root. */
  xenemu(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** xenemu down; idempotent. */
  down(): Promise<void>;
}

/**
 * The environment for the processes under test, as a user's shell would give
 * it: without the `--import` of @tapjs/processinfo that tap puts into
 * NODE_OPTIONS for every process it spawns (coverage bookkeeping, which this
 * suite does not use). It registers module hooks, which slow every process
 * start and once left a spare guest process hung in its module loading,
 * before it watched its lifeline, when its hypervisor was killed.
 */
export function productEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  const opts = (env.NODE_OPTIONS ?? '').split(/\s+/).filter((o) => o && !o.includes('@tapjs/processinfo'));
  if (opts.length) env.NODE_OPTIONS = opts.join(' '); else delete env.NODE_OPTIONS;
  return env;
}

export function randomHostName(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

export async function startHost(t: Tap, opts: HostOptions = {}): Promise<TestHost> {
  const root = opts.root ?? mkdtempSync(join(tmpdir(), 'xenemu-run-'));
  const name = opts.name ?? randomHostName();
  const rundir = join(root, name);
  const env = productEnv({ ...opts.env, XENEMU_RUN_DIR: root });
  const xenemu = (...args: string[]) => run(process.execPath, [XENEMU_CLI, ...args], { env, timeout: 60_000 });
  let downed = false;
  const down = async () => {
    if (downed) return;
    downed = true;
    try { await xenemu('down', name); } catch { /* fall through to the sweep */ }
  };
  t.teardown(async () => {
    await down();
    reapHost(rundir, name);
    shmSweep(shmPrefix(name));
    if (!opts.root) { rmSync(root, { recursive: true, force: true }); return; }
    rmSync(rundir, { recursive: true, force: true });
    // The last host out takes the root and the files the test wrote there (writeCfg).
    try {
      if (readdirSync(root).every((e) => !statSync(join(root, e)).isDirectory())) rmSync(root, { recursive: true, force: true });
    } catch { /* gone already */ }
  });
  const args = ['up', '--name', name, '--memory', String(opts.memory ?? 1024), '--pcpus', String(opts.pcpus ?? 2)];
  if (opts.dom0) args.push('--dom0', opts.dom0);
  if (opts.listen) args.push('--listen', opts.listen);
  if (opts.netns) args.push('--netns', opts.netns);
  if (opts.join) args.push('--join', opts.join);
  if (opts.address) args.push('--address', opts.address);
  for (const p of opts.pci ?? []) args.push('--pci', p);
  await xenemu(...args);
  const hypervisorPid = readHypervisorPid(rundir) ?? 0;
  return {
    name, root, rundir, env, hypervisorPid, xenemu, down,
    pids: () => liveHostPids(rundir, name),
  };
}

/** Waits until `fn` returns a truthy value (polled: the event is in another process). */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A zombie counts as gone: it holds nothing, and once its parent died only
 * init reaps it, which can take a while.
 */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

/** True when nothing of host `name` is left: no process, no segment. */
export function hostGone(rundir: string, name: string, pids: number[]): boolean {
  const alive = pids.filter(processAlive);
  return alive.length === 0 && shmList(shmPrefix(name)).length === 0;
}

export { readHostRecord, existsSync };
