// A virtual host for a benchmark suite: the hypervisor started from the
// suite's scope (with a lifeline, so that nothing outlives the runner), its
// run directory in a scope tmpdir, and the real CLI (`xl ...`) pointed at it.
//
//   const h = await startBenchHost(ctx, { memoryMB: 4096 });
//   await h.xl(['create', cfg]);
//   ... h.stop() (or the scope's dispose) takes everything down, then
//   h.leftovers() says what would have leaked.
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { shmList, shmPrefix, shmSweep } from '../shared/shm.js';
import { ensureHostDir, hostProcessesByScan, reapHost } from '../shared/host.js';
import { ipQuiet } from '../shared/net/netns.js';
import { inHostNetns, NS_BRIDGE, releaseHostNet, setupHostNet } from '../shared/net/uplink.js';
import type { Child } from './harness.js';
import type { SuiteContext } from './suite.js';

export interface BenchHostOptions {
  memoryMB: number;
  pcpus?: number;
  /** A Dom0 program instead of processes/dom0 (e.g. the probe fixture). */
  dom0?: string;
  /** Extra environment for the hypervisor and, through it, every domain. */
  env?: NodeJS.ProcessEnv;
  /** node/V8 flags for the hypervisor process (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** xenemu up --listen ADDR:PORT: the host takes migrations there. */
  listen?: string;
  /** xenemu up --pci SPEC, each: the host's PCI devices (docs/passthrough.md), e.g. `nvme:/path/disk.img`. */
  pci?: string[];
  /**
   * xenemu up --netns NS: the host in namespace NS (made if missing, removed
   * at the end if made here), Domain-0's xenbr0 reaching NS's xenbr0 through
   * the TAP vif0.0, a NIC's wire the TAP xpt<bus> in NS (docs/net.md "Uplink").
   */
  netns?: string;
  /** xenemu up --address CIDR: NS's xenbr0's address (with netns). */
  address?: string;
}

export interface Leftovers { pids: number[]; segments: string[] }

export interface BenchHost {
  name: string;
  /** XENEMU_RUN_DIR of the host. */
  root: string;
  /** <root>/<name>. */
  rundir: string;
  hypervisor: Child;
  /** Environment for `xenemu` commands against this host. */
  env: NodeJS.ProcessEnv;
  cli: string;
  /** Writes a file into the run root; returns its path. */
  file(name: string, text: string): string;
  /**
   * Takes the host down (SIGTERM to the hypervisor); resolves to what it
   * left behind (processes of the host, shm segments), which is then swept.
   */
  stop(): Promise<Leftovers>;
}

/** How long a host gets to boot Domain-0 (xenstored, xenconsoled, xend) on a busy machine. */
const BOOT_TIMEOUT_MS = 60_000;

export async function startBenchHost(ctx: SuiteContext, o: BenchHostOptions): Promise<BenchHost> {
  const root = ctx.scope.tmpdir();
  const name = `b${randomBytes(4).toString('hex')}`;
  const rundir = join(root, name);
  const args = [...(o.nodeArgs ?? []), join(ctx.dist, 'processes', 'hypervisor', 'main.js'), '--host', name, '--rundir', rundir,
                '--memory', String(o.memoryMB), '--pcpus', String(o.pcpus ?? 2)];
  if (o.dom0) args.push('--dom0', o.dom0);
  if (o.listen) args.push('--listen', o.listen);
  for (const p of o.pci ?? []) args.push('--pci', p);
  // Whatever way the suite ends (a boot that fails, Ctrl-C, the 'exit'
  // handler), the host's processes and segments go, then its namespace
  // and links (deferred functions run last first).
  let net = null;
  if (o.netns) {
    ensureHostDir(rundir);
    net = setupHostNet(rundir, { netns: o.netns, address: o.address });
    const made = net.createdNetns;
    ctx.scope.defer(() => { releaseHostNet(rundir); if (made) ipQuiet(['netns', 'del', o.netns!]); });
    args.push('--uplink', NS_BRIDGE);
  }
  ctx.scope.defer(() => { reapHost(rundir, name); shmSweep(shmPrefix(name)); });
  // In the namespace from its first instruction: Domain-0, the device processes and the guests are born there.
  const start = () => ctx.scope.spawn('hypervisor', process.execPath, args,
    { lifeline: true, env: { ...process.env, ...o.env } });
  const hypervisor = net ? inHostNetns(net, start) : start();
  await hypervisor.waitForOutput('Domain-0 ready', BOOT_TIMEOUT_MS);
  const h: BenchHost = {
    name, root, rundir, hypervisor,
    env: { ...process.env, XENEMU_RUN_DIR: root, XENEMU_HOST: name },
    cli: join(ctx.dist, 'launcher', 'cli.js'),
    file(fname, text) {
      const p = join(root, fname);
      writeFileSync(p, text);
      return p;
    },
    async stop() {
      await hypervisor.stop();
      // Whatever the hypervisor did not take down with it is a leak: report it, then sweep.
      const left = { pids: hostProcessesByScan(rundir, name), segments: shmList(shmPrefix(name)) };
      reapHost(rundir, name);
      shmSweep(shmPrefix(name));
      if (o.netns) releaseHostNet(rundir);
      return left;
    },
  };
  return h;
}
