// HVM domains for the tests that drive the pieces by hand, as the HVM
// builder and the toolstack do: a domain with SeaBIOS and an hvm_info_table
// in its RAM, and a qemu-dm process with qemu-xen's arguments.
import { spawn } from 'node:child_process';
import type { PtyClient } from '../../launcher/pty_client.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, productEnv, waitFor, type TestHost } from './host.js';
import { HypervisorClient } from '../../shared/xen/hypervisor.js';
import { privcmdEndpoint } from '../../shared/wire/hypercall.js';
import { XsClient } from '../../shared/xenstore/client.js';
import { shmOpen } from '../../shared/shm.js';
import { __HYPERVISOR_domctl } from '../../shared/abi/xen.js';
import {
  XEN_DOMCTL_CDF_hap, XEN_DOMCTL_CDF_hvm, XEN_DOMCTL_createdomain, XEN_DOMCTL_destroydomain, XEN_DOMCTL_unpausedomain,
  XENEMU_DOMCTL_getsegments,
} from '../../shared/abi/domctl.js';
import { HVM_INFO_PADDR, encodeHvmInfoTable } from '../../shared/abi/hvm/hvm_info_table.js';

export const SEABIOS = '/usr/share/seabios/bios.bin';
export const DOMU_MAIN = join(DIST, 'processes', 'domu', 'main.js');
export const QEMU_DM_MAIN = join(DIST, 'processes', 'qemu-dm', 'main.js');

export function seabiosMissing(): string | null {
  return existsSync(SEABIOS) ? null : `${SEABIOS} missing: install the Debian package seabios (.ci/setup does)`;
}

interface Tap { teardown(fn: () => unknown): void }

export interface HvmDomain {
  domid: number;
  pc: HypervisorClient;
  mem: Uint8Array;
  unpause(): Promise<number>;
}

/** A paused HVM domain of `MiB` whose RAM holds SeaBIOS below 1 MiB and the hvm_info_table. */
export async function hvmDomain(t: Tap, h: TestHost, MiB: number): Promise<HvmDomain> {
  const pc = HypervisorClient.privcmd(privcmdEndpoint(h.rundir));
  t.teardown(() => pc.close());
  const c = await pc.hypercall<{ domain: number }>(__HYPERVISOR_domctl, XEN_DOMCTL_createdomain,
    { max_vcpus: 1, memory_kb: MiB * 1024, flags: XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap, xenemu: { program: DOMU_MAIN } });
  if (c.ret < 0) throw new Error(`createdomain: ${c.ret}`);
  const domid = c.data!.domain;
  t.teardown(() => pc.hypercall(__HYPERVISOR_domctl, XEN_DOMCTL_destroydomain, { domain: domid }));
  const seg = (await pc.hypercall<{ mem: string; mem_bytes: number }>(__HYPERVISOR_domctl, XENEMU_DOMCTL_getsegments, { domain: domid })).data!;
  const mem = new Uint8Array(shmOpen(seg.mem, seg.mem_bytes));
  const bios = readFileSync(SEABIOS);
  mem.set(bios, 0x100000 - bios.length);
  mem.set(encodeHvmInfoTable({ apicMode: 1, nrVcpus: 1, lowMemPgend: (MiB << 20) >> 12, reservedMemPgstart: 0xfeff0, highMemPgend: 0 }), HVM_INFO_PADDR);
  return { domid, pc, mem, unpause: async () => (await pc.hypercall(__HYPERVISOR_domctl, XEN_DOMCTL_unpausedomain, { domain: domid })).ret };
}

export interface QemuDm { output(): string; pid: number }

/** qemu-dm for `domid` with qemu-xen's arguments, up to `running` in xenstore; killed at teardown. */
export async function startQemuDm(t: Tap, h: TestHost, domid: number, args: string[]): Promise<QemuDm> {
  let out = '';
  const dm = spawn(process.execPath, [QEMU_DM_MAIN, '-xen-domid', String(domid), ...args],
    { env: productEnv({ ...h.env, XENEMU_HOST: h.name, XENEMU_HOST_DIR: h.rundir }), stdio: ['ignore', 'pipe', 'pipe'] });
  dm.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  dm.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  t.teardown(() => { dm.kill('SIGKILL'); });
  const xs = await XsClient.connect(join(h.rundir, 'xenstored.sock'));
  try {
    await waitFor(async () => (await xs.tryRead(`/local/domain/0/device-model/${domid}/state`)) === 'running', 20_000, `qemu-dm running\n${out}`);
  } finally {
    xs.close();
  }
  return { output: () => out, pid: dm.pid! };
}

/**
 * Debian's Linux of launcher/hvm_image.ts on `pty`: waits for its busybox
 * shell (the serial log's tail in the error), and gives a command runner
 * that waits for the prompt after the output.
 */
export async function busyboxShell(pty: PtyClient, serialLog: string, timeoutMs = 180_000): Promise<(cmd: string, timeoutMs?: number) => Promise<string>> {
  await pty.until(/xenemu HVM busybox: [^\n]*\n/, 0, timeoutMs).catch((e: Error) => {
    throw new Error(`${e.message}\n--- serial log:\n${existsSync(serialLog) ? readFileSync(serialLog, 'utf8').slice(-3000) : '(none)'}`);
  });
  // busybox's line editing asks the terminal where its cursor is (ESC [ 6 n) after the prompt.
  const prompt = /\/ # (\x1b\[6n)?$/;
  return async (cmd: string, cmdTimeoutMs = 60_000): Promise<string> => {
    await pty.until(prompt, 0, 30_000);
    const from = pty.text.length;
    pty.write(`${cmd}\r`);
    await pty.until(prompt, from + cmd.length, cmdTimeoutMs);
    const out = pty.text.slice(from).replace(/\r/g, '');
    return out.slice(out.indexOf('\n') + 1).replace(prompt, '');
  };
}
