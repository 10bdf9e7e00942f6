// The host NVMe device (`xenemu up --pci nvme:IMG`, processes/pcidev
// hosting shared/hw/nvme_pci.ts over the image): its owner reaches the
// controller's registers through the BAR channel and, with its admin queues
// in its own pages (DMA through the IOMMU), gets Identify answered; the
// namespace is the image's size.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeDomU, probeHost, type Probe } from '../helpers/probe.js';
import { waitFor } from '../helpers/host.js';
import { __HYPERVISOR_domctl } from '../../shared/abi/xen.js';
import * as DC from '../../shared/abi/domctl.js';
import * as N from '../../shared/hw/nvme_regs.js';
import { PciCfgClient } from '../../shared/hw/pci_cfg_client.js';
import { parseBdf, pciConfigSocket } from '../../shared/wire/pcidev.js';

const BDF = '0000:03:00.0';
const SBDF = parseBdf(BDF)!;
const IMAGE_BYTES = 4 << 20;

const domctl = async (p: Probe, cmd: number, arg: Record<string, unknown>) =>
  (await p.call('hypercall', { hop: __HYPERVISOR_domctl, cmd, arg })).ret as number;

t.test('the NVMe device through its BAR channel: CAP, VS, Identify', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xenemu-run-'));
  const img = join(root, 'nvme.img');
  writeFileSync(img, Buffer.alloc(IMAGE_BYTES));
  const { h, d0 } = await probeHost(t, 256, { pcpus: 1, root, pci: [`nvme:${img}`] });
  const { domid, p: du } = await probeDomU(t, h, d0, { memory_kb: 16 * 1024 });
  const cfg = await PciCfgClient.connect(pciConfigSocket(h.rundir, BDF));
  t.teardown(() => cfg.close());
  t.equal(await cfg.read(0, 4), 0x00101b36, '1b36:0010');
  t.equal(await cfg.read(0x40, 1), 0x11, 'the MSI-X capability at 0x40');

  t.equal(await domctl(d0, DC.XENEMU_DOMCTL_pci_assignable_add, { bdf: BDF }), 0);
  t.equal(await domctl(d0, DC.XEN_DOMCTL_assign_device, { domain: domid, dev: DC.XEN_DOMCTL_DEV_PCI, flags: 0, machine_sbdf: SBDF }), 0);
  const g = await du.call('barOpen', { sbdf: SBDF });
  t.equal(g.ret, 0, 'the owner has its BAR channel');
  t.same(g.grant.bars.map((b: { index: number; kind: string; size: number }) => [b.index, b.kind, b.size]), [[0, 'mem', 0x4000]], 'BAR0, 16 KiB');
  await cfg.write(0x04, 2, 0x0006); // pciback's part: memory decoding, bus mastering

  const rd = async (off: number) => (await du.call('barRead', { sbdf: SBDF, bar: 0, off })) as number;
  const wr = (off: number, value: number) => du.call('barWrite', { sbdf: SBDF, bar: 0, off, value: value >>> 0 });
  const cap = await rd(N.NVME_REG_CAP);
  t.equal(cap & 0xffff, 1023, 'CAP.MQES: 1024 entries (0\'s based)');
  t.equal((await rd(N.NVME_REG_CAP + 4)) & 0xf, 0, 'CAP.DSTRD 0: doorbells 4 bytes apart');
  t.equal(await rd(N.NVME_REG_VS), 0x00010400, 'VS: NVMe 1.4');
  t.equal((await rd(N.NVME_REG_CSTS)) & N.NVME_CSTS_RDY, 0, 'not ready before it is enabled');
  // Memory writes are posted (none waits for the device) and stay in order: a read after a burst sees the last.
  const values = Array.from({ length: 500 }, (_, i) => (i + 1) * 4096);
  const burst = await du.call('barBurst', { sbdf: SBDF, bar: 0, off: N.NVME_REG_ASQ, values });
  t.equal(burst.posted, 500, 'each of 500 ASQ writes posted');
  t.equal(burst.value, 500 * 4096, 'the read after them sees the last one');

  // nvme_pci_configure_admin_queue with the queues and the data in the owner's pages.
  const ASQ = 100; const ACQ = 101; const DATA = 102;
  const DEPTH = 4;
  await du.call('writeBytes', { pfn: ACQ, hex: '00'.repeat(64) });
  const cmd = Buffer.alloc(64);
  cmd.writeUInt8(N.nvme_admin_identify, 0);
  cmd.writeUInt16LE(0x1234, 2);                 // CID
  cmd.writeUInt32LE(DATA * 4096, 24);           // PRP1
  cmd.writeUInt32LE(N.NVME_ID_CNS_CTRL, 40);    // CDW10: CNS 1, the controller
  await du.call('writeBytes', { pfn: ASQ, hex: cmd.toString('hex') });
  await wr(N.NVME_REG_AQA, (DEPTH - 1) << 16 | (DEPTH - 1));
  await wr(N.NVME_REG_ASQ, ASQ * 4096); await wr(N.NVME_REG_ASQ + 4, 0);
  await wr(N.NVME_REG_ACQ, ACQ * 4096); await wr(N.NVME_REG_ACQ + 4, 0);
  await wr(N.NVME_REG_CC, N.NVME_CC_EN | 6 << N.NVME_CC_IOSQES_SHIFT | 4 << N.NVME_CC_IOCQES_SHIFT);
  await waitFor(async () => ((await rd(N.NVME_REG_CSTS)) & N.NVME_CSTS_RDY) !== 0, 5000, 'CSTS.RDY');
  await wr(N.NVME_REG_DBS, 1); // SQ 0 tail

  const cqe = async () => Buffer.from((await du.call('readBytes', { pfn: ACQ, off: 0, len: 16 })) as string, 'hex');
  await waitFor(async () => ((await cqe()).readUInt16LE(14) & 1) === 1, 5000, 'the completion (phase 1)');
  const c = await cqe();
  t.equal(c.readUInt16LE(12), 0x1234, 'completion of our command');
  t.equal(c.readUInt16LE(14) >> 1, 0, 'status: success');
  t.equal(c.readUInt16LE(8), 1, 'SQ head moved past it');
  const id = Buffer.from((await du.call('readBytes', { pfn: DATA, off: 0, len: 4096 })) as string, 'hex');
  t.equal(id.readUInt16LE(0), 0x1b36, 'Identify Controller: VID, written into the owner\'s page by DMA');
  t.equal(id.readUInt32LE(516), 1, 'NN: one namespace');
  await wr(N.NVME_REG_DBS + 4, 1); // CQ 0 head

  // Identify Namespace 1: its size is the image's.
  cmd.writeUInt16LE(0x1235, 2);
  cmd.writeUInt32LE(1, 4);                      // NSID
  cmd.writeUInt32LE(N.NVME_ID_CNS_NS, 40);
  await du.call('writeBytes', { pfn: ASQ, off: 64, hex: cmd.toString('hex') });
  await wr(N.NVME_REG_DBS, 2);
  const cqe2 = async () => Buffer.from((await du.call('readBytes', { pfn: ACQ, off: 16, len: 16 })) as string, 'hex');
  await waitFor(async () => ((await cqe2()).readUInt16LE(14) & 1) === 1, 5000, 'the second completion');
  t.equal((await cqe2()).readUInt16LE(14) >> 1, 0, 'success');
  const ns = Buffer.from((await du.call('readBytes', { pfn: DATA, off: 0, len: 8 })) as string, 'hex');
  t.equal(Number(ns.readBigUInt64LE(0)) * 512, IMAGE_BYTES, 'NSZE: the image\'s size in 512-byte blocks');
});
