// PCI passthrough to an HVM guest: Debian's i386 Linux with the host's
// e1000 and NVMe (`pci = [ '03:00.0', '04:00.0' ]`) on its bus, shown by
// qemu-dm's xen_pt, driven by its own e1000 and nvme drivers. The BARs are
// at addresses the guest chose (the device's own stay where the host placed
// them), mapped by memory_mapping into the guest's passthrough page and
// reached by its vCPU straight through the BAR channel: no ioreq server
// claims them. The guest has a local APIC and an IOAPIC (xl.cfg apic=1, the
// default): the e1000 (no MSI capability) on INTx through bind_pt_irq, the
// NVMe on MSI-X (its table trapped by qemu-dm, each vector bound with
// bind_pt_irq PT_IRQ_TYPE_MSI); DMA into the guest's RAM through the IOMMU.
// One boot: e1000 pings the TAP side in the host's namespace, md5sum of
// nvme0n1 is the image file's.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHost, waitFor } from '../helpers/host.js';
import { busyboxShell, seabiosMissing } from '../helpers/hvm.js';
import { list, PtyClient, writeCfg, xenstore, xl, xlOk } from '../host/xl.js';
import { buildHvmImage } from '../../launcher/hvm_image.js';
import { makeAssignable, rootWithImages } from '../helpers/pci.js';
import { netnsUnavailable, throwawayNetns } from '../net/netns_helpers.js';
import { ip } from '../../shared/net/netns.js';
import { shmOpen } from '../../shared/shm.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import { XEN_DMOP_IO_RANGE_MEMORY } from '../../shared/abi/hvm/dm_op.js';
import { PT_KIND_MEM, XENEMU_HVM_SEGMENT_PAGES, readPtMappings, readRanges } from '../../shared/abi/hvm/xenemu_hvm.js';
import { PciCfgClient } from '../../shared/hw/pci_cfg_client.js';
import { parseBdf, pciConfigSocket } from '../../shared/wire/pcidev.js';

t.setTimeout(420_000);

const NIC = '0000:03:00.0';
const NVME = '0000:04:00.0';
const MIB = 4;

let image: string | null = null;
let why: string | false = seabiosMissing() ?? netnsUnavailable() ?? false;
if (!why) {
  try { image = (await buildHvmImage({ log: (m) => t.comment(`hvm-image: ${m}`) })).iso; } catch (err) { why = `cannot build the HVM Linux image: ${(err as Error).message}`; }
}

t.test('HVM Linux drives the host\'s e1000 and NVMe passed through', { skip: why, timeout: 400_000 }, async (t) => {
  const { root, images } = rootWithImages(['nvme.img'], MIB << 20);
  const data = randomBytes(MIB << 20);
  writeFileSync(images[0]!, data);
  const ns = throwawayNetns(t);
  const h = await startHost(t, { memory: 1024, pcpus: 2, root, netns: ns, pci: ['e1000', `nvme:${images[0]}`] });
  await makeAssignable(h, NIC, NVME);
  ip(['addr', 'add', '10.0.3.1/24', 'dev', 'xpt03'], ns);
  ip(['link', 'set', 'xpt03', 'up'], ns);

  const cfg = writeCfg(h, 'pt.cfg', [
    'type = "hvm"', 'name = "pt"', 'memory = 144', 'videoram = 16', 'serial = "pty"', 'boot = "d"', 'on_crash = "preserve"',
    `disk = [ 'file:${image},hdc:cdrom,r' ]`, "pci = [ '03:00.0', '04:00.0' ]",
  ].join('\n'));
  const t0 = Date.now();
  await xlOk(h, 'create', cfg);
  t.teardown(() => xl(h, ['destroy', 'pt']));
  const id = (await list(h)).find((r) => r.name === 'pt')!.id;
  const xs = await xenstore(t, h);
  const pty = new PtyClient(await xs.readString(`/local/domain/${id}/serial/0/tty`));
  t.teardown(() => pty.close());
  const dmLog = () => readFileSync(join(h.rundir, 'logs', 'qemu-dm-pt.log'), 'utf8');
  const run = await busyboxShell(pty, join(h.rundir, 'logs', 'console', 'pt.log'), 300_000).catch((e: Error) => {
    t.comment(dmLog().slice(-1500));
    for (const f of readdirSync(join(h.rundir, 'logs'))) {
      if (/hypervisor|pcidev/.test(f)) t.comment(`== ${f}\n${readFileSync(join(h.rundir, 'logs', f), 'utf8').slice(-3000)}`);
    }
    throw e;
  });
  t.pass(`Linux to its shell ${((Date.now() - t0) / 1000).toFixed(1)} s after xl create`);

  // lspci -n as sysfs has it (busybox has no lspci): slot, class, vendor:device.
  const lspci = await run('for d in /sys/bus/pci/devices/*; do echo "${d##*/} $(cat $d/class) $(cat $d/vendor):$(cat $d/device)"; done');
  t.comment(lspci);
  const NIC_RE = /^0000:00:(\S+) 0x020000 0x8086:0x100e$/m;
  const NVME_RE = /^0000:00:(\S+) 0x010802 0x1b36:0x0010$/m;
  t.match(lspci, NIC_RE, 'the host\'s e1000 on the guest\'s bus');
  t.match(lspci, NVME_RE, 'the host\'s NVMe');
  const nicSlot = NIC_RE.exec(lspci)?.[1] ?? 'none';
  const nvmeSlot = NVME_RE.exec(lspci)?.[1] ?? 'none';
  t.match(dmLog(), /xen_pt 0000:03:00\.0: .*INTA bound to machine GSI 16/, 'qemu-dm bound the e1000\'s INTx (bind_pt_irq)');

  // The BARs: the guest's addresses are its own; the devices' are the host's.
  const res = (slot: string) => run(`head -1 /sys/bus/pci/devices/0000:00:${slot}/resource`);
  const guestBar = (line: string) => Number(line.trim().split(/\s+/)[0]);
  const nicBar = guestBar(await res(nicSlot));
  const nvmeBar = guestBar(await res(nvmeSlot));
  const cfgNic = await PciCfgClient.connect(pciConfigSocket(h.rundir, NIC));
  t.teardown(() => cfgNic.close());
  const hostNicBar = ((await cfgNic.read(0x10, 4)) & ~0xf) >>> 0;
  t.ok(nicBar > 0 && nicBar !== hostNicBar, `the guest placed the e1000's BAR0 at 0x${nicBar.toString(16)}, the device's stays at 0x${hostNicBar.toString(16)}`);

  // What the vCPU routes by: the passthrough page maps both BAR0s; no ioreq server claims them.
  const seg = shmOpen(`/xenemu.${h.name}.dom${id}.hvm`, XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE);
  const i32 = new Int32Array(seg);
  const dv = new DataView(seg);
  const pt = readPtMappings(i32, dv).list.filter((m) => m.kind === PT_KIND_MEM);
  const covers = (a: number) => pt.find((m) => a >= m.first * PAGE_SIZE && a < (m.first + m.nr) * PAGE_SIZE);
  t.equal(covers(nicBar)?.sbdf, parseBdf(NIC), 'the e1000\'s BAR0 is in the passthrough page');
  t.equal(covers(nvmeBar)?.sbdf, parseBdf(NVME), 'so is the NVMe\'s');
  const claimed = readRanges(i32, dv).ranges.filter((r) => r.type === XEN_DMOP_IO_RANGE_MEMORY &&
    [nicBar, nvmeBar].some((a) => BigInt(a) >= r.start && BigInt(a) <= r.end));
  t.same(claimed, [], 'no ioreq server claims either BAR: qemu-dm never sees an access to them');

  // The data paths: DMA through the IOMMU into the guest's RAM, INTx through bind_pt_irq.
  await t.test('e1000 and nvme drivers move data', async (t) => {
    await run('ifconfig eth0 10.0.3.2 netmask 255.255.255.0 up');
    await waitFor(async () => /RUNNING/.test(await run('ifconfig eth0')), 20_000, 'eth0 link up');
    const ping = await run('ping -c 3 10.0.3.1', 60_000);
    if (!/3 packets received/.test(ping)) {
      t.comment(ping);
      t.comment(await run('ifconfig eth0; dmesg | grep -i -E "e1000|nvme"; cat /proc/interrupts'));
      t.comment(dmLog().slice(-3000));
    }
    t.match(ping, /3 packets transmitted, 3 packets received/, 'eth0 (the host\'s e1000) pings 10.0.3.1 on xpt03 in the host\'s namespace');
    t.match(await run('cat /proc/interrupts'), /e1000|eth0/, 'the e1000\'s interrupt line counts');

    // NVMe: MSI-X through bind_pt_irq, DMA into the guest's RAM.
    await waitFor(async () => /nvme0n1/.test(await run('cat /proc/partitions', 60_000)), 60_000, 'nvme0n1 appears');
    const nvmeIrqs = (text: string) => text.split('\n').filter((l) => /nvme0q\d/.test(l))
      .map((l) => ({ name: /nvme0q\d+/.exec(l)![0], count: Number(l.trim().split(/\s+/)[1]), msi: /PCI-MSI/.test(l) }));
    const before = nvmeIrqs(await run('cat /proc/interrupts'));
    t.equal((await run('md5sum /dev/nvme0n1', 120_000)).trim(), `${createHash('md5').update(data).digest('hex')}  /dev/nvme0n1`,
      'md5sum /dev/nvme0n1 is the image file\'s');
    const irqs = await run('cat /proc/interrupts');
    t.comment(irqs);
    t.match(irqs, /IO-APIC.*eth0/, 'the e1000 (no MSI capability) on INTx, through the IOAPIC');
    const after = nvmeIrqs(irqs);
    t.ok(after.length >= 2 && after.every((q) => q.msi), `the nvme driver's queues on MSI-X (${after.map((q) => q.name).join(', ')}: PCI-MSI)`);
    const ioQueues = after.filter((q) => q.name !== 'nvme0q0');
    const moved = ioQueues.reduce((n, q) => n + q.count - (before.find((b) => b.name === q.name)?.count ?? 0), 0);
    t.ok(moved >= 4, `the md5sum's reads completed by MSI-X messages (${moved} on the I/O queue vectors)`);
    t.match(dmLog(), /xen_pt 0000:04:00\.0: MSI-X entry 1 bound: pirq \d+, vector 0x[0-9a-f]+/, 'qemu-dm bound the I/O queue\'s entry (bind_pt_irq PT_IRQ_TYPE_MSI)');
    t.match(await run('dmesg'), /IOAPIC\[0\]|IO-APIC/, 'Linux set up the IOAPIC');
    // A pin seen high after the device dropped it is a storm of unhandled interrupts (Linux disables the line);
    // one never seen is a queue that stalls.
    t.notMatch(await run('dmesg'), /nobody cared|NETDEV WATCHDOG|Detected Tx Unit Hang|QID \d+ timeout/,
      'no disabled line, no transmit timeout, no NVMe command timeout');
    t.notMatch(dmLog(), /ioreq\(s\) reached qemu-dm inside BAR/, 'no access to either BAR reached qemu-dm');
  });

  await xlOk(h, 'destroy', 'pt');
  await waitFor(async () => {
    const r = JSON.parse(readFileSync(join(h.rundir, 'host.json'), 'utf8')) as { pci?: Array<{ bdf: string; owner: string }> };
    return (r.pci ?? []).filter((d) => d.owner === 'quarantine').length === 2;
  }, 15_000, 'both devices back in quarantine after destroy');
});
