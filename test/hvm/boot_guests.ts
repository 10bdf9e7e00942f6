// The HVM guests of test/hvm/lifecycle.test.ts and faults.test.ts: a host,
// and xl create of a boot sector of our own (asm/lifecycle_boot.asm,
// assembled with the -D variant asked for) with a serial PTY and an e1000
// on xenbr0, so each guest is up in seconds; and the check that nothing of
// a guest is left after it went: no segment, no qemu-dm, no tap socket.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, startHost, waitFor, type TestHost } from '../helpers/host.js';
import { nasmBuild, nasmMissing } from '../helpers/nasm.js';
import { seabiosMissing } from '../helpers/hvm.js';
import { shmList, shmPrefix } from '../../shared/shm.js';
import { list, writeCfg, xenstore, xlOk, type ListRow } from '../host/xl.js';
import type { XsClient } from '../../shared/xenstore/client.js';

const ASM = join(DIST, '..', 'test', 'hvm', 'asm', 'lifecycle_boot.asm');

export const bootGuestsMissing = (): string | false => seabiosMissing() ?? nasmMissing() ?? false;

type Tap = {
  same(a: unknown, b: unknown, m: string): void;
  equal(a: unknown, b: unknown, m: string): void;
  teardown(fn: () => unknown): void;
};

/** Whether any qemu-dm of this host still runs (`pgrep -f xenemu-qemu-dm` with the host's name). */
export function qemuDmPids(h: TestHost): number[] {
  try {
    return execFileSync('pgrep', ['-f', `xenemu-qemu-dm .*host=${h.name}$`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch { return []; }
}

export async function row(h: TestHost, name: string): Promise<ListRow | undefined> {
  return (await list(h)).find((r) => r.name === name);
}

export interface BootGuests {
  h: TestHost;
  xs: XsClient;
  /** xl create of the boot sector `variant` ('' for none) as guest `name`, with extra config lines; its domid. */
  create(name: string, variant: string, extra?: string[]): Promise<number>;
  /** Resolves once guest `name`'s boot sector has run (its serial log, from byte `from`). */
  booted(name: string, from?: number, timeout?: number): Promise<unknown>;
  serialLog(name: string): string;
  dmLog(name: string): string;
  read(path: string): string;
  /** Everything of guest `id` is gone: its segments, its device model, its tap sockets. */
  allGone(t: Tap, id: number, what: string): Promise<void>;
}

export async function bootGuests(t: Tap): Promise<BootGuests> {
  const h = await startHost(t, { memory: 1024, pcpus: 2 });
  const xs = await xenstore(t, h);
  const images = new Map<string, string>();
  const image = (variant: string): string => {
    let p = images.get(variant);
    if (p) return p;
    const bin = nasmBuild(t, ASM, join(h.root, `boot-${variant || 'hello'}.bin`), variant ? [variant] : []);
    const img = Buffer.alloc(1 << 20);
    if (bin) img.set(bin, 0);
    p = join(h.root, `boot-${variant || 'hello'}.img`);
    writeFileSync(p, img);
    images.set(variant, p);
    return p;
  };
  const serialLog = (name: string) => join(h.rundir, 'logs', 'console', `${name}.log`);
  const dmLog = (name: string) => join(h.rundir, 'logs', `qemu-dm-${name}.log`);
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
  return {
    h, xs, serialLog, dmLog, read,
    async create(name, variant, extra = []) {
      const cfg = writeCfg(h, `${name}.cfg`, [
        'type = "hvm"', `name = "${name}"`, 'memory = 32', 'videoram = 16', 'serial = "pty"', 'boot = "c"',
        `disk = [ 'file:${image(variant)},hda,w' ]`, "vif = [ 'bridge=xenbr0,model=e1000' ]", ...extra,
      ].join('\n'));
      await xlOk(h, 'create', cfg);
      return (await row(h, name))!.id;
    },
    booted: (name, from = 0, timeout = 60_000) => waitFor(
      () => read(serialLog(name)).slice(from).includes('PM timer') || null, timeout, `${name} to boot\n${read(dmLog(name)).slice(-2000)}`),
    async allGone(t, id, what) {
      await waitFor(() => !shmList(shmPrefix(h.name)).some((s) => s.includes(`.dom${id}.`)), 10_000, `d${id}'s segments gone (${what})`);
      await waitFor(() => qemuDmPids(h).length === 0, 10_000, `no qemu-dm left (${what})`);
      await waitFor(() => !readdirSync(h.rundir).some((f) => f.startsWith(`vif${id}.`) && f.endsWith('.tap')), 10_000, `d${id}'s tap sockets gone (${what})`);
      const left = shmList(shmPrefix(h.name)).filter((s) => /\.dom\d+\./.test(s) && !/\.dom0\./.test(s));
      const live = new Set((await list(h)).map((r) => r.id));
      t.same(left.filter((s) => !live.has(Number(/\.dom(\d+)\./.exec(s)![1]))), [], `${what}: only Domain-0's and live domains' segments`);
    },
  };
}
