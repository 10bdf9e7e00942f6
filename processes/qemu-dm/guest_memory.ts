// The guest's RAM as qemu-dm's devices see it for DMA: the domain's memory
// segment (Xen's foreign mapping of the guest, here the segment itself), and
// every write recorded in the HVM segment's modified-memory ring
// (XEN_DMOP_modified_memory), so the vCPU forgets code it had translated
// from those frames.
import { PAGE_SHIFT } from '../../shared/abi/xen.js';
import { recordModified } from '../../shared/abi/hvm/xenemu_hvm.js';
import type { GuestMemory } from '../../shared/hw/machine.js';

export class DmGuestMemory implements GuestMemory {
  private readonly bytes: Uint8Array;
  private readonly i32: Int32Array;
  private readonly dv: DataView;

  constructor(mem: SharedArrayBuffer, readonly size: number, hvm: SharedArrayBuffer) {
    this.bytes = new Uint8Array(mem, 0, size);
    this.i32 = new Int32Array(hvm);
    this.dv = new DataView(hvm);
  }

  private check(gpa: number, len: number): void {
    if (!Number.isInteger(gpa) || gpa < 0 || len < 0 || gpa + len > this.size) {
      throw new RangeError(`guest memory 0x${gpa.toString(16)}+${len} is outside the guest's ${this.size} bytes`);
    }
  }

  read(gpa: number, dst: Uint8Array): void {
    this.check(gpa, dst.length);
    dst.set(this.bytes.subarray(gpa, gpa + dst.length));
  }

  write(gpa: number, src: Uint8Array): void {
    this.check(gpa, src.length);
    if (src.length === 0) return;
    this.bytes.set(src, gpa);
    const first = gpa >>> PAGE_SHIFT;
    const last = (gpa + src.length - 1) >>> PAGE_SHIFT;
    recordModified(this.i32, this.dv, first, last - first + 1);
  }
}
