// xl pci-assignable-add / -remove / -list on a host with PCI devices, through
// xend and the hypervisor's registry, with xl's and libxl's messages.
import t from 'tap';
import { readHostRecord, startHost } from '../helpers/host.js';
import { xl, xlOk } from '../host/xl.js';

t.test('xl pci-assignable-add / -list / -remove', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 1, pci: ['e1000', 'e1000'] });
  const owner = (i: number) => readHostRecord(h.rundir)!.pci![i]!.owner;
  t.equal(await xlOk(h, 'pci-assignable-list'), '', 'nothing assignable at boot: Domain-0 has both');
  t.equal(await xlOk(h, 'pci-assignable-add', '0000:04:00.0'), '', 'add');
  t.equal(owner(1), 'quarantine', 'the device is quarantined');
  t.equal(owner(0), 'Domain-0', 'the other stays Domain-0\'s');
  t.equal(await xlOk(h, 'pci-assignable-list'), '0000:04:00.0 \n', 'listed as xl prints it');
  t.equal(await xlOk(h, 'pci-assignable-add', '03:00.0'), '', 'a BDF without its segment');
  t.equal(await xlOk(h, 'pci-assignable-list'), '0000:03:00.0 \n0000:04:00.0 \n');
  t.equal(await xlOk(h, 'pci-assignable-add', '03:00.0'), '', 'adding again changes nothing');

  const missing = await xl(h, ['pci-assignable-add', '0000:09:00.0']);
  t.equal(missing.code, 1, 'a device the host does not have: exit 1');
  t.equal(missing.stderr, 'libxl: error: libxl_pci.c: libxl__device_pci_assignable_add: Couldn\'t lstat /sys/bus/pci/devices/0000:09:00.0: No such file or directory\n',
          'with libxl\'s message');
  const bad = await xl(h, ['pci-assignable-add', 'zz:00.0']);
  t.equal(bad.code, 2, 'a malformed BDF: exit 2');
  t.match(bad.stderr, /^pci-assignable-add: malformed BDF "zz:00.0"/, 'with xl\'s message');

  t.equal(await xlOk(h, 'pci-assignable-remove', '0000:04:00.0'), '', 'remove');
  t.equal(owner(1), 'Domain-0', 'back to Domain-0');
  t.equal(await xlOk(h, 'pci-assignable-list'), '0000:03:00.0 \n');
  const gone = await xl(h, ['pci-assignable-remove', '0000:0a:00.0']);
  t.equal(gone.code, 1);
  t.equal(gone.stderr, 'libxl: error: libxl_pci.c: libxl__device_pci_assignable_remove: failed to de-quarantine 0000:0a:00.0\n');
  t.match(await xlOk(h, 'help'), /pci-assignable-list\s+List all the assignable pci devices/, 'in xl help');
});
