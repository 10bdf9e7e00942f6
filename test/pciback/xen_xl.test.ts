// Xen 4.17's own xl (Debian's xen-utils, through xenemu's privcmd library,
// docs/xenctrl.md) reads a PV guest's PCI devices from the keys xenemu's
// toolstack writes: its `xl pci-list` prints what xenemu's prints, and its
// `xl list -l` reads the devices back from libxl's record.
import t from 'tap';
import { startHost } from '../helpers/host.js';
import { list, writeCfg, xlOk } from '../host/xl.js';
import { runXen, xenToolsMissing } from '../helpers/xenctrl.js';
import { makeAssignable, rootWithImages } from '../helpers/pci.js';

const missing = xenToolsMissing() ?? false;

t.test("Xen's xl pci-list agrees with xenemu's", { skip: missing }, async (t) => {
  const { root, images } = rootWithImages(['nvme.img']);
  const h = await startHost(t, { memory: 512, pcpus: 2, root, pci: [`nvme:${images[0]}`, 'e1000'] });
  await makeAssignable(h, '0000:03:00.0', '0000:04:00.0');
  await xlOk(h, 'create', writeCfg(h, 'p.cfg', 'name = "p"\nmemory = 32\npci = [ \'03:00.0\', \'04:00.0@7,permissive=1\' ]\n'));
  t.ok((await list(h)).some((r) => r.name === 'p'));
  const ours = await xlOk(h, 'pci-list', 'p');
  t.equal(ours, 'Vdev Device\n00.0 0000:03:00.0\n07.0 0000:04:00.0\n');
  const theirs = await runXen(h, 'xl', ['pci-list', 'p']);
  t.equal(theirs.code, 0, `Xen's xl pci-list (${theirs.stderr})`);
  t.equal(theirs.stdout, ours, 'the same rows');
  // libxl reads its record (libxl-json) back: the devices as libxl_device_pci.
  const l = await runXen(h, 'xl', ['list', '-l', 'p']);
  t.equal(l.code, 0, `Xen's xl list -l (${l.stderr})`);
  const cfg = JSON.parse(l.stdout) as Array<{ config: { pcidevs?: Array<Record<string, unknown>> } }>;
  t.same(cfg[0]!.config.pcidevs, [
    { bus: 3, vfunc_mask: 1, rdm_policy: 'strict' }, { bus: 4, vdevfn: 0x38, vfunc_mask: 1, permissive: true, rdm_policy: 'strict' },
  ], 'pcidevs as libxl reads them');
});
