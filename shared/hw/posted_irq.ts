// A host PCI device's posted-interrupt table (docs/passthrough.md "Posted
// interrupts"): the segment `xenemu.<host>.pci<bdf>.pi`, which the hypervisor
// creates with the device and alone writes, and the device reads. As VT-d's
// posted-interrupt remapping entries say which vCPU's descriptor a device's
// MSI goes to without Xen in the path, each entry here names the owner's
// event channel an MSI whose data is a given pirq is delivered to; the
// device then sets it pending in the owner's shared_info itself
// (shared/xen/evtchn_2l.ts) and kicks the owner only when upcall_pending was
// clear. The hypervisor writes an entry when the owner binds an MSI pirq of
// the device to a port (EVTCHNOP_bind_pirq) and clears it, before its call
// returns, at the port's close, PHYSDEVOP_unmap_pirq, deassignment and every
// change of owner; an MSI with no entry goes to the hypervisor as before
// (`irq {msi}`, processes/hypervisor/pci_irq.ts).
//
//   offset  what
//   0       magic 'XPIR'
//   4       generation: +1 at each rewrite
//   64      entries, u32 each (PI_ENTRIES): bit 31 valid, bits 20-24 the vCPU,
//           bits 8-19 the port, bits 0-7 the pirq (one word, so a reader never
//           sees half of an entry the hypervisor rewrites)
import { createConnection, type Socket } from 'node:net';
import { shmCreate, shmOpen, shmUnlink } from '../shm.js';
import { PAGE_SIZE } from '../abi/xen.js';

export const PI_MAGIC = 0x52495058; // 'XPIR'
export const PI_ENTRIES = 64;
const PI_BASE = 64 >> 2;
const VALID = 0x80000000;

/** One binding: MSI data `pirq` -> `port` of the owner, notifying `vcpu`. */
export interface PostedBinding { pirq: number; port: number; vcpu: number }

/** Whether a binding fits an entry (pirq < 256, port < 4096, vcpu < 32: Xen's 2-level ABI and NR_PIRQS here). */
export const postable = (b: PostedBinding): boolean =>
  b.pirq >= 0 && b.pirq < 0x100 && b.port > 0 && b.port < 0x1000 && b.vcpu >= 0 && b.vcpu < 0x20;

/** The segment's name: `/xenemu.<host>.pci<bdf without colons>.pi`. */
export function pciPostedSegment(host: string, bdf: string): string {
  return `/xenemu.${host}.pci${bdf.replace(/:/g, '')}.pi`;
}

export class PostedIrqTable {
  private readonly i32: Int32Array;

  private constructor(readonly seg: SharedArrayBuffer) { this.i32 = new Int32Array(seg); }

  /** The hypervisor's: a new, empty table. */
  static create(name: string): PostedIrqTable {
    shmUnlink(name);
    const t = new PostedIrqTable(shmCreate(name, PAGE_SIZE));
    Atomics.store(t.i32, 0, PI_MAGIC);
    return t;
  }

  /** The device's: the table its hypervisor created. */
  static open(name: string): PostedIrqTable {
    const t = new PostedIrqTable(shmOpen(name, PAGE_SIZE));
    if (Atomics.load(t.i32, 0) !== PI_MAGIC) throw new Error(`${name} is no posted-interrupt table`);
    return t;
  }

  /** Replaces every entry with `bindings` (those that do not fit are left to the hypervisor's path). */
  publish(bindings: PostedBinding[]): void {
    const words = bindings.filter(postable).slice(0, PI_ENTRIES).map((b) => (VALID | b.vcpu << 20 | b.port << 8 | b.pirq) | 0);
    for (let i = 0; i < PI_ENTRIES; i++) Atomics.store(this.i32, PI_BASE + i, words[i] ?? 0);
    Atomics.add(this.i32, 1, 1);
  }

  /** The entry for MSI data `pirq`: port << 8 | vcpu, or -1 when none. */
  lookup(pirq: number): number {
    for (let i = 0; i < PI_ENTRIES; i++) {
      const w = Atomics.load(this.i32, PI_BASE + i);
      if (w === 0) return -1; // entries are packed from the first
      if ((w & 0xff) === pirq) return ((w >>> 8) & 0xfff) << 8 | ((w >>> 20) & 0x1f);
    }
    return -1;
  }
}

/**
 * The owner's end of the device's wake-up line (processes/pcidev/irq_socket.ts):
 * connects to `path`, says `key` (the BAR channel's), and calls `upcall(vcpu)`
 * for each byte the device writes: a posted MSI set upcall_pending, so the
 * owner scans its shared_info as for the hypervisor's `upcall` message. The
 * socket does not keep the process alive.
 */
export function listenPostedIrqs(path: string, key: number, upcall: (vcpu: number) => void, onError: (e: Error) => void): Socket {
  const s = createConnection(path);
  const hello = Buffer.alloc(4);
  hello.writeUInt32LE(key >>> 0, 0);
  s.on('connect', () => s.write(hello));
  s.on('data', (d: Buffer) => {
    // Bytes that piled up while the loop was busy are one scan per vCPU named.
    if (d.length === 1) { upcall(d[0]!); return; }
    for (const v of new Set(d)) upcall(v);
  });
  s.on('error', onError);
  s.unref();
  return s;
}
