// Writers of an HVM domain's interrupt lines in its HVM segment's control
// page (shared/abi/hvm/xenemu_hvm.ts): the hypervisor for dm_op
// set_isa_irq_level / set_pci_intx_level / set_pci_link_route, and a device
// model directly, as its fast path. A change bumps irq_gen and wakes the
// vCPU, which hands the new levels to its PIC (processes/domu/hvm/irq.ts).
import { futexWake } from '../shm.js';
import { hvm_ctl } from '../abi/hvm/xenemu_hvm.js';

export class HvmIrqLines {
  private readonly i32: Int32Array;

  constructor(private readonly seg: SharedArrayBuffer) {
    this.i32 = new Int32Array(seg);
  }

  /** Wakes the vCPU thread if it sleeps (halted, or waiting for an ioreq's answer). */
  kickVcpu(): void {
    Atomics.add(this.i32, hvm_ctl.vcpu_doorbell >> 2, 1);
    futexWake(this.seg, hvm_ctl.vcpu_doorbell, 64);
  }

  private setBit(wordOffset: number, bit: number, level: number): void {
    const idx = (wordOffset >> 2) + (bit >> 5);
    const b = 1 << (bit & 31);
    const old = level ? Atomics.or(this.i32, idx, b) : Atomics.and(this.i32, idx, ~b);
    if (((old & b) !== 0) === (level !== 0)) return;
    Atomics.add(this.i32, hvm_ctl.irq_gen >> 2, 1);
    this.kickVcpu();
  }

  /** XEN_DMOP_set_isa_irq_level: ISA IRQ 0-15. A rising edge is latched for the vCPU too. */
  setIsaIrq(irq: number, level: 0 | 1): void {
    if (level && !(Atomics.load(this.i32, hvm_ctl.isa_irq_level >> 2) & (1 << irq))) {
      Atomics.or(this.i32, hvm_ctl.isa_irq_raised >> 2, 1 << irq);
    }
    this.setBit(hvm_ctl.isa_irq_level, irq, level);
  }

  /** XEN_DMOP_set_pci_intx_level on bus 0: device 0-31, intx 0-3. */
  setPciIntx(device: number, intx: number, level: 0 | 1): void { this.setBit(hvm_ctl.pci_intx_level, device * 4 + intx, level); }

  /**
   * A message for the guest's local APIC (a passed-through device's MSI
   * whose binding names `vector`, Xen's vmsi_deliver of a fixed edge
   * vector): latched for the vCPU, which takes it into the APIC's IRR.
   */
  injectMsi(vector: number): void {
    Atomics.or(this.i32, (hvm_ctl.msi_pending >> 2) + ((vector >> 5) & 7), 1 << (vector & 31));
    Atomics.add(this.i32, hvm_ctl.irq_gen >> 2, 1);
    this.kickVcpu();
  }

  /** XEN_DMOP_set_pci_link_route: link 0-3 (PIRQ A-D) to ISA IRQ 0-15 (0: none). */
  setPciLinkRoute(link: number, irq: number): void {
    if (Atomics.exchange(this.i32, (hvm_ctl.pci_link_route >> 2) + link, irq) === irq) return;
    Atomics.add(this.i32, hvm_ctl.irq_gen >> 2, 1);
    this.kickVcpu();
  }
}
