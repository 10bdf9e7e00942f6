// A PV guest with the host's NVMe controller passed through (`pci = [
// '04:00.0' ]`): pcifront finds it, the kernel's NVMe driver reaches its
// registers through the BAR channel, puts its queues and data in the
// guest's own frames (DMA through the IOMMU) and takes its MSI-X messages
// as pirq events; the namespace is nvme0n1, and reading all of it gives the
// image's bytes. Written data reaches the image. With `pci=nomsi` on its
// command line a guest's driver takes INTx instead (the GSI's pirq). The
// MSI-X completions are posted: the device sets the pirq's port pending in
// the guest's shared_info itself (host.json counts them), INTx never is.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { readHostRecord, startHost, waitFor } from '../helpers/host.js';
import { list, writeCfg, xlOk } from '../host/xl.js';
import { attachGuest } from '../net/guests.js';
import { makeAssignable, rootWithImages } from '../helpers/pci.js';

const MIB = 4;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

t.test('a PV guest\'s nvme0n1 is the host NVMe\'s image', async (t) => {
  const { root, images } = rootWithImages(['nvme.img'], MIB << 20);
  const img = images[0]!;
  const data = randomBytes(MIB << 20);
  writeFileSync(img, data);
  const h = await startHost(t, { memory: 512, pcpus: 2, root, pci: ['e1000', `nvme:${img}`] });
  await makeAssignable(h, '0000:04:00.0');
  await xlOk(h, 'create', writeCfg(h, 'n.cfg', 'name = "n"\nmemory = 64\npci = [ \'04:00.0\' ]\n'));
  const domid = (await list(h)).find((r) => r.name === 'n')!.id;
  const g = await attachGuest(t, h, 'n', domid);
  await waitFor(async () => /nvme0n1/.test(await g.run('lsblk')), 20_000, 'nvme0n1 in lsblk');
  t.match(await g.run('lsblk'), new RegExp(`^nvme0n1 259:0 +${MIB}M +0 disk`, 'm'), 'lsblk lists nvme0n1, the image\'s size');
  t.match(await g.run('dmesg'), /nvme nvme0: .*nvme0n1 4 MiB, MSI-X 2/, 'the driver runs on MSI-X');
  t.equal(await g.run('md5sum /dev/nvme0n1', 30_000), `${md5(data)}  /dev/nvme0n1\n`, 'md5sum of the namespace is the image\'s');
  const msi = () => readHostRecord(h.rundir)?.pci?.find((d) => d.bdf === '0000:04:00.0')?.msi ?? { posted: 0, relayed: 0 };
  await waitFor(() => msi().posted > 0, 5000, 'the posted MSIs in host.json');
  t.ok(msi().posted > msi().relayed, `the I/O queue's MSI-X messages are posted by the device (${JSON.stringify(msi())})`);

  const dd = await g.run('dd if=/dev/urandom of=/dev/nvme0n1 bs=64K count=4 seek=8', 30_000);
  t.match(dd, /4\+0 records out/, 'a write');
  const after = await g.run('md5sum /dev/nvme0n1', 30_000);
  await xlOk(h, 'destroy', 'n');
  const disk = readFileSync(img);
  t.equal(after, `${md5(disk)}  /dev/nvme0n1\n`, 'what the guest wrote is in the image');
  t.notSame(md5(disk), md5(data), 'which changed');

  // pci=nomsi: the driver takes INTx, the level pirq of the device's GSI (EOI after each reap).
  await xlOk(h, 'create', writeCfg(h, 'm.cfg', 'name = "m"\nmemory = 64\nextra = "pci=nomsi"\npci = [ \'04:00.0\' ]\n'));
  const m = await attachGuest(t, h, 'm', (await list(h)).find((r) => r.name === 'm')!.id);
  await waitFor(async () => /nvme0n1/.test(await m.run('lsblk')), 20_000, 'nvme0n1 in m');
  t.match(await m.run('dmesg'), /nvme nvme0: .*nvme0n1 4 MiB, INTx/, 'with pci=nomsi the driver runs on INTx');
  const posted = msi().posted;
  t.equal(await m.run('md5sum /dev/nvme0n1', 30_000), `${md5(disk)}  /dev/nvme0n1\n`, 'and reads the image');
  await new Promise((r) => setTimeout(r, 500)); // the device's counts are sent every 200 ms
  t.equal(msi().posted, posted, 'INTx goes through the hypervisor: nothing more posted');
  await xlOk(h, 'destroy', 'm');
});
