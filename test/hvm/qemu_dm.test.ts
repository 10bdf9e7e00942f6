// qemu-dm as its own process, driven as the toolstack drives it: an HVM
// domain built by hand here (SeaBIOS and hvm_info_table in its RAM), qemu-dm
// started with qemu-xen's arguments and a disk, `running` awaited in
// xenstore, then the guest unpaused. SeaBIOS must find qemu-dm's PC
// (i440FX, PIIX3, IDE, platform device, VGA with its BIOS in its ROM BAR),
// print its banner on the debug console, read the disk's boot sector through
// the IDE model and run it: the boot sector's line on COM1 (the serial log)
// and on the VGA text screen (QMP) show it ran.
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { hvmDomain, seabiosMissing, startQemuDm } from '../helpers/hvm.js';
import { nasmBuild, nasmMissing } from '../helpers/nasm.js';
import { qmp } from '../helpers/qmp.js';
import { XsClient } from '../../shared/xenstore/client.js';
import { __HYPERVISOR_domctl } from '../../shared/abi/xen.js';
import { XEN_DOMCTL_getdomaininfo, XEN_DOMINF_blocked } from '../../shared/abi/domctl.js';

const ASM = join(DIST, '..', 'test', 'hvm', 'asm', 'hello_boot.asm');
const skip = seabiosMissing() ?? nasmMissing() ?? false;

t.test('qemu-dm serves SeaBIOS a PC that boots a disk', { skip }, async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const boot = nasmBuild(t, ASM, join(h.root, 'hello_boot.bin'));
  if (!boot) return;
  const disk = join(h.root, 'hda.img');
  const img = Buffer.alloc(1 << 20);
  img.set(boot, 0);
  writeFileSync(disk, img);

  const MiB = 32;
  const d = await hvmDomain(t, h, MiB);
  const domid = d.domid;
  const dm = await startQemuDm(t, h, domid, ['-no-shutdown', '-nodefaults', '-no-user-config', '-name', 'hvm1', '-display', 'none',
    '-serial', 'pty', '-device', 'VGA,vgamem_mb=16', '-boot', 'order=c', '-machine', 'xenfv', '-m', String(MiB),
    '-drive', `file=${disk},if=ide,index=0,media=disk,format=raw`]);
  const xs = await XsClient.connect(join(h.rundir, 'xenstored.sock'));
  t.teardown(() => xs.close());
  t.match(await xs.tryRead(`/local/domain/${domid}/serial/0/tty`), /^\/dev\/pts\/\d+$/, 'its COM1 PTY in xenstore');

  const t0 = Date.now();
  t.equal(await d.unpause(), 0, 'unpaused');
  await waitFor(() => /debugcon: SeaBIOS \(version/.test(dm.output()), 30_000, `the SeaBIOS banner\n${dm.output()}`);
  t.pass(`SeaBIOS's banner on 0x402 after ${Date.now() - t0} ms`);
  const serialLog = join(h.rundir, 'logs', 'console', 'hvm1.log');
  await waitFor(() => existsSync(serialLog) && readFileSync(serialLog, 'utf8').includes('hello from an HVM boot sector'), 60_000,
    `the boot sector's line on COM1\n${dm.output()}`);
  t.pass(`the boot sector ran ${Date.now() - t0} ms after unpause`);
  t.match(dm.output(), /Found 6 PCI devices/, 'SeaBIOS found i440FX, PIIX3, IDE, the PIIX4 PM, the platform device and VGA');
  t.match(dm.output(), /Running option rom at c000:0003/, "SeaBIOS ran the VGA BIOS from the VGA's ROM BAR");
  t.match(dm.output(), /Booting from Hard Disk/, 'and booted the disk');

  const qmpPath = join(h.rundir, `qmp-libxl-${domid}`);
  const text = await waitFor(async () => {
    const s = await qmp<{ lines: string[] }>(qmpPath, 'x-xenemu-text-screen');
    return s.lines[12]?.startsWith('XENEMU HVM BOOT SECTOR') ? s : null;
  }, 10_000, 'the VGA text screen');
  t.ok(text.lines.some((l) => l.includes('SeaBIOS')), 'the text screen also shows SeaBIOS\'s banner');
  const png = join(h.root, 'screen.png');
  await qmp(qmpPath, 'screendump', { filename: png, format: 'png' });
  t.same([...readFileSync(png).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'screendump writes a PNG');

  await waitFor(async () => {
    const i = await d.pc.hypercall<{ flags: number }>(__HYPERVISOR_domctl, XEN_DOMCTL_getdomaininfo, { domain: domid });
    return (i.data!.flags & XEN_DOMINF_blocked) !== 0;
  }, 10_000, 'the halted guest blocked');
  t.pass('a guest halted in HLT is blocked');
});
