// Debian's i386 Linux as an HVM guest, through the whole path: `xl create`
// of an HVM config with a CD-ROM (launcher/hvm_image.ts builds it once and
// caches it), SeaBIOS, isolinux, the kernel, ata_piix and e1000 on
// qemu-dm's PC, a busybox shell on COM1 reached through its PTY. Then:
// uname, the hard disk read by the guest (IDE with bus-master DMA) matching
// the host's md5, the emulated NIC pinging a PV guest across xenbr0, the
// ACPI tables SeaBIOS built around qemu-dm's PIIX4 (Linux finds them, takes
// its SCI and the PM timer's port), and busybox's poweroff -f
// ending the domain by ACPI S5 (on_poweroff destroy).
// The one long boot of the suite.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHost, waitFor } from '../helpers/host.js';
import { busyboxShell, seabiosMissing } from '../helpers/hvm.js';
import { list, PtyClient, writeCfg, xenstore, xl, xlOk } from '../host/xl.js';
import { netGuest } from '../net/guests.js';
import { buildHvmImage } from '../../launcher/hvm_image.js';

// The suite's one Linux boot: longer than tap's default per-file bound on a loaded 2-CPU machine.
t.setTimeout(300_000);

let image: string | null = null;
let why: string | false = seabiosMissing() ?? false;
if (!why) {
  try { image = (await buildHvmImage({ log: (m) => t.comment(`hvm-image: ${m}`) })).iso; } catch (err) { why = `cannot build the HVM Linux image: ${(err as Error).message}`; }
}

t.test('Debian i386 Linux boots as an HVM guest, reads its disk by DMA and pings a PV guest', { skip: why, timeout: 240_000 }, async (t) => {
  const h = await startHost(t, { memory: 1024, pcpus: 2 });
  const pv = await netGuest(t, h, 'pv', "vif = ['bridge=xenbr0,ip=10.0.0.2']");

  const disk = join(h.root, 'hda.img');
  writeFileSync(disk, randomBytes(8 << 20));
  const md5 = createHash('md5').update(readFileSync(disk)).digest('hex');
  const cfg = writeCfg(h, 'linux.cfg', [
    'type = "hvm"', 'name = "linux"', 'memory = 144', 'videoram = 16', 'serial = "pty"', 'boot = "dc"', 'on_crash = "preserve"',
    `disk = [ 'file:${disk},hda,w', 'file:${image},hdc:cdrom,r' ]`,
    "vif = [ 'bridge=xenbr0,model=e1000,mac=00:16:3e:00:10:01' ]",
  ].join('\n'));
  const t0 = Date.now();
  await xlOk(h, 'create', cfg);
  t.teardown(() => xl(h, ['destroy', 'linux']));
  const id = (await list(h)).find((r) => r.name === 'linux')!.id;
  const xs = await xenstore(t, h);
  const pty = new PtyClient(await xs.readString(`/local/domain/${id}/serial/0/tty`));
  t.teardown(() => pty.close());
  const run = await busyboxShell(pty, join(h.rundir, 'logs', 'console', 'linux.log'));
  t.pass(`Linux to its shell ${((Date.now() - t0) / 1000).toFixed(1)} s after xl create`);

  t.match(await run('uname -a'), /^Linux hvm 6\.1\.\S+-686 .* i686 GNU\/Linux/m, 'uname -a: the 686 kernel');
  t.match(await run('cat /sys/block/sda/size'), /^16384$/m, 'sda: the 8 MiB image');
  t.match(await run('cat /proc/interrupts | grep ata_piix'), /ata_piix/, 'ata_piix has its interrupts');
  t.equal((await run('md5sum /dev/sda', 120_000)).trim(), `${md5}  /dev/sda`, "md5sum /dev/sda matches the host's");
  // apic=1 (xl.cfg's default): the vCPU's local APIC and IOAPIC, as Linux found them in SeaBIOS's MADT.
  const irqs = await run('cat /proc/interrupts');
  t.match(irqs, /^\s*1[45]:\s+[1-9]\d*\s+IO-APIC\s.*ata_piix/m, 'the IDE interrupts arrive through the IOAPIC');
  t.match(irqs, /^\s*LOC:\s+[1-9]/m, 'the local APIC timer ticks');
  t.match(await run('cat /sys/block/sda/device/../../scsi_host/*/../../*/ata_port/*/dev* 2>/dev/null; dmesg | grep -i "DMA"'), /DMA/, 'libata drives it by DMA');

  await run('ifconfig eth0 10.0.0.9 netmask 255.255.255.0 up');
  const ping = await run('ping -c 3 10.0.0.2', 60_000);
  if (!/3 packets received/.test(ping)) {
    t.comment(ping);
    t.comment(await run('ifconfig eth0; dmesg | grep -i e1000; cat /proc/interrupts'));
    t.comment(readFileSync(join(h.rundir, 'logs', 'qemu-dm-linux.log'), 'utf8').slice(-2000));
  }
  t.match(ping, /3 packets transmitted, 3 packets received/, 'eth0 (e1000) pings the PV guest across xenbr0');
  t.match(await pv.run('ping -c 2 10.0.0.9'), /2 received|2 packets received/, 'and the PV guest pings back');

  const acpi = await run('dmesg | grep -i -E "ACPI|RSDP"');
  t.notMatch(acpi, /A valid RSDP was not found/, 'Linux found an RSDP');
  t.match(acpi, /ACPI: RSDP 0x[0-9A-F]+ .*\(v00 BOCHS \)/, "it is SeaBIOS's (BOCHS)");
  t.match(acpi, /ACPI: FACP 0x/, 'with a FADT');
  t.match(acpi, /ACPI: DSDT 0x/, 'and a DSDT');
  t.match(await run('cat /proc/interrupts'), /^\s*9:.*acpi/m, 'the SCI is IRQ 9, requested by the ACPI core');
  t.match(acpi, /ACPI: PM-Timer IO Port: 0xb008/, "the FADT's PM timer block, which the vCPU answers");
  // acpi_pm registers only if its rate, checked against the PIT over 50 ms at
  // boot, is within 5%: a vCPU descheduled in that window (a loaded host) fails it.
  t.comment(`clocksources: ${(await run('cat /sys/devices/system/clocksource/clocksource0/available_clocksource')).trim()}; ` +
    `${(await run('dmesg | grep -i pm-timer')).trim()}`);
  const id2 = (await list(h)).find((r) => r.name === 'linux')!.id;
  pty.write('poweroff -f\r');
  await waitFor(async () => !(await list(h)).some((r) => r.id === id2), 60_000, 'poweroff -f ended the domain (ACPI S5, on_poweroff destroy)');
  t.match(readFileSync(join(h.rundir, 'logs', 'qemu-dm-linux.log'), 'utf8'), /ACPI S5 \(soft off\): SHUTDOWN_poweroff/,
    'through the PIIX4: SLP_TYP 0 with SLP_EN');
});
