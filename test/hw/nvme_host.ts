// A minimal NVMe host for the model's tests: the register and queue moves of
// Linux's nvme driver (drivers/nvme/host/pci.c: nvme_pci_configure_admin_queue,
// nvme_submit_cmd, nvme_process_cq), done with MMIO through the PCI bus and
// queues in the test machine's RAM, so each test reads as the driver's steps.
import { MemoryBlockBackend } from '../../shared/hw/block.js';
import { NvmePci, type NvmePciHost } from '../../shared/hw/nvme_pci.js';
import * as N from '../../shared/hw/nvme_regs.js';
import { PCI_COMMAND, PciBus } from '../../shared/hw/pci.js';
import type { BlockBackend } from '../../shared/hw/backend.js';
import type { NvmeOptions } from '../../shared/hw/nvme.js';
import { testMachine, type TestMachine } from './fakes.js';

export const BAR0 = 0xfebf0000;
export const SLOT = 4;
export const ASQ = 0x10000;
export const ACQ = 0x11000;
export const IOSQ = 0x40000; // up to 1024 entries: 64 KiB
export const IOCQ = 0x50000; // up to 1024 entries: 16 KiB
export const ADMIN_DEPTH = 32;

export interface Cmd {
  opc: number; nsid?: number; prp1?: number; prp2?: number;
  cdw10?: number; cdw11?: number; cdw12?: number; cdw13?: number; psdt?: number;
}
export interface Cqe { dw0: number; sqhd: number; sqid: number; cid: number; status: number; phase: number }

interface Queue { sq: number; cq: number; depth: number; tail: number; head: number; phase: number }

export class NvmeHostDriver {
  readonly m: TestMachine;
  readonly dev: NvmePci;
  readonly bus: PciBus;
  readonly msis: { addr: number; data: number }[] = [];
  readonly disk: BlockBackend;
  private readonly queues = new Map<number, Queue>();
  private nextCid = 1;

  constructor(opts: { ram?: number; disk?: BlockBackend; nvme?: NvmeOptions; master?: boolean } = {}) {
    const m = testMachine(opts.ram ?? 16 << 20);
    this.m = m;
    this.disk = opts.disk ?? new MemoryBlockBackend(new Uint8Array(8 << 20));
    const host: NvmePciHost = { ...m, injectMsi: (addr, data) => { this.msis.push({ addr, data }); } };
    this.dev = new NvmePci(host, this.disk, opts.nvme);
    this.bus = new PciBus(m);
    this.bus.plug(this.dev, SLOT);
    this.cfgWrite(0x10, 4, BAR0 | 4);
    this.cfgWrite(0x14, 4, 0);
    this.cfgWrite(PCI_COMMAND, 2, 0x2 | (opts.master === false ? 0 : 0x4));
  }

  get nvme() { return this.dev.nvme; }
  cfgRead(off: number, size: 1 | 2 | 4): number { return this.bus.configRead(SLOT << 3, off, size); }
  cfgWrite(off: number, size: 1 | 2 | 4, v: number): void { this.bus.configWrite(SLOT << 3, off, size, v); }
  rd(off: number): number { return this.m.mmio.read(BAR0 + off, 4); }
  wr(off: number, v: number): void { this.m.mmio.write(BAR0 + off, 4, v >>> 0); }
  intx(): 0 | 1 { return this.m.irq.pci(SLOT, 0); }

  /** nvme_disable_ctrl + admin queue registers + nvme_enable_ctrl. */
  enable(depth = ADMIN_DEPTH): void {
    this.wr(N.NVME_REG_CC, 0);
    if (this.rd(N.NVME_REG_CSTS) & N.NVME_CSTS_RDY) throw new Error('still ready after CC.EN = 0');
    this.wr(N.NVME_REG_AQA, (depth - 1) << 16 | (depth - 1));
    this.wr(N.NVME_REG_ASQ, ASQ); this.wr(N.NVME_REG_ASQ + 4, 0);
    this.wr(N.NVME_REG_ACQ, ACQ); this.wr(N.NVME_REG_ACQ + 4, 0);
    this.wr(N.NVME_REG_CC, N.NVME_CC_EN | N.NVME_SQES << N.NVME_CC_IOSQES_SHIFT | N.NVME_CQES << N.NVME_CC_IOCQES_SHIFT);
    this.queues.set(0, { sq: ASQ, cq: ACQ, depth, tail: 0, head: 0, phase: 1 });
  }

  /** Records an I/O queue pair the test created (Create I/O CQ/SQ went through admin()). */
  addQueue(qid: number, sq: number, cq: number, depth: number): void {
    this.queues.set(qid, { sq, cq, depth, tail: 0, head: 0, phase: 1 });
  }

  /** Writes `cmd` at the SQ's tail; `ring` false leaves the doorbell for later. Returns the CID. */
  submit(qid: number, cmd: Cmd, ring = true): number {
    const q = this.queues.get(qid)!;
    const e = new Uint8Array(64);
    const v = new DataView(e.buffer);
    const cid = this.nextCid++ & 0xffff;
    e[0] = cmd.opc;
    e[1] = (cmd.psdt ?? 0) << 6;
    v.setUint16(2, cid, true);
    v.setUint32(4, cmd.nsid ?? 0, true);
    v.setBigUint64(24, BigInt(cmd.prp1 ?? 0), true);
    v.setBigUint64(32, BigInt(cmd.prp2 ?? 0), true);
    v.setUint32(40, (cmd.cdw10 ?? 0) >>> 0, true);
    v.setUint32(44, (cmd.cdw11 ?? 0) >>> 0, true);
    v.setUint32(48, (cmd.cdw12 ?? 0) >>> 0, true);
    v.setUint32(52, (cmd.cdw13 ?? 0) >>> 0, true);
    this.m.mem.write(q.sq + q.tail * 64, e);
    q.tail = (q.tail + 1) % q.depth;
    if (ring) this.ring(qid);
    return cid;
  }

  ring(qid: number): void { this.wr(N.NVME_REG_DBS + 8 * qid, this.queues.get(qid)!.tail); }

  /** nvme_process_cq: every entry whose phase matches, then the head doorbell. */
  reap(qid: number, ringHead = true): Cqe[] {
    const q = this.queues.get(qid)!;
    const out: Cqe[] = [];
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    for (;;) {
      this.m.mem.read(q.cq + q.head * 16, b);
      const dw3 = v.getUint32(12, true);
      if (((dw3 >>> 16) & 1) !== q.phase) break;
      out.push({ dw0: v.getUint32(0, true), sqhd: v.getUint16(8, true), sqid: v.getUint16(10, true), cid: dw3 & 0xffff, status: (dw3 >>> 17) & 0x7fff, phase: q.phase });
      q.head++;
      if (q.head === q.depth) { q.head = 0; q.phase ^= 1; }
    }
    if (out.length && ringHead) this.wr(N.NVME_REG_DBS + 8 * qid + 4, q.head);
    return out;
  }

  /** One command and its completion (nvme_submit_sync_cmd). */
  run(qid: number, cmd: Cmd): Cqe {
    const cid = this.submit(qid, cmd);
    const got = this.reap(qid);
    const c = got.find((x) => x.cid === cid);
    if (!c || got.length !== 1) throw new Error(`expected one completion of cid ${cid}, got ${JSON.stringify(got)}`);
    return c;
  }

  admin(cmd: Cmd): Cqe { return this.run(0, cmd); }

  /** Creates I/O queue pair `qid` (CQ first, as nvme_create_queue does). */
  createQueuePair(qid: number, depth: number, sq = IOSQ, cq = IOCQ, vector = 0, ien = true): void {
    let c = this.admin({ opc: N.nvme_admin_create_cq, prp1: cq, cdw10: (depth - 1) << 16 | qid, cdw11: vector << 16 | (ien ? 2 : 0) | 1 });
    if (c.status) throw new Error(`create cq: status 0x${c.status.toString(16)}`);
    c = this.admin({ opc: N.nvme_admin_create_sq, prp1: sq, cdw10: (depth - 1) << 16 | qid, cdw11: qid << 16 | 1 });
    if (c.status) throw new Error(`create sq: status 0x${c.status.toString(16)}`);
    this.addQueue(qid, sq, cq, depth);
  }

  /** Linux's whole bring-up: enable, identify, number of queues, one I/O queue pair. */
  bringUp(depth = 64, vector = 0): void {
    this.enable();
    if (!(this.rd(N.NVME_REG_CSTS) & N.NVME_CSTS_RDY)) throw new Error('not ready');
    for (const cns of [N.NVME_ID_CNS_CTRL, N.NVME_ID_CNS_NS]) {
      const c = this.admin({ opc: N.nvme_admin_identify, nsid: cns === N.NVME_ID_CNS_NS ? 1 : 0, prp1: 0x20000, cdw10: cns });
      if (c.status) throw new Error(`identify ${cns}: status 0x${c.status.toString(16)}`);
    }
    this.admin({ opc: N.nvme_admin_set_features, cdw10: N.NVME_FEAT_NUM_QUEUES, cdw11: 0 });
    this.createQueuePair(1, depth, IOSQ, IOCQ, vector);
  }

  bytes(gpa: number, len: number): Uint8Array { return this.m.mem.bytes.slice(gpa, gpa + len); }

  /** Writes a PRP list of `pages` at `list` (chaining through the last slot of each list page to `list` + 4096 * k). */
  prpList(list: number, pages: number[]): void {
    let at = list;
    let i = 0;
    while (i < pages.length) {
      const left = pages.length - i;
      const v = new DataView(this.m.mem.bytes.buffer, at, 4096);
      if (left <= 512) {
        for (let k = 0; k < left; k++) v.setBigUint64(8 * k, BigInt(pages[i + k]!), true);
        return;
      }
      for (let k = 0; k < 511; k++) v.setBigUint64(8 * k, BigInt(pages[i + k]!), true);
      v.setBigUint64(8 * 511, BigInt(at + 4096), true);
      i += 511;
      at += 4096;
    }
  }
}
