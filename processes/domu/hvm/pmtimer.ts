// Xen's virtual PM timer (xen/arch/x86/hvm/pmtimer.c), the hypervisor's part
// of an HVM guest's ACPI hardware, answered here beside the vCPU: PM1a
// status/enable (4 ports at the PM block's base) and PM_TMR (4 ports at +8).
// PM1a control, GPE0 and the rest of the block are the device model's
// (qemu-dm's PIIX4, shared/hw/piix4_pm.ts), as in Xen, where these accesses
// never leave the hypervisor: a guest reading the ACPI PM clocksource costs
// no ioreq.
//
// Where the block is: HVM_PARAM_ACPI_IOPORTS_LOCATION, mirrored in the HVM
// segment's control page: 0 is Xen's original 0x1f40, 1 is 0xb000 where
// SeaBIOS puts QEMU's PIIX4 (the toolstack sets 1, as hvmloader does for
// qemu-xen). The platform's buttons (XEN_DOMCTL_sendtrigger) arrive as bits
// in the control page's pm1a_raise word.
import { hvm_ctl } from '../../../shared/abi/hvm/xenemu_hvm.js';
import { ACPI_PM1A_EVT_BLK_ADDRESS_V0, ACPI_PM1A_EVT_BLK_ADDRESS_V1 } from '../../../shared/abi/hvm/ioreq.js';
import { AcpiPm1, PM_BLK_TMR } from '../../../shared/hw/acpi_pm.js';
import type { PortHandler } from './v86.js';

/** Xen's SCI_IRQ. */
export const SCI_IRQ = 9;

export class PmTimer implements PortHandler {
  readonly pm1: AcpiPm1;

  constructor(private readonly i32: Int32Array, setSci: (level: 0 | 1) => void) {
    this.pm1 = new AcpiPm1(() => Number(process.hrtime.bigint()), setSci);
    this.locate();
  }

  /** The block's base, re-read from the control page each turn (poll): every port access asks handles(). */
  base = ACPI_PM1A_EVT_BLK_ADDRESS_V0;

  private locate(): void {
    this.base = Atomics.load(this.i32, hvm_ctl.acpi_ioports >> 2) === 1 ? ACPI_PM1A_EVT_BLK_ADDRESS_V1 : ACPI_PM1A_EVT_BLK_ADDRESS_V0;
  }

  /** Whether port `p` is one of the eight this answers. */
  handles(p: number): boolean {
    const o = p - this.base;
    return (o >= 0 && o < 4) || (o >= PM_BLK_TMR && o < PM_BLK_TMR + 4);
  }

  read(p: number, size: 1 | 2 | 4): number {
    const o = p - this.base;
    if (o < 4) return this.pm1.readEvt(o, Math.min(size, 4 - o));
    // handle_pmt_io: only a dword read of the timer itself.
    if (o !== PM_BLK_TMR || size !== 4) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return this.pm1.timer();
  }

  write(p: number, size: 1 | 2 | 4, v: number): void {
    const o = p - this.base;
    if (o < 4) this.pm1.writeEvt(o, Math.min(size, 4 - o), v);
  }

  /** Each turn of the vCPU: follow the block, take the buttons the hypervisor pressed, let TMR_STS raise the SCI. */
  poll(): void {
    this.locate();
    const raised = Atomics.exchange(this.i32, hvm_ctl.pm1a_raise >> 2, 0);
    if (raised) this.pm1.raise(raised);
    else this.pm1.update();
  }
}
