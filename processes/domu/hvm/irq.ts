// The guest's interrupt lines, as Xen's hvm/irq.c keeps them: ISA IRQs a
// device model asserts (XEN_DMOP_set_isa_irq_level), and PCI INTx pins
// (set_pci_intx_level) reaching an ISA IRQ through the PCI link their pin
// swizzles to (hvm_pci_intx_link) and the link's route (set_pci_link_route,
// which qemu-dm derives from PIIX3's PIRQ registers). An ISA IRQ is asserted
// while any of its sources is; its edges go to the vCPU's 8259 PIC.
import { hvm_ctl, pciIntxLink } from '../../../shared/abi/hvm/xenemu_hvm.js';

export class IrqLines {
  private gen = -1;
  /** What the PIC was last told, bit per ISA IRQ. */
  private asserted = 0;
  /** Lines the vCPU's own devices hold (the SCI of the PM registers it answers). */
  private local = 0;

  constructor(private readonly i32: Int32Array, private readonly raise: (irq: number) => void,
              private readonly lower: (irq: number) => void) {}

  /** What the PIC was told and the local lines, for a save (the PIC's own state is v86's). */
  get state(): { asserted: number; local: number } { return { asserted: this.asserted, local: this.local }; }

  set state(s: { asserted: number; local: number }) {
    this.asserted = s.asserted & 0xffff;
    this.local = s.local & 0xffff;
    this.gen = -1;
  }

  /** True when a device model changed a level since the last sync(). */
  get changed(): boolean { return Atomics.load(this.i32, hvm_ctl.irq_gen >> 2) !== this.gen; }

  /** A line of the hypervisor's own (Xen's hvm_isa_irq_assert/deassert): applied at the next sync(). */
  setLocal(irq: number, level: 0 | 1): void {
    const was = this.local;
    this.local = level ? this.local | (1 << irq) : this.local & ~(1 << irq);
    if (was !== this.local) this.gen = -1;
  }

  /** Applies the control page's levels to the PIC. */
  sync(): void {
    const g = Atomics.load(this.i32, hvm_ctl.irq_gen >> 2);
    if (g === this.gen) return;
    this.gen = g;
    let want = (Atomics.load(this.i32, hvm_ctl.isa_irq_level >> 2) | this.local) & 0xffff;
    const routes = [0, 1, 2, 3].map((l) => Atomics.load(this.i32, (hvm_ctl.pci_link_route >> 2) + l) & 0xf);
    for (let w = 0; w < 4; w++) {
      let bits = Atomics.load(this.i32, (hvm_ctl.pci_intx_level >> 2) + w) >>> 0;
      while (bits) {
        const b = 31 - Math.clz32(bits);
        bits &= ~(1 << b);
        const n = w * 32 + b;
        const irq = routes[pciIntxLink(n >> 2, n & 3)]!;
        if (irq) want |= 1 << irq;
      }
    }
    // An edge that came and went since the last look: raise and lower, so
    // an edge-triggered line's PIC latches it as Xen's vPIC would have.
    const pulsed = Atomics.exchange(this.i32, hvm_ctl.isa_irq_raised >> 2, 0) & ~this.asserted & ~want & 0xffff;
    const diff = want ^ this.asserted;
    for (let irq = 0; irq < 16; irq++) {
      const b = 1 << irq;
      if (pulsed & b) { this.raise(irq); this.lower(irq); continue; }
      if (!(diff & b)) continue;
      if (want & b) this.raise(irq); else this.lower(irq);
    }
    this.asserted = want;
  }
}
