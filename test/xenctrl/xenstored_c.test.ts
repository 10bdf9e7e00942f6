// Debian's C xenstored (xen-utils-4.17's /usr/lib/xen-4.17/bin/xenstored),
// unchanged, as a stand-alone daemon of a xenemu host's Domain-0 through
// xenemu's privcmd library: it opens privcmd, gntdev and evtchn, binds
// VIRQ_DOM_EXC and Domain-0's xenstore port (/proc/xen/xsd_port), maps
// Domain-0's ring (/proc/xen/xsd_kva), and serves libxenstore clients on its
// own socket (what bench/xenstored.ts measures against xenemu's). Its
// event channels are Domain-0's, seen with Xen's lsevtchn, and they go when
// it does.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST, startHost, productEnv, waitFor, type TestHost } from '../helpers/host.js';
import { writeCfg, xlOk } from '../host/xl.js';
import { ccBuild } from '../helpers/cc.js';
import { runXen, xenOk, xenToolsMissing } from '../helpers/xenctrl.js';
import { XEN_C_XENSTORED, privcmdEnv } from '../../shared/xenctrl.js';

const missing = xenToolsMissing() ?? false;
const XS_BENCH = join(DIST, '..', 'bench', 'c', 'xs_bench.c');

interface Tap { teardown(fn: () => unknown): void }

/** Xen's xenstored -N (foreground) on a private socket, under the library, killed at teardown. */
async function startXenstoredC(t: Tap, h: TestHost): Promise<{ socket: string; pid: number; exited: Promise<number | null>; output(): string }> {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-xsc-'));
  const socket = join(dir, 'socket');
  let out = '';
  const proc = spawn(XEN_C_XENSTORED, ['-N'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...privcmdEnv(h.rundir, productEnv()), XENSTORED_RUNDIR: dir, XENSTORED_PATH: socket },
  });
  proc.stdout!.on('data', (d: Buffer) => { out += d; });
  proc.stderr!.on('data', (d: Buffer) => { out += d; });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGKILL'); await exited; }
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(() => {
    if (proc.exitCode !== null) throw new Error(`Xen's xenstored exited ${proc.exitCode}: ${out}`);
    return existsSync(socket);
  }, 10_000, "Xen's xenstored's socket");
  return { socket, pid: proc.pid!, exited, output: () => out };
}

t.test("Xen's C xenstored as a Domain-0 daemon of a xenemu host", { skip: missing }, async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const before = await xenOk(h, 'lsevtchn', '0');
  const xsd = await startXenstoredC(t, h);
  const cli = (tool: string, ...args: string[]) =>
    spawnSync(tool, args, { env: { ...process.env, XENSTORED_PATH: xsd.socket }, encoding: 'utf8', timeout: 10_000 });

  await t.test('it serves libxenstore clients', async (t) => {
    t.equal(cli('xenstore-write', '/a/b', 'hello').status, 0, 'xenstore-write');
    t.equal(cli('xenstore-read', '/a/b').stdout, 'hello\n', 'xenstore-read reads it back');
    t.match(cli('xenstore-ls', '/').stdout, /^tool = ""\n xenstored = ""\na = ""\n b = "hello"\n$/, 'its tree: its own and ours');
    const dir = mkdtempSync(join(tmpdir(), 'xenemu-xsbench-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const exe = join(dir, 'xs_bench');
    if (!ccBuild(t, XS_BENCH, exe, ['-O2'], ['-lxenstore'])) return;
    for (const mode of ['rw', 'tx', 'watch']) {
      const r = spawnSync(exe, [mode, '50', '200', '1'], { env: { ...process.env, XENSTORED_PATH: xsd.socket }, encoding: 'utf8', timeout: 30_000 });
      t.equal(r.status, 0, `xs_bench ${mode}: ${r.stdout.trim() || r.stderr.trim()}`);
    }
  });

  await t.test("its event channels are Domain-0's", async (t) => {
    const ports = await xenOk(h, 'lsevtchn', '0');
    t.equal((ports.match(/Virtual IRQ 3$/gm) ?? []).length, 2, 'VIRQ_DOM_EXC: xend\'s port and its own');
    t.match(ports, /Interdomain \(Connected\) - Remote Domain 0/, "Domain-0's xenstore port, bound to it");
  });

  await t.test('domains come and go under it', async (t) => {
    const cfg = writeCfg(h, 'g.cfg', 'memory = 32\n');
    await xlOk(h, 'create', cfg, 'name=g');
    await xlOk(h, 'destroy', 'g');
    t.equal(cli('xenstore-read', '/a/b').stdout, 'hello\n', 'it still serves after VIRQ_DOM_EXC');
    t.equal(xsd.output(), '', 'and said nothing');
  });

  await t.test('its event channels go with it', async (t) => {
    process.kill(xsd.pid, 'SIGTERM');
    await xsd.exited;
    // Domain-0's xenstore port stays, unbound again, for the next xenstored
    // (as Linux's xenbus keeps xen_store_evtchn).
    const waiting = /^ +(\d+): VCPU 0: Interdomain \(Waiting connection\) - Remote Domain 0\n/m;
    const after = await waitFor(async () => {
      const out = (await runXen(h, 'lsevtchn', ['0'])).stdout;
      return out.replace(waiting, '') === before && waiting.test(out) ? out : null;
    }, 5000, "Domain-0's ports as before, and its xenstore port waiting");
    t.match(after, waiting, "Domain-0's ports are those it had before, and its xenstore port waits for the next daemon");
    const again = await startXenstoredC(t, h);
    t.match(await xenOk(h, 'lsevtchn', '0'), new RegExp(`^ +${waiting.exec(after)![1]}: VCPU 0: Interdomain \\(Connected\\)`, 'm'),
      'a second daemon binds the same port');
    process.kill(again.pid, 'SIGTERM');
    await again.exited;
  });
});
