// The NVMe controller (shared/hw/nvme.ts, nvme_pci.ts) on a PCI bus, driven
// as Linux's nvme driver drives it (pci.c, core.c): probe, controller enable,
// Identify, queue creation, features and log pages, reads and writes through
// PRP lists checked against the back end, MSI-X and INTx, and drivers that
// program nonsense.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileBlockBackend, MemoryBlockBackend } from '../../shared/hw/block.js';
import { IO_BUDGET_COMMANDS, NVME_LBA_SIZE } from '../../shared/hw/nvme.js';
import { NVME_CAP_EXP, NVME_CAP_MSIX, PCI_CAP_ID_EXP, PCI_CAP_ID_MSIX } from '../../shared/hw/nvme_pci.js';
import * as N from '../../shared/hw/nvme_regs.js';
import type { BlockBackend } from '../../shared/hw/backend.js';
import { ACQ, ASQ, BAR0, NvmeHostDriver, SLOT } from './nvme_host.js';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const ascii = (b: Uint8Array) => Buffer.from(b).toString('latin1').trimEnd();
const ID = 0x20000;

function diskOf(mib: number): MemoryBlockBackend {
  return new MemoryBlockBackend(Uint8Array.from(randomBytes(mib << 20)));
}

/** Enables MSI-X as Linux's msix_capability_init: enable with all masked, program the entries, unmask. */
function enableMsix(h: NvmeHostDriver, vectors: number): void {
  const ctl = NVME_CAP_MSIX + 2;
  h.cfgWrite(ctl, 2, 0xc000);
  for (let v = 0; v < vectors; v++) {
    h.wr(0x2000 + 16 * v, 0xfee00000 + (v << 12));
    h.wr(0x2000 + 16 * v + 4, 0);
    h.wr(0x2000 + 16 * v + 8, 0x4020 + v);
    h.wr(0x2000 + 16 * v + 12, 0);
  }
  h.cfgWrite(ctl, 2, 0x8000);
}

t.test('PCI identity, 64-bit BAR0, capabilities as Linux probes them', async (t) => {
  const h = new NvmeHostDriver();
  t.equal(h.cfgRead(0, 4), 0x00101b36, '1b36:0010');
  t.equal(h.cfgRead(0x08, 4) >>> 8, 0x010802, 'class NVMe');
  t.equal(h.cfgRead(0x3d, 1), 1, 'INTA#');
  h.cfgWrite(0x10, 4, 0xffffffff);
  t.equal(h.cfgRead(0x10, 4), 0xffffc004, 'BAR0 sizes as 16 KiB, 64-bit non-prefetchable');
  h.cfgWrite(0x14, 4, 0xffffffff);
  t.equal(h.cfgRead(0x14, 4), 0xffffffff, 'upper half all address');
  t.equal(h.m.mmio.read(BAR0 + 8, 4), 0xffffffff, 'no decode while being sized');
  h.cfgWrite(0x10, 4, BAR0);
  h.cfgWrite(0x14, 4, 0);
  t.equal(h.rd(N.NVME_REG_VS), N.NVME_VS_1_4, 'VS 1.4 once placed again');
  t.ok(h.cfgRead(0x06, 2) & 0x10, 'capability list');
  const caps: number[] = [];
  for (let p = h.cfgRead(0x34, 1); p; p = h.cfgRead(p + 1, 1)) caps.push(h.cfgRead(p, 1));
  t.same(caps, [PCI_CAP_ID_MSIX, PCI_CAP_ID_EXP], 'MSI-X, then PCI Express');
  t.equal(h.cfgRead(NVME_CAP_MSIX + 2, 2) & 0x7ff, 16, '17 vectors');
  t.equal(h.cfgRead(NVME_CAP_MSIX + 4, 4), 0x2000, 'table in BAR0 at 0x2000');
  t.equal(h.cfgRead(NVME_CAP_MSIX + 8, 4), 0x3000, 'PBA in BAR0 at 0x3000');
  t.ok(h.cfgRead(NVME_CAP_EXP + 4, 4) & (1 << 28), 'FLR capable');
  const cap = h.rd(0) + h.rd(4) * 2 ** 32;
  t.equal(cap & 0xffff, 1023, 'MQES 1024 entries');
  t.ok(cap & 0x10000, 'CQR');
  t.equal((cap >>> 24) & 0xff, 0x0f, 'TO 7.5 s');
  t.equal(h.rd(4) & 0xf, 0, 'DSTRD 0');
  t.ok(h.rd(4) & (1 << 5), 'CSS: NVM command set');
  t.equal((h.rd(4) >>> 16) & 0xff, 0, 'MPSMIN = MPSMAX = 4 KiB');
});

t.test('bring-up, Identify, features, log pages and admin commands as Linux sends them', async (t) => {
  const disk = diskOf(8);
  const h = new NvmeHostDriver({ disk });
  h.enable();
  t.ok(h.rd(N.NVME_REG_CSTS) & N.NVME_CSTS_RDY, 'CSTS.RDY after CC.EN');
  t.equal(h.rd(N.NVME_REG_ASQ), ASQ, 'ASQ reads back');
  t.equal(h.rd(N.NVME_REG_ACQ), ACQ, 'ACQ reads back');

  let c = h.admin({ opc: N.nvme_admin_identify, prp1: ID, cdw10: N.NVME_ID_CNS_CTRL });
  t.equal(c.status, 0, 'Identify Controller');
  t.equal(c.sqid, 0, 'on the admin queue');
  t.equal(c.sqhd, 1, 'SQ head reported');
  let id = h.bytes(ID, 4096);
  const idv = new DataView(id.buffer);
  t.equal(idv.getUint16(0, true), 0x1b36, 'VID');
  t.equal(ascii(id.subarray(24, 64)), 'xenemu NVMe', 'model');
  t.equal(ascii(id.subarray(4, 24)), 'XENEMU0001', 'serial');
  t.equal(id[77], 7, 'MDTS 512 KiB');
  t.equal(idv.getUint32(80, true), N.NVME_VS_1_4, 'VER');
  t.equal(idv.getUint32(516, true), 1, 'NN 1');
  t.equal(id[525]! & 1, 1, 'volatile write cache present');
  t.equal(id[512], 0x66, 'SQES 64 bytes');
  t.equal(id[513], 0x44, 'CQES 16 bytes');
  t.equal(idv.getUint16(520, true) & 0xc, 0xc, 'ONCS: Dataset Management, Write Zeroes');
  t.match(ascii(id.subarray(768, 1024)).replace(/\0+$/, ''), /^nqn\.2026-01\.org\.xenemu:nvme:XENEMU0001$/, 'subsystem NQN');

  c = h.admin({ opc: N.nvme_admin_identify, nsid: 1, prp1: ID, cdw10: N.NVME_ID_CNS_NS });
  t.equal(c.status, 0, 'Identify Namespace 1');
  id = h.bytes(ID, 4096);
  const nsv = new DataView(id.buffer);
  t.equal(Number(nsv.getBigUint64(0, true)), (8 << 20) / NVME_LBA_SIZE, 'NSZE from the back end');
  t.equal((nsv.getUint32(128, true) >>> 16) & 0xff, 9, 'LBA format 0: 512 bytes');
  t.notOk(id.subarray(104, 120).every((b) => b === 0), 'an NGUID');
  t.equal(h.admin({ opc: N.nvme_admin_identify, nsid: 2, prp1: ID, cdw10: N.NVME_ID_CNS_NS }).status, N.NVME_SC_INVALID_NS | N.NVME_SC_DNR, 'namespace 2 does not exist');

  c = h.admin({ opc: N.nvme_admin_identify, nsid: 0, prp1: ID, cdw10: N.NVME_ID_CNS_NS_ACTIVE_LIST });
  t.same([...new Uint32Array(h.bytes(ID, 8).buffer)], [1, 0], 'active namespace list: 1');
  c = h.admin({ opc: N.nvme_admin_identify, nsid: 1, prp1: ID, cdw10: N.NVME_ID_CNS_NS_DESC_LIST });
  t.same([...h.bytes(ID, 2)], [N.NVME_NIDT_NGUID, 16], 'descriptor list: NGUID');
  t.equal(h.admin({ opc: N.nvme_admin_identify, prp1: ID, cdw10: N.NVME_ID_CNS_CS_CTRL }).status, 0, 'NVM command set controller structure');
  t.equal(h.admin({ opc: N.nvme_admin_identify, prp1: ID, cdw10: 0x1f }).status, N.NVME_SC_INVALID_FIELD | N.NVME_SC_DNR, 'unknown CNS');

  c = h.admin({ opc: N.nvme_admin_set_features, cdw10: N.NVME_FEAT_NUM_QUEUES, cdw11: 3 << 16 | 3 });
  t.equal(c.dw0, 15 << 16 | 15, 'Number of Queues: 16 pairs allocated');
  t.equal(h.admin({ opc: N.nvme_admin_set_features, cdw10: N.NVME_FEAT_IRQ_COALESCE, cdw11: 0x0a08 }).status, 0, 'interrupt coalescing');
  t.equal(h.admin({ opc: N.nvme_admin_get_features, cdw10: N.NVME_FEAT_IRQ_COALESCE }).dw0, 0x0a08, 'stored');
  t.equal(h.admin({ opc: N.nvme_admin_get_features, cdw10: N.NVME_FEAT_VOLATILE_WC }).dw0, 1, 'write cache on');
  h.admin({ opc: N.nvme_admin_set_features, cdw10: N.NVME_FEAT_VOLATILE_WC, cdw11: 0 });
  t.equal(h.admin({ opc: N.nvme_admin_get_features, cdw10: N.NVME_FEAT_VOLATILE_WC }).dw0, 0, 'write cache off');
  t.equal(h.admin({ opc: N.nvme_admin_set_features, cdw10: N.NVME_FEAT_ASYNC_EVENT, cdw11: 0x1ff }).status, 0, 'async event configuration');
  t.equal(h.admin({ opc: N.nvme_admin_set_features, cdw10: 1 << 31 | N.NVME_FEAT_ARBITRATION }).status,
    N.NVME_SC_FEATURE_NOT_SAVEABLE | N.NVME_SC_DNR, 'nothing is saveable');
  t.equal(h.admin({ opc: N.nvme_admin_set_features, cdw10: 0x0c }).status, N.NVME_SC_INVALID_FIELD | N.NVME_SC_DNR, 'APST refused');

  // The sizes Linux asks: SMART 512 (nvme_hwmon), firmware slot 512 (nvme_get_fw_slot_info), error 64 a entry.
  for (const [lid, bytes] of [[N.NVME_LOG_SMART, 512], [N.NVME_LOG_FW_SLOT, 512], [N.NVME_LOG_ERROR, 256]] as const) {
    h.m.mem.bytes.fill(0xee, ID, ID + 4096);
    c = h.admin({ opc: N.nvme_admin_get_log_page, nsid: 0xffffffff, prp1: ID, cdw10: ((bytes / 4 - 1) << 16) | lid });
    t.equal(c.status, 0, `log page ${lid}`);
    t.equal(h.m.mem.bytes[ID + bytes], 0xee, `log page ${lid}: ${bytes} bytes, not more`);
  }
  h.admin({ opc: N.nvme_admin_get_log_page, prp1: ID, cdw10: (127 << 16) | N.NVME_LOG_SMART });
  t.equal(h.m.mem.bytes[ID + 3], 100, 'SMART: available spare 100%');
  h.admin({ opc: N.nvme_admin_get_log_page, prp1: ID, cdw10: (127 << 16) | N.NVME_LOG_FW_SLOT });
  t.equal(h.m.mem.bytes[ID], 1, 'firmware slot 1 active');
  t.equal(ascii(h.bytes(ID + 8, 8)), '1.0', 'its revision');
  t.equal(h.admin({ opc: N.nvme_admin_get_log_page, prp1: ID, cdw10: (127 << 16) | 0x70 }).status,
    N.NVME_SC_INVALID_LOG_PAGE | N.NVME_SC_DNR, 'unknown log page');

  h.submit(0, { opc: N.nvme_admin_async_event });
  t.same(h.reap(0), [], 'an AER stays pending');
  t.equal(h.admin({ opc: N.nvme_admin_keep_alive }).status, 0, 'Keep Alive');
  c = h.admin({ opc: N.nvme_admin_abort_cmd, cdw10: 5 << 16 | 1 });
  t.equal(c.status, 0, 'Abort answers');
  t.equal(c.dw0 & 1, 1, 'not aborted: the command has completed');
  t.equal(h.admin({ opc: 0x80 }).status, N.NVME_SC_INVALID_OPCODE | N.NVME_SC_DNR, 'Format NVM refused');

  h.createQueuePair(1, 64);
  t.equal(h.admin({ opc: N.nvme_admin_delete_cq, cdw10: 1 }).status, N.NVME_SC_INVALID_QUEUE | N.NVME_SC_DNR, 'a CQ with an SQ on it stays');
  t.equal(h.admin({ opc: N.nvme_admin_delete_sq, cdw10: 1 }).status, 0, 'Delete I/O SQ');
  t.equal(h.admin({ opc: N.nvme_admin_delete_cq, cdw10: 1 }).status, 0, 'Delete I/O CQ');

  // Shutdown as nvme_disable_ctrl(shutdown = true), then reset.
  h.wr(N.NVME_REG_CC, h.rd(N.NVME_REG_CC) | 1 << N.NVME_CC_SHN_SHIFT);
  t.equal((h.rd(N.NVME_REG_CSTS) >>> 2) & 3, N.NVME_CSTS_SHST_CMPLT, 'shutdown complete');
  h.wr(N.NVME_REG_CC, 0);
  t.equal(h.rd(N.NVME_REG_CSTS) & N.NVME_CSTS_RDY, 0, 'not ready after reset');
  t.same(Object.entries(h.nvme.faults).filter(([, v]) => v > 0).map(([k]) => k).sort(),
    ['invalid_field', 'invalid_opcode'], 'only the refusals the test asked for');
});

t.test('read, write, flush, write zeroes and DSM with PRP lists, against the back end', async (t) => {
  const disk = diskOf(8);
  const h = new NvmeHostDriver({ disk, nvme: { mdts: 10 } });
  h.bringUp(64);
  const data = Uint8Array.from(randomBytes(3 << 20));
  const buf = 0x400000;
  const list = 0x100000;
  // 3 MiB from an offset of 0x200 into the first page: 769 pages, two chained list pages.
  const first = buf + 0x200;
  h.m.mem.bytes.set(data, first);
  const pages: number[] = [];
  for (let p = (buf & ~0xfff) + 0x1000; p < first + data.length; p += 0x1000) pages.push(p);
  t.equal(pages.length, 768, 'PRP1 plus 768 list entries');
  h.prpList(list, pages);
  const slba = 100;
  let c = h.run(1, { opc: N.nvme_cmd_write, nsid: 1, prp1: first, prp2: list, cdw10: slba, cdw12: data.length / 512 - 1 });
  t.equal(c.status, 0, 'a 3 MiB write through chained PRP lists');
  const onDisk = (disk as MemoryBlockBackend).data.subarray(slba * 512, slba * 512 + data.length);
  t.equal(md5(onDisk), md5(data), 'the back end holds what was written');

  h.m.mem.bytes.fill(0, buf, buf + (4 << 20));
  c = h.run(1, { opc: N.nvme_cmd_read, nsid: 1, prp1: first, prp2: list, cdw10: slba, cdw12: data.length / 512 - 1 });
  t.equal(c.status, 0, 'read back');
  t.equal(md5(h.bytes(first, data.length)), md5(data), 'md5 of the read matches');
  t.equal(h.m.mem.bytes[first - 1], 0, 'nothing before PRP1');
  t.equal(h.m.mem.bytes[first + data.length], 0, 'nothing after the last page');

  // Two pages: PRP2 is the second page itself.
  c = h.run(1, { opc: N.nvme_cmd_read, nsid: 1, prp1: 0x300000, prp2: 0x305000, cdw10: 7, cdw12: 15 });
  t.equal(c.status, 0, 'an 8 KiB read with PRP2 as data pointer');
  const src = (disk as MemoryBlockBackend).data;
  t.equal(md5(Uint8Array.from([...h.bytes(0x300000, 4096), ...h.bytes(0x305000, 4096)])), md5(src.subarray(7 * 512, 7 * 512 + 8192)), 'both pages');

  // Flush reaches the back end; the namespace broadcast ID works too.
  let flushes = 0;
  const flush = disk.flush.bind(disk);
  disk.flush = () => { flushes++; flush(); };
  t.equal(h.run(1, { opc: N.nvme_cmd_flush, nsid: 1 }).status, 0, 'Flush');
  t.equal(h.run(1, { opc: N.nvme_cmd_flush, nsid: 0xffffffff }).status, 0, 'Flush of all namespaces');
  t.equal(flushes, 2, 'the back end flushed twice');

  c = h.run(1, { opc: N.nvme_cmd_write_zeroes, nsid: 1, cdw10: 1000, cdw12: 2047 });
  t.equal(c.status, 0, 'Write Zeroes of 1 MiB');
  t.ok(src.subarray(1000 * 512, 3048 * 512).every((b) => b === 0), 'zeros on the back end');

  const ranges = new DataView(h.m.mem.bytes.buffer, 0x200000, 32);
  ranges.setUint32(4, 8, true); ranges.setUint32(8, 50, true);
  ranges.setUint32(16 + 4, 8, true); ranges.setUint32(16 + 8, 60, true);
  t.equal(h.run(1, { opc: N.nvme_cmd_dsm, nsid: 1, prp1: 0x200000, cdw10: 1, cdw11: 4 }).status, 0, 'Dataset Management (deallocate) accepted');
  ranges.setUint32(16 + 8, 0x7fffffff, true);
  t.equal(h.run(1, { opc: N.nvme_cmd_dsm, nsid: 1, prp1: 0x200000, cdw10: 1, cdw11: 4 }).status, N.NVME_SC_LBA_RANGE | N.NVME_SC_DNR, 'a range past the end');

  // The SMART log counted the commands.
  h.admin({ opc: N.nvme_admin_get_log_page, prp1: ID, cdw10: (127 << 16) | N.NVME_LOG_SMART });
  const smart = new DataView(h.m.mem.bytes.buffer, ID, 512);
  t.equal(Number(smart.getBigUint64(64, true)), 2, 'host read commands');
  t.equal(Number(smart.getBigUint64(80, true)), 1, 'host write commands');
});

t.test('MSI-X: per-queue vectors, masking and the PBA', async (t) => {
  const h = new NvmeHostDriver();
  enableMsix(h, 3);
  h.bringUp(16, 2);
  t.ok(h.dev.messages[0]! > 0, 'admin completions on vector 0');
  t.equal(h.intx(), 0, 'no INTx with MSI-X on');
  h.msis.length = 0;
  h.run(1, { opc: N.nvme_cmd_read, nsid: 1, prp1: 0x300000, cdw12: 0 });
  t.same(h.msis, [{ addr: 0xfee02000, data: 0x4022 }], 'the I/O CQ fires its vector 2 with its address and data');

  // Mask vector 2: the completion sets the PBA bit and sends nothing.
  h.wr(0x2000 + 32 + 12, 1);
  h.msis.length = 0;
  h.submit(1, { opc: N.nvme_cmd_read, nsid: 1, prp1: 0x300000, cdw12: 0 });
  t.same(h.msis, [], 'masked: no message');
  t.equal(h.rd(0x3000) & 4, 4, 'PBA bit 2 set');
  h.wr(0x2000 + 32 + 12, 0);
  t.same(h.msis, [{ addr: 0xfee02000, data: 0x4022 }], 'unmasking sends the pending message');
  t.equal(h.rd(0x3000) & 4, 0, 'PBA bit cleared');
  t.equal(h.reap(1).length, 1, 'the completion is there');

  // Function mask works the same way.
  h.msis.length = 0;
  h.cfgWrite(NVME_CAP_MSIX + 2, 2, 0xc000);
  h.submit(1, { opc: N.nvme_cmd_read, nsid: 1, prp1: 0x300000, cdw12: 0 });
  t.same(h.msis, [], 'function masked: no message');
  h.cfgWrite(NVME_CAP_MSIX + 2, 2, 0x8000);
  t.equal(h.msis.length, 1, 'sent on function unmask');
  t.equal(h.reap(1).length, 1);

  // A CQ created without interrupts (IEN 0) never fires.
  h.msis.length = 0;
  h.createQueuePair(2, 8, 0x14000, 0x15000, 1, false);
  h.msis.length = 0;
  h.run(2, { opc: N.nvme_cmd_read, nsid: 1, prp1: 0x300000, cdw12: 0 });
  t.same(h.msis, [], 'polled queue: no message');
  t.equal(h.admin({ opc: N.nvme_admin_create_cq, prp1: 0x16000, cdw10: 7 << 16 | 3, cdw11: 40 << 16 | 3 }).status,
    N.NVME_SC_INVALID_VECTOR | N.NVME_SC_DNR, 'a vector past the table');
});

t.test('INTx: level while completions wait, INTMS/INTMC, the command register', async (t) => {
  const h = new NvmeHostDriver();
  h.bringUp(16, 0);
  t.equal(h.intx(), 0, 'low when every completion was consumed');
  h.submit(1, { opc: N.nvme_cmd_read, nsid: 1, prp1: 0x300000, cdw12: 0 });
  t.equal(h.intx(), 1, 'asserted by a completion');
  t.ok(h.cfgRead(0x06, 2) & 0x08, 'PCI status: interrupt');
  h.wr(N.NVME_REG_INTMS, 1);
  t.equal(h.intx(), 0, 'INTMS masks it');
  t.equal(h.rd(N.NVME_REG_INTMS), 1, 'INTMS reads the mask');
  h.m.mmio.write(BAR0 + N.NVME_REG_INTMS + 1, 1, 0x80);
  h.m.mmio.write(BAR0 + N.NVME_REG_INTMC + 1, 1, 0x80);
  t.equal(h.rd(N.NVME_REG_INTMS), 1, 'byte writes to INTMS/INTMC touch only their bits');
  h.wr(N.NVME_REG_INTMC, 1);
  t.equal(h.intx(), 1, 'INTMC unmasks it, still pending');
  h.cfgWrite(0x04, 2, 0x0406);
  t.equal(h.intx(), 0, 'INTx disable in the command register');
  h.cfgWrite(0x04, 2, 0x0006);
  t.equal(h.intx(), 1, 'and back');
  t.equal(h.reap(1).length, 1, 'one completion');
  t.equal(h.intx(), 0, 'the CQ head doorbell deasserts it');
  t.equal(h.admin({ opc: N.nvme_admin_create_cq, prp1: 0x16000, cdw10: 7 << 16 | 3, cdw11: 1 << 16 | 3 }).status,
    N.NVME_SC_INVALID_VECTOR | N.NVME_SC_DNR, 'without MSI-X only vector 0 exists');
  t.same(h.m.irq.log.filter((l) => l.startsWith(`pci${SLOT}`)).length > 0, true, 'the line went through setPciIntx');
});

t.test('function-level reset brings the controller and MSI-X back to power-on', async (t) => {
  const h = new NvmeHostDriver();
  enableMsix(h, 2);
  h.bringUp(16, 1);
  h.cfgWrite(NVME_CAP_EXP + 8, 2, 0x8000 | h.cfgRead(NVME_CAP_EXP + 8, 2));
  t.equal(h.cfgRead(0x04, 2), 0, 'command register cleared');
  t.equal(h.cfgRead(NVME_CAP_MSIX + 2, 2) & 0xc000, 0, 'MSI-X off');
  t.equal(h.cfgRead(NVME_CAP_EXP + 8, 2) & 0x8000, 0, 'Initiate FLR reads 0');
  h.cfgWrite(0x04, 2, 0x6);
  t.equal(h.rd(N.NVME_REG_CSTS), 0, 'controller not ready');
  t.equal(h.rd(N.NVME_REG_ASQ), 0, 'admin queue registers cleared');
  t.equal(h.rd(0x2000 + 12), 1, 'vectors masked');
});

t.test('hostile drivers: DMA outside memory, bad PRPs, bad LBAs, bad doorbells', async (t) => {
  const disk = diskOf(1);
  const h = new NvmeHostDriver({ disk, ram: 8 << 20 });
  h.bringUp(16, 0);
  const nlb = (disk.size / 512);
  const st = (c: { status: number }) => c.status & 0x7ff;
  const io = (cmd: Parameters<NvmeHostDriver['run']>[1]) => h.run(1, { nsid: 1, ...cmd });

  t.equal(st(io({ opc: N.nvme_cmd_read, prp1: 0x7fff000, cdw12: 0 })), N.NVME_SC_DATA_XFER_ERROR, 'PRP1 outside RAM: data transfer error');
  t.equal(h.nvme.faults.data_dma_fault, 1, 'counted as data_dma_fault');
  t.equal(st(io({ opc: N.nvme_cmd_write, prp1: 2 ** 52, cdw12: 0 })), N.NVME_SC_DATA_XFER_ERROR, 'a write from beyond any memory');
  t.equal(st(io({ opc: N.nvme_cmd_read, prp1: 0x300000, prp2: 0x7fff000, cdw12: 23 })), N.NVME_SC_DATA_XFER_ERROR, 'PRP list outside RAM');
  t.equal(h.nvme.faults.prp_dma_fault, 1, 'counted as prp_dma_fault');
  t.equal(st(io({ opc: N.nvme_cmd_read, prp1: 0x300000, prp2: 0x301800, cdw12: 15 })), N.NVME_SC_PRP_INVALID_OFFSET, 'a second page with an offset');
  new DataView(h.m.mem.bytes.buffer).setBigUint64(0x310000, 0x320010n, true);
  t.equal(st(io({ opc: N.nvme_cmd_read, prp1: 0x300000, prp2: 0x310000, cdw12: 23 })), N.NVME_SC_PRP_INVALID_OFFSET, 'a list entry with an offset');
  t.equal(st(io({ opc: N.nvme_cmd_read, prp1: 0x300001, cdw12: 0 })), N.NVME_SC_PRP_INVALID_OFFSET, 'PRP1 not dword aligned');

  // A list page whose chain slot points back at itself: the walk ends with the transfer's length.
  const self = new DataView(h.m.mem.bytes.buffer, 0x330000, 4096);
  for (let i = 0; i < 511; i++) self.setBigUint64(8 * i, 0x340000n, true);
  self.setBigUint64(8 * 511, 0x330000n, true);
  t.equal(st(io({ opc: N.nvme_cmd_read, prp1: 0x340000, prp2: 0x330000, cdw12: 2047 })), N.NVME_SC_INVALID_FIELD, 'over MDTS before any list is read');
  t.equal(h.nvme.faults.mdts_exceeded, 1, 'counted as mdts_exceeded');
  const loopy = new NvmeHostDriver({ disk, ram: 8 << 20, nvme: { mdts: 12 } });
  loopy.bringUp(16, 0);
  loopy.m.mem.bytes.set(h.bytes(0x330000, 4096), 0x330000);
  const t0 = performance.now();
  t.equal(st(loopy.run(1, { opc: N.nvme_cmd_read, nsid: 1, prp1: 0x340000, prp2: 0x330000, cdw12: 2047 })), 0,
    'a 1 MiB read through a list that chains to itself ends (every entry the same page)');
  t.ok(performance.now() - t0 < 2000, 'quickly');

  t.equal(st(io({ opc: N.nvme_cmd_read, prp1: 0x300000, cdw10: nlb, cdw12: 0 })), N.NVME_SC_LBA_RANGE, 'LBA past the end');
  t.equal(st(io({ opc: N.nvme_cmd_read, prp1: 0x300000, cdw10: nlb - 1, cdw12: 1 })), N.NVME_SC_LBA_RANGE, 'a range that runs past the end');
  t.equal(st(io({ opc: N.nvme_cmd_write, prp1: 0x300000, cdw10: 0xffffffff, cdw11: 0xffffffff, cdw12: 0 })), N.NVME_SC_LBA_RANGE, 'the last 64-bit LBA');
  t.equal(st(io({ opc: N.nvme_cmd_write_zeroes, cdw10: nlb - 1, cdw12: 0xffff })), N.NVME_SC_LBA_RANGE, 'Write Zeroes past the end');
  t.equal(h.nvme.faults.lba_range, 4, 'counted as lba_range');
  t.equal(st(h.run(1, { opc: N.nvme_cmd_read, nsid: 7, prp1: 0x300000 })), N.NVME_SC_INVALID_NS, 'namespace 7');
  t.equal(st(io({ opc: 0x7e })), N.NVME_SC_INVALID_OPCODE, 'unknown I/O opcode');
  t.equal(st(io({ opc: N.nvme_cmd_read, psdt: 1, prp1: 0x300000 })), N.NVME_SC_INVALID_FIELD, 'SGLs refused');

  // Doorbells: an unknown queue, then a value past the size, reported by AER; other queues go on.
  h.submit(0, { opc: N.nvme_admin_async_event });
  h.submit(0, { opc: N.nvme_admin_async_event });
  t.same(h.reap(0), []);
  h.wr(N.NVME_REG_DBS + 8 * 9, 1);
  let ev = h.reap(0);
  t.equal(ev.length, 1, 'an AER completes');
  t.equal(ev[0]!.dw0, N.NVME_LOG_ERROR << 16 | N.NVME_AER_ERROR_INVALID_DB_REG << 8 | N.NVME_AER_ERROR, 'error event: invalid doorbell register, error log');
  h.wr(N.NVME_REG_DBS + 8, 16);
  t.same(h.reap(0), [], 'a second error waits until the log is read');
  h.admin({ opc: N.nvme_admin_get_log_page, prp1: ID, cdw10: (63 << 16) | N.NVME_LOG_ERROR });
  h.wr(N.NVME_REG_DBS + 8 + 4, 99);
  ev = h.reap(0);
  t.equal(ev.length, 1, 'reported after the error log was read');
  t.equal((ev[0]!.dw0 >>> 8) & 0xff, N.NVME_AER_ERROR_INVALID_DB_VALUE, 'invalid doorbell write value');
  t.equal(h.nvme.faults.doorbell_invalid, 1);
  t.equal(h.nvme.faults.doorbell_value, 2);
  t.equal(h.rd(N.NVME_REG_CSTS), N.NVME_CSTS_RDY, 'the controller stays up');
  t.equal(io({ opc: N.nvme_cmd_read, prp1: 0x300000, cdw12: 0 }).status, 0, 'and serves the I/O queue');

  // Queues out of memory: creation passes, the first use stops at the fault without a throw.
  t.equal(h.admin({ opc: N.nvme_admin_create_cq, prp1: 0x7fff000, cdw10: 15 << 16 | 2, cdw11: 1 }).status, 0);
  t.equal(h.admin({ opc: N.nvme_admin_create_sq, prp1: 0x7ffe000, cdw10: 15 << 16 | 2, cdw11: 2 << 16 | 1 }).status, 0);
  h.wr(N.NVME_REG_DBS + 16, 1);
  t.equal(h.nvme.faults.sq_dma_fault, 1, 'submission entry outside RAM');
  t.equal(h.admin({ opc: N.nvme_admin_create_cq, prp1: 0x7ffd000, cdw10: 15 << 16 | 3, cdw11: 1 }).status, 0);
  t.equal(h.admin({ opc: N.nvme_admin_create_sq, prp1: 0x170000, cdw10: 15 << 16 | 3, cdw11: 3 << 16 | 1 }).status, 0);
  h.addQueue(3, 0x170000, 0x7ffd000, 16);
  t.doesNotThrow(() => h.submit(3, { opc: N.nvme_cmd_flush, nsid: 1 }));
  t.equal(h.nvme.faults.cq_dma_fault, 1, 'completion entry outside RAM');

  // Queue creation errors.
  const cs = (cdw10: number, cdw11: number, prp1 = 0x180000) => h.admin({ opc: N.nvme_admin_create_sq, prp1, cdw10, cdw11 }).status & 0x7ff;
  t.equal(cs(15 << 16 | 4, 9 << 16 | 1), N.NVME_SC_CQ_INVALID, 'SQ on a CQ that does not exist');
  t.equal(cs(15 << 16 | 1, 1 << 16 | 1), N.NVME_SC_QID_INVALID, 'SQ id in use');
  t.equal(cs(15 << 16 | 99, 1 << 16 | 1), N.NVME_SC_QID_INVALID, 'SQ id past the maximum');
  t.equal(cs(0xffff << 16 | 4, 1 << 16 | 1), N.NVME_SC_QUEUE_SIZE, 'more entries than MQES');
  t.equal(cs(0 << 16 | 4, 1 << 16 | 1), N.NVME_SC_QUEUE_SIZE, 'a one-entry queue');
  t.equal(cs(15 << 16 | 4, 1 << 16 | 0), N.NVME_SC_INVALID_FIELD, 'non-contiguous (PC 0)');
  t.equal(cs(15 << 16 | 4, 1 << 16 | 1, 0x180010), N.NVME_SC_PRP_INVALID_OFFSET, 'queue base not page aligned');
  t.equal(h.admin({ opc: N.nvme_admin_delete_sq, cdw10: 0 }).status & 0x7ff, N.NVME_SC_QID_INVALID, 'the admin SQ cannot be deleted');
  t.equal(h.admin({ opc: N.nvme_admin_get_log_page, prp1: ID, cdw10: (127 << 16) | N.NVME_LOG_SMART, cdw12: 4096 }).status & 0x7ff,
    N.NVME_SC_INVALID_FIELD, 'log page offset past its end');
});

t.test('work per doorbell write is bounded; the rest runs on the clock', async (t) => {
  const h = new NvmeHostDriver();
  h.bringUp(1024, 0);
  let timers = 0;
  const setTimer = h.m.clock.setTimer.bind(h.m.clock);
  h.m.clock.setTimer = (at, fn) => { timers++; return setTimer(at, fn); };
  const n = 1000;
  for (let i = 0; i < n; i++) h.submit(1, { opc: N.nvme_cmd_read, nsid: 1, prp1: 0x300000, cdw10: i, cdw12: 0 }, false);
  h.ring(1);
  const firstPart = h.reap(1, false);
  t.equal(firstPart.length, IO_BUDGET_COMMANDS, 'one budget of commands in the doorbell write');
  t.ok(h.m.clock.pending > 0, 'the rest waits on a timer');
  h.m.clock.runDue();
  const rest = h.reap(1);
  t.equal(rest.length, n - IO_BUDGET_COMMANDS, 'the rest on the clock');
  t.equal(timers, Math.ceil(n / IO_BUDGET_COMMANDS) - 1, 'one timer per budget');
  t.equal(rest.at(-1)!.sqhd, n, 'SQ head reported');
  t.ok([...firstPart, ...rest].every((c) => c.status === 0), 'every read succeeded');
  t.same([...firstPart, ...rest].map((c) => c.cid), Array.from({ length: n }, (_, i) => firstPart[0]!.cid + i), 'in submission order');
  t.equal(h.m.clock.pending, 0, 'no timer left');

  // A CQ that fills holds the SQ until the head doorbell frees room.
  const g = new NvmeHostDriver();
  g.enable();
  g.admin({ opc: N.nvme_admin_create_cq, prp1: 0x13000, cdw10: 3 << 16 | 1, cdw11: 3 });
  g.admin({ opc: N.nvme_admin_create_sq, prp1: 0x12000, cdw10: 7 << 16 | 1, cdw11: 1 << 16 | 1 });
  g.addQueue(1, 0x12000, 0x13000, 8);
  for (let i = 0; i < 7; i++) g.submit(1, { opc: N.nvme_cmd_flush, nsid: 1 }, false);
  g.ring(1);
  // The test's queue record has the SQ's depth; the CQ has 4 entries, so read them by hand.
  const cqe = (i: number) => new DataView(g.m.mem.bytes.buffer, 0x13000 + 16 * i, 16);
  const phases = () => [0, 1, 2, 3].map((i) => (cqe(i).getUint16(14, true) & 1));
  t.same(phases(), [1, 1, 1, 0], 'a CQ of 4 holds 3 completions; the SQ waits');
  g.wr(N.NVME_REG_DBS + 12, 3);
  t.same(phases(), [0, 0, 1, 1], 'the head doorbell frees room: 3 more, the phase flipped at the wrap');
  t.equal(cqe(1).getUint16(8, true), 6, 'SQ head 6 in the last one');
  g.wr(N.NVME_REG_DBS + 12, 2);
  t.equal(cqe(2).getUint16(14, true) & 1, 0, 'the seventh, phase 0');
  t.equal(cqe(2).getUint16(8, true), 7, 'SQ head 7');
});

t.test('bad enables, zero-sized and read-only namespaces, failing back ends, no bus master', async (t) => {
  const h = new NvmeHostDriver();
  h.wr(N.NVME_REG_AQA, 0);
  h.wr(N.NVME_REG_CC, 1);
  t.equal(h.rd(N.NVME_REG_CSTS) & 3, N.NVME_CSTS_CFS, 'AQA 0: fatal status, not ready');
  h.wr(N.NVME_REG_CC, 0);
  h.enable();
  h.wr(N.NVME_REG_CC, 0);
  h.wr(N.NVME_REG_CC, 1 | 5 << N.NVME_CC_MPS_SHIFT);
  t.equal(h.rd(N.NVME_REG_CSTS) & 3, N.NVME_CSTS_CFS, '128 KiB pages refused');
  t.equal(h.nvme.faults.bad_enable, 2);

  const tiny = new NvmeHostDriver({ disk: new MemoryBlockBackend(new Uint8Array(100)) });
  tiny.bringUp(8, 0);
  t.equal(tiny.nvme.nsze, 0, 'a back end under one block: an empty namespace');
  t.equal(tiny.run(1, { opc: N.nvme_cmd_read, nsid: 1, prp1: 0x300000 }).status & 0x7ff, N.NVME_SC_LBA_RANGE, 'LBA 0 out of range');

  const ro = new NvmeHostDriver({ disk: new MemoryBlockBackend(new Uint8Array(1 << 20), true) });
  ro.bringUp(8, 0);
  t.equal(ro.run(1, { opc: N.nvme_cmd_write, nsid: 1, prp1: 0x300000 }).status & 0x7ff, N.NVME_SC_NS_WRITE_PROTECTED, 'write to a read-only back end');
  t.equal(ro.run(1, { opc: N.nvme_cmd_read, nsid: 1, prp1: 0x300000 }).status, 0, 'reads work');

  const failing: BlockBackend = { size: 1 << 20, readOnly: false, read: () => { throw new Error('EIO'); }, write: () => { throw new Error('EIO'); }, flush: () => { throw new Error('EIO'); } };
  const f = new NvmeHostDriver({ disk: failing });
  f.bringUp(8, 0);
  t.equal(f.run(1, { opc: N.nvme_cmd_read, nsid: 1, prp1: 0x300000 }).status & 0x7ff, N.NVME_SC_READ_ERROR, 'unrecovered read error');
  t.equal(f.run(1, { opc: N.nvme_cmd_write, nsid: 1, prp1: 0x300000 }).status & 0x7ff, N.NVME_SC_WRITE_FAULT, 'write fault');
  t.equal(f.nvme.faults.backend_error, 2);

  const nm = new NvmeHostDriver({ master: false });
  nm.enable();
  nm.submit(0, { opc: N.nvme_admin_keep_alive });
  t.same(nm.reap(0), [], 'no DMA without bus mastering');
  nm.cfgWrite(0x04, 2, 0x6);
  t.equal(nm.reap(0).length, 1, 'the command runs once bus mastering is on');
  t.equal(Object.values(nm.nvme.faults).reduce((a, b) => a + b, 0) + f.nvme.faults.internal + h.nvme.faults.internal, 0, 'no internal faults');
});


t.test('a raw image file as the namespace: writes and a flush reach the file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenemu-nvme-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'disk.img');
  fs.writeFileSync(file, randomBytes(2 << 20));
  const disk = new FileBlockBackend(file);
  t.teardown(() => disk.close());
  const h = new NvmeHostDriver({ disk });
  h.bringUp(16, 0);
  t.equal(h.nvme.nsze, 4096, '2 MiB: 4096 blocks');
  const data = Uint8Array.from(randomBytes(16384));
  h.m.mem.bytes.set(data, 0x300000);
  h.prpList(0x100000, [0x301000, 0x302000, 0x303000]);
  t.equal(h.run(1, { opc: N.nvme_cmd_write, nsid: 1, prp1: 0x300000, prp2: 0x100000, cdw10: 4064, cdw12: 31 }).status, 0, 'the last 16 KiB');
  t.equal(h.run(1, { opc: N.nvme_cmd_flush, nsid: 1 }).status, 0, 'flush (fdatasync)');
  t.equal(md5(fs.readFileSync(file).subarray(4064 * 512)), md5(data), 'the file holds them');
});
