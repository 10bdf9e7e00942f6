// MSI-X of a host device passed through to an HVM guest, the hypervisor's
// part (docs/passthrough.md "Interrupts"), through real device processes:
// Domain-0 (as qemu-dm does) maps a pirq for the HVM owner's MSI-X entry,
// which programs the device's table entry (the pirq as data, masked);
// XEN_DOMCTL_bind_pt_irq PT_IRQ_TYPE_MSI binds it to the guest's vector
// with Xen's checks and unmasks the entry; a message from the device naming
// the pirq latches that vector for the guest's local APIC in its HVM
// segment (msi_pending); masked, unbound and unmapped again.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeDomU, probeHost, type Probe } from '../helpers/probe.js';
import { waitFor } from '../helpers/host.js';
import { DOMID_SELF, PAGE_SIZE, __HYPERVISOR_domctl, __HYPERVISOR_physdev_op } from '../../shared/abi/xen.js';
import * as DC from '../../shared/abi/domctl.js';
import * as PD from '../../shared/abi/physdev.js';
import { XEN_EINVAL, XEN_EPERM } from '../../shared/abi/errno.js';
import { PciCfgClient } from '../../shared/hw/pci_cfg_client.js';
import { parseBdf, pciConfigSocket } from '../../shared/wire/pcidev.js';
import { shmOpen } from '../../shared/shm.js';
import { XENEMU_HVM_SEGMENT_PAGES, hvm_ctl } from '../../shared/abi/hvm/xenemu_hvm.js';
import { NVME_MSIX_TABLE } from '../../shared/hw/nvme.js';
import { PCI_CFG_OP_TEST_MSI, TEST_DMA_HOOK } from '../../processes/pcidev/config_server.js';

process.env.XENEMU_TEST_HOOKS = TEST_DMA_HOOK;

const BDF = '0000:03:00.0';
const SBDF = parseBdf(BDF)!;

const call = async (p: Probe, hop: number, cmd: number, arg: Record<string, unknown>) =>
  (await p.call('hypercall', { hop, cmd, arg })) as { ret: number; data?: Record<string, number> };

t.test('bind_pt_irq PT_IRQ_TYPE_MSI: an HVM owner\'s MSI-X entry to its vector, with Xen\'s checks', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xenemu-run-'));
  const img = join(root, 'nvme.img');
  writeFileSync(img, Buffer.alloc(1 << 20));
  const { h, d0 } = await probeHost(t, 256, { pcpus: 1, root, pci: [`nvme:${img}`] });
  const { domid: hvm, p: guest } = await probeDomU(t, h, d0, { flags: DC.XEN_DOMCTL_CDF_hvm, memory_kb: 16 * 1024 });
  const { domid: pv } = await probeDomU(t, h, d0);
  const domctl = async (cmd: number, arg: Record<string, unknown>) => (await call(d0, __HYPERVISOR_domctl, cmd, arg)).ret;
  t.equal(await domctl(DC.XENEMU_DOMCTL_pci_assignable_add, { bdf: BDF }), 0, 'pci-assignable-add');
  t.equal(await domctl(DC.XEN_DOMCTL_assign_device, { domain: hvm, dev: DC.XEN_DOMCTL_DEV_PCI, flags: 0, machine_sbdf: SBDF }), 0, `assigned to the HVM domain d${hvm}`);
  const cfg = await PciCfgClient.connect(pciConfigSocket(h.rundir, BDF));
  t.teardown(() => cfg.close());
  await cfg.write(0x04, 2, 0x0006); // memory decoding, bus mastering
  await cfg.write(0x42, 2, 0x8000 | ((await cfg.read(0x42, 2)) & 0x7ff)); // MSI-X on (xen_pt passes the guest's enable through)

  const msiArg = { type: PD.MAP_PIRQ_TYPE_MSI_SEG, index: -1, pirq: -1, bus: (SBDF >> 8) & 0xff, devfn: SBDF & 0xff, entry_nr: 1, table_base: 0 };
  t.equal((await call(guest, __HYPERVISOR_physdev_op, PD.PHYSDEVOP_map_pirq, { domid: DOMID_SELF, ...msiArg })).ret, -XEN_EINVAL,
    'the HVM guest itself may not map its MSI: -EINVAL (its device model does)');
  const m = await call(d0, __HYPERVISOR_physdev_op, PD.PHYSDEVOP_map_pirq, { domid: hvm, ...msiArg });
  t.equal(m.ret, 0, 'Domain-0 maps a pirq for the HVM owner\'s MSI-X entry 1');
  const pirq = m.data!.pirq!;
  const again = await call(d0, __HYPERVISOR_physdev_op, PD.PHYSDEVOP_map_pirq, { domid: hvm, ...msiArg });
  t.equal(again.data?.pirq, pirq, 'the same entry again: the same pirq');

  // The device's table entry, as the owner reads it through its BAR channel.
  t.equal((await guest.call('barOpen', { sbdf: SBDF })).ret, 0, 'the owner has its BAR channel');
  const entry = async () => {
    const at = NVME_MSIX_TABLE + 16;
    const w = [];
    for (let k = 0; k < 4; k++) w.push((await guest.call('barRead', { sbdf: SBDF, bar: 0, off: at + 4 * k })) as number >>> 0);
    return { addr: w[0]!, data: w[2]!, masked: (w[3]! & 1) === 1 };
  };
  await waitFor(async () => (await entry()).data === pirq, 5000, 'the entry programmed');
  t.same(await entry(), { addr: 0xfee00000, data: pirq, masked: true }, 'map_pirq programmed the entry: the pirq as data, masked');

  const bind = (arg: Record<string, unknown>, domain = hvm) =>
    domctl(DC.XEN_DOMCTL_bind_pt_irq, { domain, machine_irq: pirq, irq_type: DC.PT_IRQ_TYPE_MSI, gvec: 0x41, gflags: DC.XEN_DOMCTL_VMSI_X86_UNMASKED, gtable: 0, ...arg });
  t.equal(await bind({ machine_irq: pirq + 1 }), -XEN_EPERM, 'a pirq not mapped for the domain: -EPERM');
  t.equal(await bind({}, pv), -XEN_EINVAL, 'a PV domain: -EINVAL');
  t.equal(await bind({ gflags: 1 << 17 }), -XEN_EINVAL, 'gflags beyond domctl.h\'s fields: -EINVAL');
  t.equal(await bind({ gflags: 2 << 12 }), -XEN_EINVAL, 'delivery mode SMI: -EINVAL');
  t.equal(await bind({ gvec: 5 }), -XEN_EINVAL, 'a vector below 16: -EINVAL');
  t.equal(await bind({}), 0, 'bound to vector 0x41, unmasked');
  await waitFor(async () => !(await entry()).masked, 5000, 'the entry unmasked');
  t.same(await entry(), { addr: 0xfee00000, data: pirq, masked: false }, 'the device\'s entry is unmasked');

  // The device's message naming the pirq: the vector for the guest's local APIC.
  const seg = await call(d0, __HYPERVISOR_domctl, DC.XENEMU_DOMCTL_getsegments, { domain: hvm }) as unknown as { data: { hvm: string } };
  const i32 = new Int32Array(shmOpen(seg.data.hvm, XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE));
  const pending = (v: number) => (Atomics.load(i32, (hvm_ctl.msi_pending >> 2) + (v >> 5)) >>> (v & 31)) & 1;
  const take = () => { for (let w = 0; w < 8; w++) Atomics.store(i32, (hvm_ctl.msi_pending >> 2) + w, 0); };
  take();
  await cfg.request(PCI_CFG_OP_TEST_MSI, 4, 0, pirq, 2000);
  await waitFor(() => pending(0x41) === 1, 5000, 'vector 0x41 pending');
  t.equal(pending(0x41), 1, 'a message naming the pirq latches vector 0x41 in msi_pending');
  take();
  t.equal(await bind({ gvec: 0x52 }), 0, 'bound again: the binding moves to vector 0x52');
  await cfg.request(PCI_CFG_OP_TEST_MSI, 4, 0, pirq, 2000);
  await waitFor(() => pending(0x52) === 1, 5000, 'vector 0x52 pending');
  t.equal(pending(0x41), 0, 'not the old vector');
  t.equal(await bind({ gvec: 0x52, gflags: 0 }), 0, 'bound without UNMASKED');
  await waitFor(async () => (await entry()).masked, 5000, 'the entry masked');
  t.pass('the device\'s entry is masked again');

  const unbind = () => domctl(DC.XEN_DOMCTL_unbind_pt_irq, { domain: hvm, machine_irq: pirq, irq_type: DC.PT_IRQ_TYPE_MSI });
  t.equal(await unbind(), 0, 'unbound');
  t.equal(await unbind(), -XEN_EINVAL, 'unbound already: -EINVAL');
  take();
  await cfg.request(PCI_CFG_OP_TEST_MSI, 4, 0, pirq, 2000);
  await guest.call('barRead', { sbdf: SBDF, bar: 0, off: 0 }); // a round trip through the device after its message
  await new Promise((r) => setTimeout(r, 200));
  t.equal(i32.slice(hvm_ctl.msi_pending >> 2, (hvm_ctl.msi_pending >> 2) + 8).some((w) => w !== 0), false, 'unbound: no vector');
  t.equal((await call(d0, __HYPERVISOR_physdev_op, PD.PHYSDEVOP_unmap_pirq, { domid: hvm, pirq })).ret, 0, 'unmap_pirq');
  t.equal(await bind({}), -XEN_EPERM, 'its pirq unmapped: bind is -EPERM');
});
