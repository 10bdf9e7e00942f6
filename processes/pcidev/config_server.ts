// A host PCI device's configuration space on a unix socket,
// <rundir>/pci/<bdf>.cfg (docs/passthrough.md "Configuration space"): only
// Domain-0's programs (pciback, qemu-dm) use it. The client is
// shared/hw/pci_cfg_client.ts.
//
//   request, 12 bytes LE   u32 seq; u8 op (0 read, 1 write, 2 reset: FLR);
//                          u8 size (1|2|4); u16 offset; u32 value
//   reply, 12 bytes LE     u32 seq; i32 err (0 or -errno); u32 value
//
// Offsets of 256 and beyond (no extended space), misaligned accesses, other
// sizes and ops are -EINVAL. Requests are answered in order, one at a time.
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, unlinkSync } from 'node:fs';
import { XEN_EFAULT, XEN_EINVAL } from '../../shared/abi/errno.js';
import type { AccessSize } from '../../shared/hw/machine.js';

export const PCI_CFG_REQ_SIZE = 12;
export const PCI_CFG_OP_READ = 0;
export const PCI_CFG_OP_WRITE = 1;
export const PCI_CFG_OP_RESET = 2;

/**
 * Test hook `pcidev-dma` (XENEMU_TEST_HOOKS, as blkback's): ops 0x80 and
 * 0x81 make the device do a 16-byte DMA read or write (a pattern) at pfn
 * `value` through its IOMMU, as a model would, -EFAULT when it faulted;
 * 0x82 makes it signal an MSI. A host without the hook answers them -EINVAL
 * like any unknown op.
 */
export const PCI_CFG_OP_TEST_DMA_READ = 0x80;
export const PCI_CFG_OP_TEST_DMA_WRITE = 0x81;
/** Same hook: the device signals an MSI (address 0xfee00000, data `value`), as a model with MSI would. */
export const PCI_CFG_OP_TEST_MSI = 0x82;
export const TEST_DMA_HOOK = 'pcidev-dma';

export interface ConfigTarget {
  configRead(offset: number, size: AccessSize): number;
  configWrite(offset: number, size: AccessSize, value: number): void;
  reset(why: string): void;
  /** The test hook's DMA: false when the IOMMU refused it. */
  testDma?(dir: 'read' | 'write', pfn: number): boolean;
  testMsi?(data: number): void;
}

export class ConfigServer {
  private readonly server: Server;
  private readonly conns = new Set<Socket>();
  readonly stats = { requests: 0, rejected: 0 };

  constructor(private readonly path: string, private readonly dev: ConfigTarget, private readonly log: (m: string) => void,
              private readonly testDma = false) {
    this.server = createServer((s) => this.serve(s));
  }

  async listen(): Promise<void> {
    try { unlinkSync(this.path); } catch { /* not there */ }
    await new Promise<void>((res, rej) => { this.server.once('error', rej); this.server.listen(this.path, () => res()); });
    chmodSync(this.path, 0o600);
  }

  private serve(s: Socket): void {
    this.conns.add(s);
    let buf: Buffer = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      const n = Math.floor(buf.length / PCI_CFG_REQ_SIZE);
      if (!n) return;
      const out = Buffer.alloc(n * PCI_CFG_REQ_SIZE);
      for (let i = 0; i < n; i++) this.one(buf.subarray(i * PCI_CFG_REQ_SIZE), out.subarray(i * PCI_CFG_REQ_SIZE));
      buf = buf.subarray(n * PCI_CFG_REQ_SIZE);
      s.write(out);
    });
    s.on('error', () => { /* the peer went */ });
    s.on('close', () => this.conns.delete(s));
  }

  private one(req: Buffer, rep: Buffer): void {
    this.stats.requests++;
    const seq = req.readUInt32LE(0);
    const op = req.readUInt8(4);
    const size = req.readUInt8(5);
    const offset = req.readUInt16LE(6);
    const value = req.readUInt32LE(8);
    rep.writeUInt32LE(seq, 0);
    let err = 0;
    let out = 0;
    if (op === PCI_CFG_OP_RESET) {
      this.dev.reset('function level reset (config socket)');
    } else if ((op === PCI_CFG_OP_TEST_DMA_READ || op === PCI_CFG_OP_TEST_DMA_WRITE) && this.testDma && this.dev.testDma) {
      err = this.dev.testDma(op === PCI_CFG_OP_TEST_DMA_READ ? 'read' : 'write', value) ? 0 : -XEN_EFAULT;
    } else if (op === PCI_CFG_OP_TEST_MSI && this.testDma && this.dev.testMsi) {
      this.dev.testMsi(value);
    } else if ((op !== PCI_CFG_OP_READ && op !== PCI_CFG_OP_WRITE) || (size !== 1 && size !== 2 && size !== 4) ||
               offset >= 256 || offset % size !== 0) {
      err = -XEN_EINVAL;
      this.stats.rejected++;
    } else if (op === PCI_CFG_OP_READ) {
      out = this.dev.configRead(offset, size) >>> 0;
    } else {
      this.dev.configWrite(offset, size, value);
    }
    rep.writeInt32LE(err, 4);
    rep.writeUInt32LE(out, 8);
  }

  close(): void {
    for (const s of this.conns) s.destroy();
    this.server.close();
    try { unlinkSync(this.path); } catch { /* gone */ }
  }
}
