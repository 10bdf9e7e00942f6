// The passthrough domctls in Xen's binary encoding: a C program linked
// with Debian's libxenctrl (test/pci/c/xc_pci.c) calls xc_assign_device,
// xc_test_assign_device, xc_deassign_device, xc_domain_iomem_permission and
// xc_domain_memory_mapping, xc_domain_irq_permission and
// xc_physdev_map_pirq / unmap_pirq through xenemu's privcmd library against
// a host with a host PCI device, and sees Xen's errno values.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST, readHostRecord } from '../helpers/host.js';
import { probeDomU, probeHost } from '../helpers/probe.js';
import { ccBuild } from '../helpers/cc.js';
import { runXen, xenToolsMissing } from '../helpers/xenctrl.js';
import { __HYPERVISOR_domctl } from '../../shared/abi/xen.js';
import {
  XEN_DOMCTL_CDF_hvm, XEN_DOMCTL_DEV_PCI, XEN_DOMCTL_VMSI_X86_UNMASKED, XEN_DOMCTL_assign_device, XENEMU_DOMCTL_pci_assignable_add,
} from '../../shared/abi/domctl.js';
import { XEN_EBUSY, XEN_EINVAL, XEN_ENODEV, XEN_EPERM } from '../../shared/abi/errno.js';
import { HOST_MMIO_BASE, parseBdf } from '../../shared/wire/pcidev.js';

const missing = xenToolsMissing() ?? false;
const SRC = join(DIST, '..', 'test', 'pci', 'c', 'xc_pci.c');
const NIC = parseBdf('0000:03:00.0')!;

t.test('libxenctrl\'s passthrough calls against the real hypervisor', { skip: missing }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-xcpci-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, 'xc_pci');
  if (!ccBuild(t, SRC, exe, ['-O2', '-Wall'], ['-lxenctrl'])) return;
  const { h, d0 } = await probeHost(t, 256, { pcpus: 1, pci: ['e1000'] });
  const { domid: a } = await probeDomU(t, h, d0);
  const { domid: b } = await probeDomU(t, h, d0);
  const xc = async (...args: (string | number)[]) => {
    const r = await runXen(h, exe, args.map(String));
    t.equal(r.code, 0, `xc_pci ${args.join(' ')} ran ${r.stderr}`);
    const m = /rc (-?\d+) errno (\d+)/.exec(r.stdout);
    return m ? (Number(m[1]) < 0 ? -Number(m[2]) : Number(m[1])) : NaN;
  };
  const owner = () => readHostRecord(h.rundir)!.pci![0]!.owner;

  t.equal(await xc('assign', a, NIC), -XEN_ENODEV, 'xc_assign_device of Domain-0\'s device: ENODEV');
  t.equal(await xc('test', 0x7ff4, NIC), -XEN_EBUSY, 'xc_test_assign_device(DOMID_INVALID): EBUSY while Domain-0 has it');
  t.equal((await d0.call('hypercall', { hop: __HYPERVISOR_domctl, cmd: XENEMU_DOMCTL_pci_assignable_add, arg: { bdf: '0000:03:00.0' } })).ret, 0);
  t.equal(await xc('test', 0x7ff4, NIC), 0, 'free once quarantined');
  t.equal(await xc('assign', 0, NIC), -XEN_EINVAL, 'to Domain-0: EINVAL');
  t.equal(await xc('assign', a, parseBdf('0000:09:00.0')!), -XEN_ENODEV, 'no such device: ENODEV');
  t.equal(await xc('assign', a, NIC), 0, 'assigned');
  t.equal(owner(), `d${a}`);
  t.equal(await xc('assign', b, NIC), -XEN_EBUSY, 'to another guest: EBUSY');
  t.equal(await xc('test', b, NIC), -XEN_EBUSY, 'test: EBUSY');
  t.equal(await xc('deassign', b, NIC), -XEN_EINVAL, 'deassign from a non-owner: EINVAL');
  t.equal(await xc('deassign', a, NIC), 0, 'deassigned');
  t.equal(owner(), 'quarantine');

  // libxenctrl maps MMIO only for a translated (HVM) guest; for PV it returns 0 without asking.
  const { domid: v } = await probeDomU(t, h, d0, { flags: XEN_DOMCTL_CDF_hvm });
  const mfn = HOST_MMIO_BASE / 4096;
  t.equal(await xc('map', v, 0xf0000, mfn, 32, 1), -XEN_EPERM, 'xc_domain_memory_mapping without permission: EPERM');
  t.equal(await xc('iomem', v, mfn, 32, 1), 0, 'xc_domain_iomem_permission');
  t.equal(await xc('map', v, 0xf0000, mfn, 32, 1), 0, 'then mapped');
  t.equal(await xc('map', v, 0xf0000, mfn, 32, 0), 0, 'and unmapped');
  t.equal(await xc('pirq', a, 16), -XEN_EPERM, 'xc_physdev_map_pirq of a GSI the guest may not have: EPERM');
  t.equal(await xc('irq', a, 16, 1), 0, 'xc_domain_irq_permission');
  const r = await runXen(h, exe, ['pirq', String(a), '16']);
  t.match(r.stdout, /^pirq 16\nrc 0 errno 0\n$/, 'then mapped (pirq 16, the GSI) and unmapped');

  // An HVM owner's MSI (qemu-dm's calls): xc_physdev_map_pirq_msi for it, then
  // xc_domain_update_msi_irq / xc_domain_unbind_msi_irq (bind_pt_irq PT_IRQ_TYPE_MSI, u.msi).
  t.equal((await d0.call('hypercall', { hop: __HYPERVISOR_domctl, cmd: XEN_DOMCTL_assign_device,
    arg: { domain: v, dev: XEN_DOMCTL_DEV_PCI, flags: 0, machine_sbdf: NIC } })).ret, 0, 'assigned to the HVM domain');
  const msi = await runXen(h, exe, ['msi', String(v), '3', '0', '0x41', String(XEN_DOMCTL_VMSI_X86_UNMASKED)]);
  t.match(msi.stdout, /^pirq \d+\nunbind 0 errno 0\nrc 0 errno 0\n$/, 'xc_physdev_map_pirq_msi, xc_domain_update_msi_irq (vector 0x41, unmasked), xc_domain_unbind_msi_irq');
  const bad = await runXen(h, exe, ['msi', String(v), '3', '0', '0x41', String(1 << 17)]);
  t.match(bad.stdout, new RegExp(`^pirq \\d+\nrc -1 errno ${XEN_EINVAL}\n$`), 'gflags beyond domctl.h\'s fields: EINVAL');
  t.match((await runXen(h, exe, ['msi', String(a), '3', '0', '0x41', '0'])).stdout, new RegExp(`rc -1 errno ${XEN_EPERM}\n$`),
    'an MSI of a device the domain does not own: EPERM');
});
