// The guest's interrupt lines, as Xen's hvm/irq.c keeps them: ISA IRQs a
// device model asserts (XEN_DMOP_set_isa_irq_level), and PCI INTx pins
// (set_pci_intx_level) reaching an ISA IRQ through the PCI link their pin
// swizzles to (hvm_pci_intx_link) and the link's route (set_pci_link_route,
// which qemu-dm derives from PIIX3's PIRQ registers). An ISA IRQ is asserted
// while any of its sources is; its edges go to the vCPU's 8259 PIC.
//
// A pin bind_pt_irq gave a host device (the passthrough page's INTx entries)
// is asserted while the hypervisor says so (pci_intx_level, from the device's
// messages) and a device bound to it still drives its line (its BAR
// channel): the drop its handler caused reaches the PIC with the access.
import { hvm_ctl, pciIntxLink } from '../../../shared/abi/hvm/xenemu_hvm.js';

export class IrqLines {
  private gen = -1;
  /** What the PIC was last told, bit per ISA IRQ. */
  private asserted = 0;
  /** Lines the vCPU's own devices hold (the SCI of the PM registers it answers). */
  private local = 0;
  /** bind_pt_irq's pins with the lines of the devices on them; bound pins (4 words) and what drove them at the last sync. */
  private pt: ReadonlyArray<{ pin: number; line(): 0 | 1 }> = [];
  private readonly ptBound = new Uint32Array(4);
  private readonly ptLive = new Uint32Array(4);
  private readonly scratch = new Uint32Array(4);

  constructor(private readonly i32: Int32Array, private readonly raise: (irq: number) => void,
              private readonly lower: (irq: number) => void, private readonly msi: (vector: number) => void = () => {}) {}

  /** What the PIC was told and the local lines, for a save (the PIC's own state is v86's). */
  get state(): { asserted: number; local: number } { return { asserted: this.asserted, local: this.local }; }

  set state(s: { asserted: number; local: number }) {
    this.asserted = s.asserted & 0xffff;
    this.local = s.local & 0xffff;
    this.gen = -1;
  }

  /** True when a device model changed a level since the last sync(), or a bound host device its line. */
  get changed(): boolean { return Atomics.load(this.i32, hvm_ctl.irq_gen >> 2) !== this.gen || this.ptMoved(); }

  /** The passthrough page's INTx entries (the router reads the page). */
  setPtLines(lines: ReadonlyArray<{ pin: number; line(): 0 | 1 }>): void {
    this.pt = lines;
    this.ptBound.fill(0);
    for (const l of lines) this.ptBound[(l.pin >> 5) & 3]! |= 1 << (l.pin & 31);
    this.gen = -1;
  }

  private ptLines(into: Uint32Array): void {
    into.fill(0);
    for (const l of this.pt) if (l.line()) into[(l.pin >> 5) & 3]! |= 1 << (l.pin & 31);
  }

  private ptMoved(): boolean {
    if (this.pt.length === 0) return false;
    this.ptLines(this.scratch);
    for (let w = 0; w < 4; w++) if (this.scratch[w] !== this.ptLive[w]) return true;
    return false;
  }

  /** A line of the hypervisor's own (Xen's hvm_isa_irq_assert/deassert): applied at the next sync(). */
  setLocal(irq: number, level: 0 | 1): void {
    const was = this.local;
    this.local = level ? this.local | (1 << irq) : this.local & ~(1 << irq);
    if (was !== this.local) this.gen = -1;
  }

  /** Applies the control page's levels to the PIC. */
  sync(): void {
    const g = Atomics.load(this.i32, hvm_ctl.irq_gen >> 2);
    if (g === this.gen && !this.ptMoved()) return;
    this.gen = g;
    this.ptLines(this.ptLive);
    let want = (Atomics.load(this.i32, hvm_ctl.isa_irq_level >> 2) | this.local) & 0xffff;
    const routes = [0, 1, 2, 3].map((l) => Atomics.load(this.i32, (hvm_ctl.pci_link_route >> 2) + l) & 0xf);
    for (let w = 0; w < 4; w++) {
      let bits = (Atomics.load(this.i32, (hvm_ctl.pci_intx_level >> 2) + w) & ~(this.ptBound[w]! & ~this.ptLive[w]!)) >>> 0;
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
    // Messages for the local APIC (bind_pt_irq's MSI bindings): each vector once.
    for (let w = 0; w < 8; w++) {
      if (Atomics.load(this.i32, (hvm_ctl.msi_pending >> 2) + w) === 0) continue;
      let bits = Atomics.exchange(this.i32, (hvm_ctl.msi_pending >> 2) + w, 0) >>> 0;
      while (bits) {
        const b = 31 - Math.clz32(bits);
        bits = (bits & ~(1 << b)) >>> 0;
        this.msi(w * 32 + b);
      }
    }
  }
}
