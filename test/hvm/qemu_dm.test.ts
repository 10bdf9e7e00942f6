// qemu-dm as its own process, driven as the toolstack drives it: an HVM
// domain built by hand here (SeaBIOS and hvm_info_table in its RAM), qemu-dm
// started with qemu-xen's arguments and a disk, `running` awaited in
// xenstore, then the guest unpaused. SeaBIOS must find qemu-dm's PC
// (i440FX, PIIX3, IDE, platform device, VGA with its BIOS in its ROM BAR),
// print its banner on the debug console, read the disk's boot sector through
// the IDE model and run it: the boot sector's line on COM1 (the serial log)
// and on the VGA text screen (QMP) show it ran.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, productEnv, startHost, waitFor } from '../helpers/host.js';
import { nasmBuild, nasmMissing } from '../helpers/nasm.js';
import { qmp } from '../helpers/qmp.js';
import { HypervisorClient } from '../../shared/xen/hypervisor.js';
import { privcmdEndpoint } from '../../shared/wire/hypercall.js';
import { XsClient } from '../../shared/xenstore/client.js';
import { shmOpen } from '../../shared/shm.js';
import { __HYPERVISOR_domctl } from '../../shared/abi/xen.js';
import {
  XEN_DOMCTL_CDF_hap, XEN_DOMCTL_CDF_hvm, XEN_DOMCTL_createdomain, XEN_DOMCTL_destroydomain, XEN_DOMCTL_getdomaininfo,
  XEN_DOMCTL_unpausedomain, XENEMU_DOMCTL_getsegments, XEN_DOMINF_blocked,
} from '../../shared/abi/domctl.js';
import { HVM_INFO_PADDR, encodeHvmInfoTable } from '../../shared/abi/hvm/hvm_info_table.js';

const SEABIOS = '/usr/share/seabios/bios.bin';
const DOMU = join(DIST, 'processes', 'domu', 'main.js');
const QEMU_DM = join(DIST, 'processes', 'qemu-dm', 'main.js');
const ASM = join(DIST, '..', 'test', 'hvm', 'asm', 'hello_boot.asm');
const skip = !existsSync(SEABIOS) ? `${SEABIOS} missing: install the Debian package seabios (.ci/setup does)` : nasmMissing() ?? false;

t.test('qemu-dm serves SeaBIOS a PC that boots a disk', { skip }, async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const boot = nasmBuild(t, ASM, join(h.root, 'hello_boot.bin'));
  if (!boot) return;
  const disk = join(h.root, 'hda.img');
  const img = Buffer.alloc(1 << 20);
  img.set(boot, 0);
  writeFileSync(disk, img);

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
  const dm = spawn(process.execPath, [QEMU_DM, '-xen-domid', String(domid), '-no-shutdown', '-nodefaults', '-no-user-config',
    '-name', 'hvm1', '-display', 'none', '-serial', 'pty', '-device', 'VGA,vgamem_mb=16', '-boot', 'order=c', '-machine', 'xenfv',
    '-m', String(MiB), '-drive', `file=${disk},if=ide,index=0,media=disk,format=raw`],
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
  t.equal((await pc.hypercall(__HYPERVISOR_domctl, XEN_DOMCTL_unpausedomain, { domain: domid })).ret, 0, 'unpaused');
  await waitFor(() => /debugcon: SeaBIOS \(version/.test(out), 30_000, `the SeaBIOS banner\n${out}`);
  t.pass(`SeaBIOS's banner on 0x402 after ${Date.now() - t0} ms`);
  const serialLog = join(h.rundir, 'logs', 'console', 'hvm1.log');
  await waitFor(() => existsSync(serialLog) && readFileSync(serialLog, 'utf8').includes('hello from an HVM boot sector'), 60_000,
    `the boot sector's line on COM1\n${out}`);
  t.pass(`the boot sector ran ${Date.now() - t0} ms after unpause`);
  t.match(out, /Found 5 PCI devices/, 'SeaBIOS found i440FX, PIIX3, IDE, the platform device and VGA');
  t.match(out, /Running option rom at c000:0003/, "SeaBIOS ran the VGA BIOS from the VGA's ROM BAR");
  t.match(out, /Booting from Hard Disk/, 'and booted the disk');

  const qmpPath = join(h.rundir, `qmp-libxl-${domid}`);
  const text = await waitFor(async () => {
    const s = await qmp<{ lines: string[] }>(qmpPath, 'x-xenemu-text-screen');
    return s.lines[12]?.startsWith('XENEMU HVM BOOT SECTOR') ? s : null;
  }, 10_000, 'the VGA text screen');
  t.ok(text!.lines.some((l) => l.includes('SeaBIOS')), 'the text screen also shows SeaBIOS\'s banner');
  const png = join(h.root, 'screen.png');
  await qmp(qmpPath, 'screendump', { filename: png, format: 'png' });
  t.same([...readFileSync(png).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'screendump writes a PNG');

  await waitFor(async () => {
    const i = await pc.hypercall<{ flags: number }>(__HYPERVISOR_domctl, XEN_DOMCTL_getdomaininfo, { domain: domid });
    return (i.data!.flags & XEN_DOMINF_blocked) !== 0;
  }, 10_000, 'the halted guest blocked');
  t.pass('a guest halted in HLT is blocked');
});
