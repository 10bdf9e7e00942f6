// Starts a standalone xenstored process in a private directory for one test,
// and guarantees it is gone (and its shm segments unlinked) at teardown.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import { shmCreate, shmSweep } from '../../shared/shm.js';
import { XsClient, XsError, XsRingTransport } from '../../shared/xenstore/client.js';
import { lifelineStdio, lifelineEnv } from '../../shared/runtime/lifeline.js';
import { productEnv } from './host.js';
import { ccMissing } from './cc.js';
import { XEN_UTILS_DIR, XEN_C_XENSTORED, fetchXenUtils } from '../../shared/xenctrl.js';

const here = dirname(fileURLToPath(import.meta.url));
export const DIST = join(here, '..', '..');
export const XENSTORED_MAIN = join(DIST, 'processes', 'dom0', 'xenstored', 'main.js');

interface Tap {
  teardown(fn: () => unknown): void;
}

export interface XenstoredHandle {
  dir: string;
  socketPath: string;
  stateDir: string;
  shmPrefix: string;
  proc: ChildProcess;
  /** Everything the daemon printed. */
  output(): string;
  env: NodeJS.ProcessEnv;
  connect(): Promise<XsClient>;
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM, wait for the exit; resolves the exit code. */
  stop(): Promise<number | null>;
  /** Starts the daemon again on the same socket and state. */
  restart(): Promise<void>;
  /** Makes a guest: a memory segment, its ring page, a client over the ring. */
  guest(domid: number, mfn?: number): Promise<GuestHandle>;
  rssKb(): number;
}

export interface GuestHandle {
  domid: number;
  mfn: number;
  page: Uint8Array;
  client: XsClient;
  close(): void;
}

export async function startXenstored(t: Tap, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<XenstoredHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-xs-'));
  const socketPath = join(dir, 'xenstored.sock');
  const stateDir = join(dir, 'state');
  const shmPrefix = `/xenemu.t${randomBytes(4).toString('hex')}.`;
  let out = '';
  let proc!: ChildProcess;
  const clients: XsClient[] = [];
  const timers: NodeJS.Timeout[] = [];

  const launch = async (): Promise<void> => {
    proc = spawn(process.execPath, [XENSTORED_MAIN, '--socket', socketPath, '--state', stateDir, '--shm-prefix', shmPrefix, ...extra], {
      stdio: lifelineStdio('pipe'), // dies with this test process, however it ends
      env: { ...lifelineEnv(productEnv()), ...env },
    });
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        out += d.toString();
        if (out.includes(`listening on ${socketPath}`)) resolve();
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
      proc.once('exit', (code) => reject(new Error(`xenstored exited ${code}: ${out}`)));
    });
  };
  const waitExit = (): Promise<number | null> =>
    proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve(proc.exitCode)
      : new Promise((resolve) => proc.once('exit', (code) => resolve(code)));

  // A test killed by its timeout runs no teardown: still leave no segment.
  process.once('exit', () => shmSweep(shmPrefix));
  await launch();
  const h: XenstoredHandle = {
    dir, socketPath, stateDir, shmPrefix,
    get proc() { return proc; },
    output: () => out,
    env: { ...process.env, XENSTORED_PATH: socketPath },
    connect: async () => {
      const c = await XsClient.connect(socketPath);
      clients.push(c);
      return c;
    },
    kill: async () => { proc.kill('SIGKILL'); await waitExit(); },
    stop: async () => { proc.kill('SIGTERM'); return waitExit(); },
    restart: launch,
    guest: async (domid: number, mfn = 1) => {
      const mem = shmCreate(`${shmPrefix}dom${domid}.mem`, PAGE_SIZE * (mfn + 1));
      const page = new Uint8Array(mem, mfn * PAGE_SIZE, PAGE_SIZE);
      const admin = await h.connect();
      await admin.introduce(domid, mfn, 1);
      admin.close();
      // Without event channels the daemon polls rings; the guest polls too.
      const transport = new XsRingTransport(page, () => undefined);
      const client = new XsClient(transport);
      const timer = setInterval(() => transport.kick(), 1);
      timers.push(timer);
      clients.push(client);
      return { domid, mfn, page, client, close: () => { clearInterval(timer); client.close(); } };
    },
    rssKb: () => {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
      return m ? Number(m[1]) : 0;
    },
  };
  t.teardown(async () => {
    for (const tm of timers) clearInterval(tm);
    for (const c of clients) c.close();
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await waitExit();
    }
    shmSweep(shmPrefix);
    rmSync(dir, { recursive: true, force: true });
  });
  return h;
}

/** The xsd error a request ends with ('OK' when it succeeds). */
export async function code(p: Promise<unknown>): Promise<string> {
  try { await p; return 'OK'; } catch (e) { return e instanceof XsError ? e.code : String(e); }
}

/** What a toolstack does before a guest runs: its home, owned by it, readable by Domain-0. */
export async function home(dom0: XsClient, domid: number): Promise<void> {
  await dom0.mkdir(`/local/domain/${domid}`);
  await dom0.setPerms(`/local/domain/${domid}`, [`n${domid}`, 'r0']);
}

// ---- Xen's own C xenstored, as a reference ----------------------------------

/** Debian's xen-utils-4.17, fetched and unpacked by fetchXenUtils (shared/xenctrl.ts). */
export { XEN_UTILS_DIR, XEN_C_XENSTORED, fetchXenUtils };
const SHIM_SRC = join(DIST, '..', 'test', 'xenstored', 'c', 'xen_c_shim.c');

export interface XenCHandle { socketPath: string; proc: ChildProcess; output(): string }

/** Why Xen's C xenstored cannot run here, or null (then startXenC works). */
export function xenCMissing(): string | null {
  const why = ccMissing(['xenctrl.h']) ?? fetchXenUtils();
  if (why) return why;
  const ldd = spawnSync('ldd', [XEN_C_XENSTORED], { encoding: 'utf8' });
  const missing = /(\S+) => not found/.exec(ldd.stdout ?? '');
  if (missing) return `${missing[1]} not found for Xen's xenstored: install the Debian package libxen-dev (.ci/setup does)`;
  return null;
}

/**
 * Xen 4.17's C xenstored on a private Unix socket, its hypervisor interfaces
 * stubbed out by test/xenstored/c/xen_c_shim.c (LD_PRELOAD), killed at
 * teardown. Call xenCMissing() first.
 */
export async function startXenC(t: Tap): Promise<XenCHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-xenc-'));
  const shim = join(dir, 'xen_c_shim.so');
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-Wall', '-O2', '-o', shim, SHIM_SRC, '-ldl'], { encoding: 'utf8' });
  if (cc.status !== 0) { rmSync(dir, { recursive: true, force: true }); throw new Error(`cc xen_c_shim.c: ${cc.stderr}`); }
  const socketPath = join(dir, 'socket');
  let out = '';
  // -N: stay in the foreground; the database is in memory (4.17's default).
  const proc = spawn(XEN_C_XENSTORED, ['-N'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, LD_PRELOAD: shim, XENSTORED_RUNDIR: dir, XENSTORED_PATH: socketPath },
  });
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGKILL'); await exited; }
    rmSync(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + 10_000;
  while (!existsSync(socketPath)) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`Xen's xenstored exited: ${out}`);
    if (Date.now() > deadline) throw new Error(`Xen's xenstored made no socket: ${out}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { socketPath, proc, output: () => out };
}
