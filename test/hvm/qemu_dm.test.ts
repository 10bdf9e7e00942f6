// qemu-dm as its own process, driven as the toolstack drives it: an HVM
// domain built by hand here (SeaBIOS and hvm_info_table in its RAM), qemu-dm
// started with qemu-xen's arguments, `running` awaited in xenstore, then
// the guest unpaused. SeaBIOS must find qemu-dm's PC (i440FX, PIIX3, IDE,
// platform device, VGA with its ROM) and print its banner.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, productEnv, startHost, waitFor } from '../helpers/host.js';
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

const SEABIOS = '/usr/share/seabios/bios.bin';
const DOMU = join(DIST, 'processes', 'domu', 'main.js');
const QEMU_DM = join(DIST, 'processes', 'qemu-dm', 'main.js');

t.test('qemu-dm serves SeaBIOS a PC', { skip: existsSync(SEABIOS) ? false : `${SEABIOS} missing: apt-get install seabios` }, async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const pc = HypervisorClient.privcmd(privcmdEndpoint(h.rundir));
  t.teardown(() => pc.close());
  const MiB = 32;
  const c = await pc.hypercall<{ domain: number }>(__HYPERVISOR_domctl, XEN_DOMCTL_createdomain,
    { max_vcpus: 1, memory_kb: MiB * 1024, flags: XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap, xenemu: { program: DOMU } });
  const domid = c.data!.domain;
  const seg = (await pc.hypercall<{ mem: string; mem_bytes: number }>(__HYPERVISOR_domctl, XENEMU_DOMCTL_getsegments, { domain: domid })).data!;
  const mem = new Uint8Array(shmOpen(seg.mem, seg.mem_bytes));
  const bios = readFileSync(SEABIOS);
  mem.set(bios, 0x100000 - bios.length);
  mem.set(encodeHvmInfoTable({ apicMode: 1, nrVcpus: 1, lowMemPgend: (MiB << 20) >> 12, reservedMemPgstart: 0xfeff0, highMemPgend: 0 }), HVM_INFO_PADDR);

  let out = '';
  const dm = spawn(process.execPath, [QEMU_DM, '-xen-domid', String(domid), '-name', 'hvm1', '-m', String(MiB), '-serial', 'pty',
    '-device', 'VGA,vgamem_mb=16', '-boot', 'order=cd', '-machine', 'xenfv', '-nodefaults', '-display', 'none'],
  { env: productEnv({ ...h.env, XENEMU_HOST: h.name, XENEMU_HOST_DIR: h.rundir }), stdio: ['ignore', 'pipe', 'pipe'] });
  dm.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  dm.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  t.teardown(() => { dm.kill('SIGKILL'); });
  t.teardown(() => pc.hypercall(__HYPERVISOR_domctl, XEN_DOMCTL_destroydomain, { domain: domid }));

  const xs = await XsClient.connect(join(h.rundir, 'xenstored.sock'));
  t.teardown(() => xs.close());
  await waitFor(async () => (await xs.tryRead(`/local/domain/0/device-model/${domid}/state`)) === 'running', 20_000, `qemu-dm running\n${out}`);
  t.match(await xs.tryRead(`/local/domain/${domid}/serial/0/tty`), /^\/dev\/pts\/\d+$/, 'its COM1 PTY in xenstore');

  const t0 = Date.now();
  t.equal((await pc.hypercall(__HYPERVISOR_domctl, XEN_DOMCTL_unpausedomain, { domain: domid })).ret, 0);
  await waitFor(() => /debugcon: SeaBIOS \(version/.test(out), 30_000, `the SeaBIOS banner\n${out}`);
  t.pass(`banner after ${Date.now() - t0} ms`);
  await waitFor(() => /Booting from|No bootable device|Boot failed/.test(out), 60_000, `SeaBIOS tries to boot\n${out}`);
  t.match(out, /Found \d+ PCI devices/, 'SeaBIOS probed the PCI bus');
  t.comment(out.split('\n').filter((l) => /debugcon|qemu-dm/.test(l)).slice(0, 120).join('\n'));
});
