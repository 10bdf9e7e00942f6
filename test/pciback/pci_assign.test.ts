// The toolstack's PCI helpers (processes/dom0/toolstack/pci_assign.ts) and
// io/pciif.h's op codec (shared/abi/io/pciif.ts): pci_encode_bdf, libxl's
// BDF text, libxl's tolerance of ENOSYS for a PV guest, the assignable list
// taken from the hypervisor's registry, and an op written and read back field by
// field at the offsets the layout test holds against libxen-dev.
import t from 'tap';
import { assignFailed, assignableFrom, pciBdfText, pciEncodeBdf } from '../../processes/dom0/toolstack/pci_assign.js';
import { pciInfoPath } from '../../processes/dom0/toolstack/pci.js';
import {
  PCI_DEVFN, PCI_FUNC, PCI_SLOT, XEN_PCI_MAGIC, readPciOp, writePciOp, xen_pci_op, xen_pci_sharedinfo,
} from '../../shared/abi/io/pciif.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';

t.test('pci_encode_bdf and libxl\'s names of a device', async (t) => {
  t.equal(pciEncodeBdf({ domain: 0, bus: 3, dev: 0, func: 0 }), 0x300);
  t.equal(pciEncodeBdf({ domain: 1, bus: 0xff, dev: 0x1f, func: 7 }), 0x1ffff);
  t.equal(pciBdfText({ domain: 0, bus: 3, dev: 0x1f, func: 7 }), '0000:03:1f.7');
  t.equal(pciInfoPath({ domain: 0, bus: 3, dev: 0, func: 1 }), '/libxl/pci/0000-03-00-1');
});

t.test('ENOSYS from the hypervisor fails an HVM assignment only (libxl)', async (t) => {
  t.equal(assignFailed(0, false), false);
  t.equal(assignFailed(-38, false), false, 'ENOSYS, PV: goes on');
  t.equal(assignFailed(-38, true), true, 'ENOSYS, HVM: fails');
  t.equal(assignFailed(-16, false), true, 'EBUSY fails');
});

t.test('the assignable devices: the registry\'s quarantined ones that are not gone', async (t) => {
  t.same(assignableFrom([]), [], 'no devices: none');
  t.same(assignableFrom([
    { bdf: '0000:05:00.0', owner: 'quarantine', state: 'running' },
    { bdf: '0000:03:00.0', owner: 'quarantine', state: 'running' },
    { bdf: '0000:04:00.0', owner: 'Domain-0', state: 'running' },
    { bdf: '0000:06:00.0', owner: 'd7', state: 'running' },
    { bdf: '0000:07:00.0', owner: 'quarantine', state: 'gone' },
  ]), ['0000:03:00.0', '0000:05:00.0'], 'sorted; Domain-0\'s, a guest\'s and a dead one are not');
});

t.test('xen_pci_op written and read back at pciif.h\'s offsets', async (t) => {
  const page = new Uint8Array(PAGE_SIZE);
  const dv = new DataView(page.buffer);
  const op = { cmd: 1, err: -2, domain: 0xffff, bus: 0xff, devfn: PCI_DEVFN(0x1f, 7), offset: -4, size: 4, value: 0xdeadbeef, info: 128 };
  writePciOp(dv, op);
  t.same(readPciOp(dv), op);
  t.equal(dv.getInt32(xen_pci_sharedinfo.op + xen_pci_op.offset, true), -4, 'offset is signed');
  t.equal(dv.getUint32(xen_pci_sharedinfo.op + xen_pci_op.value, true), 0xdeadbeef);
  t.equal(dv.getUint32(0, true), 0, 'flags untouched');
  t.equal(PCI_SLOT(op.devfn), 0x1f);
  t.equal(PCI_FUNC(op.devfn), 7);
  t.equal(XEN_PCI_MAGIC, '7');
  t.ok(xen_pci_sharedinfo.SIZE <= PAGE_SIZE, 'the shared info fits its page');
});
