// The PIIX3 PCI-to-ISA bridge (82371SB function 0, 8086:7000, at 01.0,
// multi-function; Intel 82371FB/SB datasheet 290550).
//
// What matters to an HVM guest is the PIRQ route control registers
// PIRQRC[A:D] at 0x60-0x63: bits 3:0 name an ISA IRQ, bit 7 disables the
// route (reset value 0x80). Under Xen the hypervisor, not the device model,
// turns PCI INTx into ISA IRQs: a device asserts INTx with
// XEN_DMOP_set_pci_intx_level (IrqLines.setPciIntx here), Xen finds the link
// with its barber's pole swizzle hvm_pci_intx_link(dev, intx) = (dev + intx) & 3
// (xen/arch/x86/include/asm/hvm/irq.h) and routes the link to the ISA IRQ that
// qemu-xen gave it with XEN_DMOP_set_pci_link_route when the guest wrote
// PIRQRC (qemu-xen's piix3_write_config_xen -> xen_set_pci_link_route, with
// a disabled route passed as IRQ 0). So this model reports each write of
// 0x60-0x63 through `onPirqRoute(link, irq)`, and offers `isaIrqFor` with the
// platform's swizzle for hosts that route without Xen. That swizzle is QEMU's
// PIIX3's, the slot minus one (shared/abi/hvm/xenemu_hvm.ts pciIntxLink):
// xenemu boots SeaBIOS without hvmloader, and SeaBIOS describes the
// interrupts with it.
//
// The reset control register (0xCF9, the datasheet's RC register) is here too:
// writing bit 2 resets the system (bit 1 says hard or soft), as QEMU's
// rcr_write; `onReset` is called.
import { pciIntxLink } from '../abi/hvm/xenemu_hvm.js';
import type { IoHandler } from './machine.js';
import { PCI_COMMAND, PCI_STATUS, PciFunction } from './pci.js';

export const PIIX_PIRQRC = 0x60;
export const PIIX_PIRQ_DISABLED = 0x80;

export interface Piix3Options {
  /** The guest routed PIRQ link 0-3 (A-D) to ISA IRQ `irq` (0: disabled), as xen_set_pci_link_route. */
  onPirqRoute?: (link: number, irq: number) => void;
  /** The guest asked for a system reset through 0xCF9. */
  onReset?: (hard: boolean) => void;
}

/** Xen's PCI INTx to link swizzle (hvm_pci_intx_link). */
export { pciIntxLink };

export class Piix3Isa extends PciFunction {
  private rcr = 0;

  /** 0xCF9, to be placed at the host bridge's CONFIG_ADDRESS ports (see PciConfigMech1.resetControl). */
  readonly resetControl: IoHandler = {
    read: () => this.rcr,
    write: (_offset, _size, value) => {
      if (value & 4) { this.opts.onReset?.((value & 2) !== 0); return; }
      this.rcr = value & 2; // keep the reset type only, as QEMU
    },
  };

  constructor(private readonly opts: Piix3Options = {}) {
    super('piix3', { vendor: 0x8086, device: 0x7000, classCode: 0x060100, headerType: 0x80 });
    for (let r = 0x40; r < 0x100; r++) this.writable[r] = 0xff;
    // PIRQRC: bits 6:4 are reserved.
    for (let i = 0; i < 4; i++) this.writable[PIIX_PIRQRC + i] = 0x8f;
    // Reset values (the datasheet's defaults; QEMU's piix3_reset).
    const c = this.config;
    c[PCI_COMMAND] = 0x07;
    c[PCI_STATUS + 1] = 0x02;
    c[0x4c] = 0x4d; c[0x4e] = 0x03;
    for (let i = 0; i < 4; i++) c[PIIX_PIRQRC + i] = PIIX_PIRQ_DISABLED;
    c[0x69] = 0x02; c[0x70] = 0x80; c[0x76] = 0x0c; c[0x77] = 0x0c; c[0x78] = 0x02;
    c[0xa0] = 0x08; c[0xa8] = 0x0f;
  }

  /** The ISA IRQ link 0-3 is routed to, or null when disabled. */
  linkIrq(link: number): number | null {
    const v = this.config[PIIX_PIRQRC + (link & 3)]!;
    return v & PIIX_PIRQ_DISABLED ? null : v & 0x0f;
  }

  /** The ISA IRQ a device's INTx (0-3: INTA#-INTD#) reaches, with Xen's swizzle; null when its link is disabled. */
  isaIrqFor(device: number, intx: number): number | null {
    return this.linkIrq(pciIntxLink(device, intx));
  }

  protected override configWriteHook(offset: number, size: number): void {
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      if (at < PIIX_PIRQRC || at > PIIX_PIRQRC + 3) continue;
      const link = at - PIIX_PIRQRC;
      this.opts.onPirqRoute?.(link, this.linkIrq(link) ?? 0);
    }
  }
}
