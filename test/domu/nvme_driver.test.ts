// The PV kernel's NVMe driver (processes/domu/drivers/nvme.ts) against the
// NVMe model (shared/hw/nvme.ts) through an in-process PciDeviceHandle:
// probe and bring-up, I/O through PRP lists checked by md5 against the
// back end, MSI-X and INTx completion, errors, and the namespace as nvme0n1
// under the shell's lsblk, dd and md5sum.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { MemoryBlockBackend } from '../../shared/hw/block.js';
import { NvmeDriver, NvmeError, registerNvme } from '../../processes/domu/drivers/nvme.js';
import { BlockDevices } from '../../processes/domu/drivers/blkdev.js';
import { blkCommands, type Mounts } from '../../processes/domu/commands/blk.js';
import type { BlkfrontDeps } from '../../shared/front/blkfront.js';
import type { Command, KernelServices } from '../../processes/domu/services.js';
import { InProcessNvme } from './inproc_pci.js';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

function setup(t: { teardown(fn: () => unknown): void }, opts: { mib?: number; msix?: boolean; mdts?: number } = {}) {
  const disk = new MemoryBlockBackend(Uint8Array.from(randomBytes((opts.mib ?? 8) << 20)));
  const h = new InProcessNvme({ disk, msix: opts.msix, nvme: { mdts: opts.mdts } });
  t.teardown(() => h.close());
  return { disk, h };
}

t.test('probe over MSI-X: identify, one I/O queue pair, 512-byte blocks', async (t) => {
  const { disk, h } = setup(t);
  const logs: string[] = [];
  const d = await NvmeDriver.probe(h, { log: (m) => logs.push(m) });
  t.equal(d.name, 'nvme0n1');
  t.equal(d.devid, 259 << 8, 'blkext major 259, minor 0');
  t.equal(d.sectors, disk.size / 512, 'namespace size');
  t.equal(d.model, 'xenemu NVMe');
  t.equal(d.serial, 'XENEMU0001');
  t.equal(d.maxRequestBytes, 512 << 10, 'MDTS 7: 512 KiB per command');
  t.equal(d.msixVectors, 2, 'two MSI-X vectors: admin and I/O');
  t.ok(d.features.flush, 'volatile write cache: flushes are sent');
  t.match(logs.join('\n'), /nvme nvme0: xenemu NVMe XENEMU0001: nvme0n1 8 MiB, MSI-X 2/, 'a probe line in the kernel log');
  t.equal((await h.cfgRead(0x04, 2)) & 0x6, 0x6, 'memory decode and bus master on');
  t.ok(h.delivered.msix.get(0)! > 0, 'admin completions came on vector 0');
  t.equal(h.delivered.intx, 0, 'no INTx');

  const one = new Uint8Array(512);
  await d.read(0, one);
  t.equal(md5(one), md5(disk.data.subarray(0, 512)), 'sector 0');
  t.ok(h.delivered.msix.get(1)! > 0, 'I/O completions come on vector 1');
  await d.shutdown();
  t.equal(h.allocated, 0, 'every DMA page freed after shutdown');
});

t.test('read, write and flush round trips through PRP lists; md5 against the back end', async (t) => {
  const { disk, h } = setup(t, { mib: 16, mdts: 10 });
  const d = await NvmeDriver.probe(h);
  t.equal(d.maxRequestBytes, 4 << 20, 'MDTS 10: 4 MiB per command, PRP lists chain');
  let flushes = 0;
  const flush = disk.flush.bind(disk);
  disk.flush = () => { flushes++; flush(); };

  // Sizes: one page, two pages (PRP2 is data), three (a list), 3 MiB (chained lists), 9 MiB (split in commands).
  for (const [sector, bytes] of [[1, 4096], [100, 8192], [333, 12288], [2000, 3 << 20], [9000, 9 << 20], [7, 512 * 3]] as const) {
    const data = Uint8Array.from(randomBytes(bytes));
    await d.write(sector, data);
    t.equal(md5(disk.data.subarray(sector * 512, sector * 512 + bytes)), md5(data), `write ${bytes} bytes at ${sector} reached the back end`);
    const back = new Uint8Array(bytes);
    await d.read(sector, back);
    t.equal(md5(back), md5(data), `read back ${bytes} bytes`);
  }
  await d.flush();
  t.equal(flushes, 1, 'flush reached the back end');
  t.equal(h.dev.nvme.faults.prp_offset + h.dev.nvme.faults.data_dma_fault + h.dev.nvme.faults.prp_dma_fault, 0, 'no PRP the model refused');

  // Many at once: the queue's slots bound what is in flight.
  const parts = Array.from({ length: 600 }, (_, i) => ({ sector: 20000 + i * 8, data: Uint8Array.from(randomBytes(4096)) }));
  await Promise.all(parts.map((p) => d.write(p.sector, p.data)));
  const all = await Promise.all(parts.map(async (p) => { const b = new Uint8Array(4096); await d.read(p.sector, b); return md5(b) === md5(p.data); }));
  t.ok(all.every(Boolean), '600 concurrent 4 KiB writes and reads, all intact');
  t.equal(d.stats.errors, 0);

  await d.discard(100, 16);
  t.equal(h.dev.nvme.faults.lba_range, 0, 'discard accepted');
  await t.rejects(d.read(d.sectors, new Uint8Array(512)), RangeError, 'the driver refuses sectors past the end');
  await d.shutdown();
  t.equal((h.dev.nvme.status >>> 2) & 3, 2, 'shutdown complete (CSTS.SHST)');
});

t.test('INTx when MSI-X is not granted: a level interrupt, EOI after the CQ is reaped', async (t) => {
  const { disk, h } = setup(t, { msix: false });
  const d = await NvmeDriver.probe(h);
  t.equal(d.msixVectors, 0, 'INTx');
  const data = Uint8Array.from(randomBytes(64 << 10));
  await d.write(50, data);
  const back = new Uint8Array(64 << 10);
  await d.read(50, back);
  t.equal(md5(back), md5(data), 'round trip over INTx');
  t.equal(md5(disk.data.subarray(50 * 512, 50 * 512 + data.length)), md5(data));
  t.ok(h.delivered.intx >= 3, 'completions came as INTx upcalls');
  t.equal(h.dev.nvme.interruptLevel, 0, 'the line is low once everything is reaped');
  t.equal(h.delivered.msix.size, 0, 'no MSI-X');
  await d.shutdown();
});

t.test('device errors reach the caller as NvmeError; probe failures name their step', async (t) => {
  const { h } = setup(t, { mib: 1 });
  const d = await NvmeDriver.probe(h);
  // A read that the back end cannot do: the namespace grew smaller under the driver.
  (h.dev.nvme as unknown as { nsze: number }).nsze = 8;
  const e = await d.read(100, new Uint8Array(512)).catch((x: unknown) => x);
  t.ok(e instanceof NvmeError, 'NvmeError');
  t.equal((e as NvmeError).status, 0x80, 'LBA Out of Range');
  t.equal(d.stats.errors, 1, 'counted');
  await d.shutdown();

  const notNvme = new InProcessNvme({ disk: new MemoryBlockBackend(new Uint8Array(1 << 20)) });
  t.teardown(() => notNvme.close());
  const cfgRead = notNvme.cfgRead.bind(notNvme);
  notNvme.cfgRead = async (off, size) => (off === 0x08 ? 0x02000000 : cfgRead(off, size));
  await t.rejects(NvmeDriver.probe(notNvme), /class 0x20000 is not NVMe/, 'a NIC is refused');
  t.equal(notNvme.allocated, 0, 'nothing left allocated');
});

t.test('nvme0n1 under the shell: lsblk, dd and md5sum', async (t) => {
  const { disk, h } = setup(t, { mib: 4 });
  const log: string[] = [];
  const deps = { log: (m: string) => log.push(m) } as unknown as BlkfrontDeps; // xenbus is not used: no vbds here
  const disks = new BlockDevices(deps, 1);
  const connected: string[] = [];
  disks.onConnect = (dev) => { connected.push(dev.name); };
  const d = await registerNvme(disks, h);
  t.same(connected, ['nvme0n1'], 'registered as a disk');
  const mounts: Mounts = { root: null };
  const cmds = new Map(blkCommands(disks, mounts).map((c) => [c.name, c] as [string, Command]));
  const run = async (line: string) => {
    let out = '';
    const rc = await cmds.get(line.split(' ')[0]!)!.run(line.split(' '), { out: (s) => { out += s; }, signal: new AbortController().signal }, {} as KernelServices);
    return { rc, out };
  };
  const ls = await run('lsblk');
  t.match(ls.out, /^nvme0n1 259:0 +4M +0 disk/m, 'lsblk lists nvme0n1');
  const dd = await run('dd if=/dev/urandom of=/dev/nvme0n1 bs=64K count=16 seek=2');
  t.equal(dd.rc, 0, dd.out);
  t.match(dd.out, /16\+0 records out/);
  const sum = await run('md5sum /dev/nvme0n1');
  t.equal(sum.out, `${md5(disk.data)}  /dev/nvme0n1\n`, 'md5sum of the whole namespace matches the back end');
  const copy = await run('dd if=/dev/nvme0n1 of=/dev/null bs=1M count=4');
  t.equal(copy.rc, 0, 'dd reads the namespace');
  t.equal((await run('mkfs /dev/nvme0n1')).rc, 0, 'a file system on it');
  t.equal((await run('write hello from nvme')).rc, 0);
  mounts.root = null;
  const remounted = await run('mount /dev/nvme0n1');
  t.equal(remounted.rc, 0, 'mounted again from the disk');
  t.equal((await run('cat hello')).out, 'from nvme\n', 'the file reads back');
  await d.shutdown();
});
