// PCI passthrough through the real hypervisor and device processes
// (docs/passthrough.md): the ownership domctls with Xen's errno values, the
// owner's BAR channel, the IOMMU (a DMA outside the owner's frames faults, is
// logged and writes nothing; after deassign DMA lands in quarantine), and
// the death of a device process.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeDomU, probeHost, type Probe } from '../helpers/probe.js';
import { readHostRecord, waitFor } from '../helpers/host.js';
import { XENMEM_decrease_reservation } from '../../shared/abi/memory.js';
import { DOMID_SELF, __HYPERVISOR_domctl, __HYPERVISOR_memory_op, __HYPERVISOR_event_channel_op, __HYPERVISOR_physdev_op } from '../../shared/abi/xen.js';
import * as PD from '../../shared/abi/physdev.js';
import * as EV from '../../shared/abi/event_channel.js';
import * as DC from '../../shared/abi/domctl.js';
import { XEN_EBUSY, XEN_EINVAL, XEN_ENODEV, XEN_EPERM } from '../../shared/abi/errno.js';
import { PciCfgClient, type PciCfgError } from '../../shared/hw/pci_cfg_client.js';
import { pciConfigSocket, pciIrqSocket, parseBdf, HOST_MMIO_BASE } from '../../shared/wire/pcidev.js';
import { PostedIrqTable, pciPostedSegment } from '../../shared/hw/posted_irq.js';
import { shmOpen } from '../../shared/shm.js';
import { domainSegmentNames } from '../../shared/wire/hypercall.js';
import * as R from '../../shared/hw/e1000_regs.js';
import { e1000TxDesc as desc } from '../helpers/pci.js';
import { PCI_CFG_OP_TEST_DMA_READ, PCI_CFG_OP_TEST_DMA_WRITE, PCI_CFG_OP_TEST_MSI, TEST_DMA_HOOK } from '../../processes/pcidev/config_server.js';

process.env.XENEMU_TEST_HOOKS = TEST_DMA_HOOK;

const NIC = '0000:03:00.0';
const SBDF = parseBdf(NIC)!;
const DOMID_INVALID = 0x7ff4;

const domctl = async (p: Probe, cmd: number, arg: Record<string, unknown>) =>
  (await p.call('hypercall', { hop: __HYPERVISOR_domctl, cmd, arg })).ret as number;
const assign = (p: Probe, domain: number, sbdf = SBDF, extra: Record<string, unknown> = {}) =>
  domctl(p, DC.XEN_DOMCTL_assign_device, { domain, dev: DC.XEN_DOMCTL_DEV_PCI, flags: 0, machine_sbdf: sbdf, ...extra });
const testAssign = (p: Probe, domain: number, sbdf = SBDF) =>
  domctl(p, DC.XEN_DOMCTL_test_assign_device, { domain, dev: DC.XEN_DOMCTL_DEV_PCI, flags: 0, machine_sbdf: sbdf });
const deassign = (p: Probe, domain: number, sbdf = SBDF) =>
  domctl(p, DC.XEN_DOMCTL_deassign_device, { domain, dev: DC.XEN_DOMCTL_DEV_PCI, flags: 0, machine_sbdf: sbdf });
const owner = (rundir: string, bdf = NIC) => readHostRecord(rundir)?.pci?.find((d) => d.bdf === bdf)?.owner;
const hvLog = (rundir: string) => readFileSync(join(rundir, 'logs', 'hypervisor.log'), 'utf8');
const devLog = (rundir: string, bdf = NIC) => readFileSync(join(rundir, 'logs', `pcidev-${bdf}.log`), 'utf8');

t.test('assign / test / deassign: Xen\'s checks and errno values, as Domain-0 calls them', async (t) => {
  const { h, d0 } = await probeHost(t, 256, { pcpus: 1, pci: ['e1000', 'e1000'] });
  const { domid: a } = await probeDomU(t, h, d0);
  const { domid: b } = await probeDomU(t, h, d0);

  t.equal(await assign(d0, a), -XEN_ENODEV, 'still Domain-0\'s (not assignable): -ENODEV');
  t.equal(await testAssign(d0, DOMID_INVALID), -XEN_EBUSY, 'test with DOMID_INVALID: Domain-0\'s is not free');
  t.equal(await domctl(d0, DC.XENEMU_DOMCTL_pci_assignable_add, { bdf: NIC }), 0, 'pci-assignable-add');
  t.equal(owner(h.rundir), 'quarantine', 'quarantined');
  t.equal(await testAssign(d0, DOMID_INVALID), 0, 'test with DOMID_INVALID: free');
  t.equal(await testAssign(d0, a), 0, 'test for d' + a + ': free');

  t.equal(await assign(d0, 0), -XEN_EINVAL, 'target Domain-0: -EINVAL');
  t.equal(await assign(d0, a, parseBdf('0000:09:00.0')!), -XEN_ENODEV, 'no such device: -ENODEV');
  t.equal(await assign(d0, a, SBDF, { dev: DC.XEN_DOMCTL_DEV_DT }), -XEN_ENODEV, 'not a PCI device: -ENODEV');
  t.equal(await assign(d0, a, SBDF, { flags: 2 }), -XEN_EINVAL, 'unknown flag: -EINVAL');
  t.equal(await assign(d0, a), 0, `assigned to d${a}`);
  t.equal(owner(h.rundir), `d${a}`, 'host.json names the owner');
  // The device's DMA writes the owner's memory where no log sees it.
  t.equal(await domctl(d0, DC.XEN_DOMCTL_shadow_op, { domain: a, op: DC.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY }), -XEN_EINVAL,
    'log-dirty for a domain with a passthrough device: -EINVAL (paging_log_dirty_enable)');
  t.equal(await domctl(d0, DC.XEN_DOMCTL_shadow_op, { domain: b, op: DC.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY }), 0, 'for one without: on');
  t.equal(await domctl(d0, DC.XEN_DOMCTL_shadow_op, { domain: b, op: DC.XEN_DOMCTL_SHADOW_OP_OFF }), 0, 'and off');
  t.equal(await assign(d0, b), -XEN_EBUSY, 'owned by another guest: -EBUSY');
  t.equal(await assign(d0, a), -XEN_EBUSY, 'owned already (by the same guest): -EBUSY');
  t.equal(await testAssign(d0, b), -XEN_EBUSY, 'test: -EBUSY');
  t.equal(await domctl(d0, DC.XENEMU_DOMCTL_pci_assignable_remove, { bdf: NIC }), -XEN_EBUSY, 'pci-assignable-remove of an assigned device: -EBUSY');
  t.equal(await deassign(d0, b), -XEN_EINVAL, 'deassign from a domain that does not own it: -EINVAL');
  t.equal(await deassign(d0, a), 0, 'deassigned');
  t.equal(owner(h.rundir), 'quarantine', 'back to quarantine');
  t.equal(await domctl(d0, DC.XENEMU_DOMCTL_pci_assignable_remove, { bdf: NIC }), 0, 'pci-assignable-remove');
  t.equal(owner(h.rundir), 'Domain-0', 'back to Domain-0');

  // A guest may not call them at all.
  const { p: du } = await probeDomU(t, h, d0);
  t.equal(await domctl(du, DC.XENEMU_DOMCTL_pci_assignable_add, { bdf: NIC }), -XEN_EPERM, 'a guest: -EPERM');

  // The owner's death sends its devices back to quarantine.
  await domctl(d0, DC.XENEMU_DOMCTL_pci_assignable_add, { bdf: NIC });
  t.equal(await assign(d0, b), 0);
  await domctl(d0, DC.XEN_DOMCTL_destroydomain, { domain: b });
  await waitFor(() => owner(h.rundir) === 'quarantine', 5000, 'quarantine after destroy');
  t.pass('destroy of the owner: quarantine');
  t.match(hvLog(h.rundir), new RegExp(`pci ${NIC}: d${b} -> quarantine \\(d${b} destroyed\\)`), 'logged');
});

t.test('permissions and mappings: recorded, and refused with -EPERM without the permission', async (t) => {
  const { h, d0 } = await probeHost(t, 256, { pcpus: 1, pci: ['e1000'] });
  const { domid } = await probeDomU(t, h, d0);
  const mfn = HOST_MMIO_BASE / 4096;
  const map = (add: number) => domctl(d0, DC.XEN_DOMCTL_memory_mapping, { domain: domid, first_gfn: 0xf0000, first_mfn: mfn, nr_mfns: 32, add_mapping: add });
  t.equal(await map(1), -XEN_EPERM, 'memory_mapping without iomem permission: -EPERM');
  t.equal(await domctl(d0, DC.XEN_DOMCTL_iomem_permission, { domain: domid, first_mfn: mfn, nr_mfns: 16, allow_access: 1 }), 0);
  t.equal(await map(1), -XEN_EPERM, 'half the range permitted: -EPERM');
  t.equal(await domctl(d0, DC.XEN_DOMCTL_iomem_permission, { domain: domid, first_mfn: mfn + 16, nr_mfns: 16, allow_access: 1 }), 0);
  t.equal(await map(1), 0, 'the whole range permitted: mapped');
  t.equal(await map(0), 0, 'and unmapped');
  const ioMap = () => domctl(d0, DC.XEN_DOMCTL_ioport_mapping, { domain: domid, first_gport: 0xc100, first_mport: 0xc000, nr_ports: 64, add_mapping: 1 });
  t.equal(await ioMap(), -XEN_EPERM, 'ioport_mapping without permission: -EPERM');
  t.equal(await domctl(d0, DC.XEN_DOMCTL_ioport_permission, { domain: domid, first_port: 0xc000, nr_ports: 64, allow_access: 1 }), 0);
  t.equal(await ioMap(), 0, 'with it: mapped');
  const bind = () => domctl(d0, DC.XEN_DOMCTL_bind_pt_irq, { domain: domid, machine_irq: 16, irq_type: DC.PT_IRQ_TYPE_PCI });
  t.equal(await bind(), -XEN_EPERM, 'bind_pt_irq without irq permission: -EPERM');
  t.equal(await domctl(d0, DC.XEN_DOMCTL_irq_permission, { domain: domid, pirq: 16, allow_access: 1 }), 0);
  t.equal(await bind(), 0, 'with it: bound');
  t.equal(await domctl(d0, DC.XEN_DOMCTL_unbind_pt_irq, { domain: domid, machine_irq: 16, irq_type: DC.PT_IRQ_TYPE_PCI }), 0, 'unbound');
  t.equal(await domctl(d0, DC.XEN_DOMCTL_iomem_permission, { domain: domid, first_mfn: mfn + 8, nr_mfns: 1, allow_access: 0 }), 0, 'one frame revoked');
  t.equal(await map(1), -XEN_EPERM, 'the range has a hole now: -EPERM');
});

t.test('BAR channel and IOMMU: the owner\'s registers, DMA faults outside its frames, quarantine after deassign', async (t) => {
  const { h, d0 } = await probeHost(t, 256, { pcpus: 1, pci: ['e1000'] });
  const { domid, p: du } = await probeDomU(t, h, d0, { memory_kb: 16 * 1024, max_memkb: 32 * 1024 });
  const { p: other } = await probeDomU(t, h, d0);
  const cfg = await PciCfgClient.connect(pciConfigSocket(h.rundir, NIC));
  t.teardown(() => cfg.close());

  t.equal((await du.call('barOpen', { sbdf: SBDF })).ret, -XEN_EPERM, 'no BAR channel before assignment');
  await domctl(d0, DC.XENEMU_DOMCTL_pci_assignable_add, { bdf: NIC });
  t.equal(await assign(d0, domid), 0);
  const g = await du.call('barOpen', { sbdf: SBDF });
  t.equal(g.ret, 0, 'the owner gets its BAR channel');
  t.match(g.grant.segment, /\.pci00000300\.0\.bar$/, 'named after the BDF');
  t.same(g.grant.bars.map((b: { index: number; kind: string }) => [b.index, b.kind]), [[0, 'mem'], [1, 'io']]);
  t.equal((await other.call('barOpen', { sbdf: SBDF })).ret, -XEN_EPERM, 'another guest does not');

  // pciback's part: decode and bus mastering on (the device was reset at assignment).
  await cfg.write(0x04, 2, 0x0007);
  const rd = (off: number) => du.call('barRead', { sbdf: SBDF, bar: 0, off });
  const wr = (off: number, value: number) => du.call('barWrite', { sbdf: SBDF, bar: 0, off, value });
  t.equal(((await rd(R.E1000_STATUS)) & 0x2) >>> 0, 0x2, 'STATUS: link up, through the BAR channel');
  await wr(R.E1000_RDBAL, 0x12340);
  t.equal(await rd(R.E1000_RDBAL), 0x12340, 'a register written and read back');

  // Loopback: a frame from an owned buffer into a receive buffer the owner does not have.
  const ring = 100;      // pfn: TX ring at +0, RX ring at +0x200
  const frame = 101;     // pfn: the frame
  const notOwned = 6000; // pfn inside the memory segment, never populated
  await du.call('writeBytes', { pfn: frame, hex: 'ff'.repeat(6) + '025845000300' + '0800' + '45'.repeat(46) });
  await du.call('writeBytes', { pfn: ring, hex: desc(frame * 4096, 60, R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_IFCS | R.E1000_TXD_CMD_RS) });
  await du.call('writeBytes', { pfn: ring, off: 0x200, hex: desc(notOwned * 4096, 0, 0) });
  await wr(R.E1000_RDBAL, ring * 4096 + 0x200);
  await wr(R.E1000_RDBAH, 0);
  await wr(R.E1000_RDLEN, 128);
  await wr(R.E1000_RDH, 0);
  await wr(R.E1000_RDT, 7);
  await wr(R.E1000_RCTL, R.E1000_RCTL_EN | R.E1000_RCTL_BAM | R.E1000_RCTL_LBM_MAC);
  await wr(R.E1000_TDBAL, ring * 4096);
  await wr(R.E1000_TDBAH, 0);
  await wr(R.E1000_TDLEN, 128);
  await wr(R.E1000_TDH, 0);
  await wr(R.E1000_TCTL, R.E1000_TCTL_EN);
  await wr(R.E1000_TDT, 1);
  t.equal(await rd(R.E1000_TDH), 1, 'the transmit descriptor was taken');
  const txStatus = await du.call('readBytes', { pfn: ring, off: 12, len: 1 });
  t.equal(parseInt(txStatus, 16) & 1, 1, 'its DD bit written back into owned memory');
  await waitFor(() => /iommu fault: d\d+ dma write gfn 0x1770/.test(devLog(h.rundir)), 5000, 'fault logged');
  t.match(devLog(h.rundir), `iommu fault: d${domid} dma write gfn 0x1770`, 'the device logs the fault');
  await waitFor(() => (readHostRecord(h.rundir)?.pci?.[0]?.faults.iommu ?? 0) >= 1, 5000, 'fault counted');
  t.pass('and the hypervisor counts it (host.json)');
  t.match(hvLog(h.rundir), /pci 0000:03:00.0: iommu fault: d\d+ dma write gfn 0x1770/, 'in its log too');
  const seg = new Uint8Array(shmOpen(domainSegmentNames(h.name, domid).mem, 4096, notOwned * 4096));
  t.ok(seg.every((b) => b === 0), 'nothing was written to the page the owner does not have');

  // The test hook's DMA: into an owned page lands; a ballooned-out one faults.
  const hookDma = async (op: number, pfn: number) => {
    try { await cfg.request(op, 4, 0, pfn, 2000); return 0; } catch (e) { return (e as PciCfgError).errno; }
  };
  t.equal(await hookDma(PCI_CFG_OP_TEST_DMA_WRITE, 200), 0, 'DMA write into an owned page');
  t.equal(await du.call('readBytes', { pfn: 200, off: 0, len: 4 }), 'a0a1a2a3', 'it landed in the owner\'s memory');
  t.equal(await hookDma(PCI_CFG_OP_TEST_DMA_READ, 7000), -14, 'DMA read of a page not owned: fault');
  // Ballooning: a page the owner gives back is out of the IOMMU's reach at once (dom<id>.frames).
  const dec = await du.call('hypercall', { hop: __HYPERVISOR_memory_op, cmd: XENMEM_decrease_reservation,
                                            arg: { domid: DOMID_SELF, nr_extents: 1, extent_order: 0, extent_start: [201] } });
  t.equal(dec.ret, 1, 'pfn 201 ballooned out');
  t.equal(await hookDma(PCI_CFG_OP_TEST_DMA_WRITE, 201), -14, 'a DMA write into it faults');
  const ballooned = new Uint8Array(shmOpen(domainSegmentNames(h.name, domid).mem, 4096, 201 * 4096));
  t.ok(ballooned.every((x) => x === 0), 'and writes nothing there');
  t.match(devLog(h.rundir), `iommu fault: d${domid} dma write gfn 0xc9`, 'logged with its gfn');

  // Deassign: the old owner's BAR accesses are not done, DMA goes to quarantine.
  t.equal(await deassign(d0, domid), 0);
  await waitFor(() => /quarantined: device reset/.test(devLog(h.rundir)), 5000, 'device quarantined');
  t.equal(await rd(R.E1000_STATUS), 0xffffffff, 'the former owner reads all-ones');
  await wr(R.E1000_RDBAL, 0x5550);
  await du.call('writeBytes', { pfn: 200, hex: '00'.repeat(16) });
  t.equal(await hookDma(PCI_CFG_OP_TEST_DMA_WRITE, 200), 0, 'a DMA in quarantine completes ...');
  t.equal(await du.call('readBytes', { pfn: 200, off: 0, len: 4 }), '00000000', '... on the scratch page, not in the former owner\'s memory');
  await waitFor(() => (readHostRecord(h.rundir)?.pci?.[0]?.faults.quarantine ?? 0) >= 1, 5000, 'quarantine counted');
  t.pass('counted as a quarantine fault');
  await domctl(d0, DC.XEN_DOMCTL_assign_device, { domain: domid, dev: 0, flags: 0, machine_sbdf: SBDF });
  await du.call('barOpen', { sbdf: SBDF });
  await cfg.write(0x04, 2, 0x0007);
  t.equal(await rd(R.E1000_RDBAL), 0, 'assigned again: the write of the former owner was never done (and the FLR cleared the rest)');
});

t.test('SIGKILL of a device process: gone, its owner reads all-ones, nothing else is affected', async (t) => {
  const { h, d0 } = await probeHost(t, 256, { pcpus: 1, pci: ['e1000', 'e1000'] });
  const { domid, p: du } = await probeDomU(t, h, d0);
  await domctl(d0, DC.XENEMU_DOMCTL_pci_assignable_add, { bdf: NIC });
  t.equal(await assign(d0, domid), 0);
  t.equal((await du.call('barOpen', { sbdf: SBDF })).ret, 0);
  const cfg = await PciCfgClient.connect(pciConfigSocket(h.rundir, NIC));
  t.teardown(() => cfg.close());
  await cfg.write(0x04, 2, 0x0007);
  t.equal(((await du.call('barRead', { sbdf: SBDF, bar: 0, off: R.E1000_STATUS })) & 2) >>> 0, 2, 'the owner reaches its device');
  const rec = readHostRecord(h.rundir)!;
  process.kill(rec.pci![0]!.pid, 'SIGKILL');
  await waitFor(() => readHostRecord(h.rundir)?.pci?.[0]?.state === 'gone', 5000, 'device gone');
  t.equal(await du.call('barRead', { sbdf: SBDF, bar: 0, off: R.E1000_STATUS }), 0xffffffff, 'its next BAR access reads all-ones');
  t.match((await du.call('barLog', {})).join('\n'), /device of this BAR channel is gone/, 'and the owner is told');
  t.match(hvLog(h.rundir), new RegExp(`pci ${NIC}: device process exited \\(signal SIGKILL\\): the device is gone; its owner d${domid} reads all-ones`));
  const { stdout } = await h.xenemu('status');
  t.match(stdout, new RegExp(`${NIC}\\s+e1000\\s+d${domid}\\s+gone`), 'xenemu status shows it gone');
  t.match(stdout, /0000:04:00.0\s+e1000\s+Domain-0\s+running/, 'the other device runs on');
  t.equal(readHostRecord(h.rundir)!.pci![1]!.state, 'running');
  t.notOk(existsSync(pciConfigSocket(h.rundir, NIC)), 'its config socket is gone');
  t.ok(existsSync(pciConfigSocket(h.rundir, '0000:04:00.0')), 'the other\'s is there');
  const other = await PciCfgClient.connect(pciConfigSocket(h.rundir, '0000:04:00.0'));
  t.equal(await other.read(0, 2), 0x8086, 'and serves');
  other.close();
  t.equal((await du.call('hello', {})).domid, domid, 'the owner runs on');
  t.equal(await assign(d0, domid), -XEN_ENODEV, 'a gone device is no device: assign -ENODEV');
});

t.test('interrupts of a PV owner: INTx as a level pirq masked until PHYSDEVOP_eoi, MSI as an edge', async (t) => {
  const { h, d0 } = await probeHost(t, 256, { pcpus: 1, pci: ['e1000'] });
  const { domid, p: du } = await probeDomU(t, h, d0);
  await domctl(d0, DC.XENEMU_DOMCTL_pci_assignable_add, { bdf: NIC });
  t.equal(await assign(d0, domid), 0);
  const physdev = async (cmd: number, arg: Record<string, unknown>) => du.call('hypercall', { hop: __HYPERVISOR_physdev_op, cmd, arg });
  const gsi = 16; // the first device's line (shared/wire/pcidev.ts hostGsiOfBus)
  t.equal((await physdev(PD.PHYSDEVOP_map_pirq, { domid: DOMID_SELF, type: PD.MAP_PIRQ_TYPE_GSI, index: gsi, pirq: -1 })).ret, -XEN_EPERM,
          'map_pirq of a GSI the domain was not allowed: -EPERM');
  t.equal(await domctl(d0, DC.XEN_DOMCTL_irq_permission, { domain: domid, pirq: gsi, allow_access: 1 }), 0);
  const m = await physdev(PD.PHYSDEVOP_map_pirq, { domid: DOMID_SELF, type: PD.MAP_PIRQ_TYPE_GSI, index: gsi, pirq: -1 });
  t.equal(m.ret, 0, 'mapped');
  const pirq = m.data.pirq as number;
  t.equal(pirq, gsi, 'the GSI\'s pirq is the GSI');
  const evt = async (cmd: number, arg: Record<string, unknown>) => du.call('hypercall', { hop: __HYPERVISOR_event_channel_op, cmd, arg });
  t.equal((await evt(EV.EVTCHNOP_bind_pirq, { pirq: 99, flags: 0 })).ret, -XEN_EINVAL, 'bind_pirq of a pirq not mapped: -EINVAL');
  const b = await evt(EV.EVTCHNOP_bind_pirq, { pirq, flags: 0 });
  t.equal(b.ret, 0, 'bound');
  const port = b.data.port as number;
  t.equal((await evt(EV.EVTCHNOP_bind_pirq, { pirq, flags: 0 })).ret, -17, 'bound twice: -EEXIST');
  await du.call('listen', { port });
  const st = await evt(EV.EVTCHNOP_status, { dom: DOMID_SELF, port });
  t.equal(st.data.status, EV.EVTCHNSTAT_pirq, 'EVTCHNOP_status: pirq');
  const events = async () => ((await du.call('events', {})).events[port] ?? 0) as number;

  // The NIC raises INTA#: ICS sets a cause that IMS lets through.
  const cfg = await PciCfgClient.connect(pciConfigSocket(h.rundir, NIC));
  t.teardown(() => cfg.close());
  await cfg.write(0x04, 2, 0x0007);
  t.equal((await du.call('barOpen', { sbdf: SBDF })).ret, 0);
  const wr = (off: number, value: number) => du.call('barWrite', { sbdf: SBDF, bar: 0, off, value });
  await wr(R.E1000_IMS, R.E1000_ICR_TXDW);
  await wr(R.E1000_ICS, R.E1000_ICR_TXDW);
  await waitFor(async () => (await events()) === 1, 5000, 'the INTx event');
  t.equal(await events(), 1, 'INTx: one event on the bound port');
  await du.call('barRead', { sbdf: SBDF, bar: 0, off: R.E1000_ICR }); // reading ICR clears it: the line drops
  await wr(R.E1000_ICS, R.E1000_ICR_TXDW);                            // and rises again
  await du.call('barRead', { sbdf: SBDF, bar: 0, off: R.E1000_STATUS }); // a round trip after the device's irq messages
  await new Promise((r) => setTimeout(r, 100));
  t.equal(await events(), 1, 'masked until EOI: no second event');
  t.equal((await physdev(PD.PHYSDEVOP_eoi, { irq: pirq })).ret, 0, 'PHYSDEVOP_eoi');
  await waitFor(async () => (await events()) === 2, 5000, 'the event after EOI');
  t.equal(await events(), 2, 'the line still high: delivered again at EOI');
  t.equal((await physdev(PD.PHYSDEVOP_eoi, { irq: 77 })).ret, -XEN_EINVAL, 'eoi of a pirq not mapped: -EINVAL');

  // MSI: mapped for the device the domain owns, an edge per message.
  const { p: other, domid: otherId } = await probeDomU(t, h, d0);
  const msiArg = { type: PD.MAP_PIRQ_TYPE_MSI, index: -1, pirq: -1, bus: 3, devfn: 0, entry_nr: 0 };
  t.equal((await other.call('hypercall', { hop: __HYPERVISOR_physdev_op, cmd: PD.PHYSDEVOP_map_pirq, arg: { domid: DOMID_SELF, ...msiArg } })).ret,
          -XEN_EPERM, `MSI of a device d${otherId} does not own: -EPERM`);
  const mm = await physdev(PD.PHYSDEVOP_map_pirq, { domid: DOMID_SELF, ...msiArg });
  t.equal(mm.ret, 0, 'MSI mapped');
  const mb = await evt(EV.EVTCHNOP_bind_pirq, { pirq: mm.data.pirq, flags: 0 });
  await du.call('listen', { port: mb.data.port });
  const msiEvents = async () => ((await du.call('events', {})).events[mb.data.port] ?? 0) as number;
  await cfg.request(PCI_CFG_OP_TEST_MSI, 4, 0, 0x4041, 2000);
  await waitFor(async () => (await msiEvents()) === 1, 5000, 'the MSI event');
  await cfg.request(PCI_CFG_OP_TEST_MSI, 4, 0, 0x4041, 2000);
  await waitFor(async () => (await msiEvents()) === 2, 5000, 'a second MSI');
  t.equal(await msiEvents(), 2, 'MSI: an event per message (edge: nothing to EOI)');
  const msiCounts = () => readHostRecord(h.rundir)?.pci?.find((d) => d.bdf === NIC)?.msi ?? { posted: -1, relayed: -1 };
  await waitFor(() => msiCounts().relayed === 2, 5000, 'the device\'s MSI counts in host.json');
  t.same(msiCounts(), { posted: 0, relayed: 2 }, 'the owner not on the device\'s line: both MSIs went through the hypervisor');

  // Posted: the hypervisor's table binds the pirq to the port; with the owner
  // on the device's line, an MSI naming it is set pending by the device itself.
  const table = PostedIrqTable.open(pciPostedSegment(h.name, NIC));
  t.equal(table.lookup(mm.data.pirq), mb.data.port << 8, 'the posted-interrupt table binds the MSI pirq to its port, vCPU 0');
  const grant = (await du.call('barOpen', { sbdf: SBDF })).grant as { key: number; irqSocket: string };
  t.equal(grant.irqSocket, pciIrqSocket(h.rundir, NIC), 'the BAR channel grant names the device\'s posted-interrupt line');
  await du.call('irqLine', { path: grant.irqSocket, key: grant.key });
  await waitFor(() => /posted interrupts: the owner is listening/.test(devLog(h.rundir)), 5000, 'the device to take the owner\'s line');
  const before = await du.call('events', {});
  await du.call('hold', { on: 1 }); // upcall_pending stays set: the second MSI must not wake the owner again
  await cfg.request(PCI_CFG_OP_TEST_MSI, 4, 0, mm.data.pirq, 2000);
  await cfg.request(PCI_CFG_OP_TEST_MSI, 4, 0, mm.data.pirq, 2000);
  await waitFor(() => msiCounts().posted === 2, 5000, 'two posted MSIs');
  await waitFor(async () => (await du.call('events', {})).kicks === 1, 5000, 'the wake-up on the line');
  let now = await du.call('events', {});
  t.equal(now.kicks, 1, 'one wake-up on the device\'s line for two MSIs (upcall_pending already set for the second)');
  t.equal(now.upcalls, before.upcalls, 'no upcall from the hypervisor');
  t.equal(await du.call('pending', { port: mb.data.port }), true, 'the port is pending in the owner\'s shared_info');
  await du.call('hold', { on: 0 });
  now = await du.call('events', {});
  t.equal(now.events[mb.data.port], 3, 'the owner\'s scan takes one event: two edges on one pending bit, as Xen coalesces them');
  t.same(msiCounts(), { posted: 2, relayed: 2 }, 'host.json counts them posted');
  t.equal((await physdev(PD.PHYSDEVOP_unmap_pirq, { domid: DOMID_SELF, pirq: mm.data.pirq })).ret, 0, 'unmap_pirq');
  t.equal(table.lookup(mm.data.pirq), -1, 'unmap_pirq took the binding out of the table before it returned');
  await cfg.request(PCI_CFG_OP_TEST_MSI, 4, 0, mm.data.pirq, 2000);
  await waitFor(() => msiCounts().relayed === 3, 5000, 'the MSI after unmap_pirq');
  await du.call('barRead', { sbdf: SBDF, bar: 0, off: R.E1000_STATUS }); // a round trip after the device's messages
  t.equal((await du.call('events', {})).events[mb.data.port], 3, 'an MSI of an unmapped pirq goes to the hypervisor, which delivers nothing');
  t.equal((await physdev(PD.PHYSDEVOP_unmap_pirq, { domid: DOMID_SELF, pirq: mm.data.pirq })).ret, -XEN_EINVAL, 'unmapped already: -EINVAL');
});
