// The PIIX4 power management function (Intel 82371AB function 3, 8086:7113,
// datasheet 290562), which QEMU's pc machine plugs at 00:01.3 beside the
// PIIX3 unless -no-acpi, and the ACPI hardware behind it as QEMU's
// hw/acpi/piix4.c models it. SeaBIOS finds it by its ID, programs it
// (pciinit.c piix4_pm_config_setup) and builds the guest's ACPI tables
// around it (fw/acpi.c: FADT with SCI_INT 9, SMI_CMD 0xb2, PM1a_EVT_BLK
// 0xb000, PM1a_CNT_BLK 0xb004, PM_TMR_BLK 0xb008, GPE0_BLK 0xafe0; its DSDT
// with \_S5 = SLP_TYP 0).
//
// Configuration space: PMBA (0x40, I/O base of the 64-port PM block, bits
// 15:6, bit 0 reads 1), PMREGMISC (0x80, bit 0 enables the block), SMBBA
// (0x90) and SMBHSTCFG (0xd2) stored, DEVACTB (0x58) with APMC_EN preset as
// QEMU does without SMM (so SeaBIOS skips its SMM set-up), interrupt pin A
// and line 9 for the SCI. Everything from 0x40 up is writable, as QEMU's
// default mask.
//
// The PM block: PM1a status/enable (+0), PM1a control (+4), the PM timer
// (+8). Writing SLP_EN with SLP_TYP calls `onSleep(typ)`: 0 is soft off
// (S5) on QEMU's PIIX4 as on Intel's, 1 suspend to RAM; the host decides
// what that means (qemu-dm: XEN_DMOP_remote_shutdown SHUTDOWN_poweroff, as
// qemu-xen's destroy_hvm_domain). GPE0 at 0xafe0 (status, write 1 to clear,
// and enable) and the APM control port 0xb2 (ACPI_ENABLE 0xf1 sets SCI_EN,
// ACPI_DISABLE 0xf0 clears it; 0xb3 is scratch) are claimed at creation.
//
// Under Xen the hypervisor intercepts PM1a status/enable and the timer
// before the device model sees them (xen/arch/x86/hvm/pmtimer.c, at 0xb000
// once HVM_PARAM_ACPI_IOPORTS_LOCATION is 1); this model answers them too,
// so it stands alone in a unit test or a host without Xen.
//
// Left: the SMBus host controller behind SMBBA (its ports read all-ones),
// SMI generation, QEMU's PCI and CPU hot-plug registers (0xae00, 0xaf00),
// the GLBCTL/DEVCTL registers beyond the block's first 12 bytes (read 0).
import type { AccessSize, IoRegion, Machine } from './machine.js';
import { PciFunction, PCI_INTERRUPT_LINE } from './pci.js';
import {
  AcpiPm1, PM1_CNT_SCI_EN, PM1_CNT_SLP_EN, PM1_CNT_SLP_TYP_MASK, PM1_CNT_SLP_TYP_SHIFT, PM1_TMR_EN,
  PM_BLK_PM1_CNT, PM_BLK_TMR,
} from './acpi_pm.js';

export const PIIX4_PM_PMBA = 0x40;
export const PIIX4_PM_DEVACTB = 0x58;
export const PIIX4_PM_PMREGMISC = 0x80;
export const PIIX4_PM_SMBBA = 0x90;
export const PIIX4_PM_SMBHSTCFG = 0xd2;
export const PIIX4_PM_IO_SIZE = 64;
/** QEMU's GPE0 block (GPE_BASE), 2 bytes of status and 2 of enable. */
export const PIIX4_GPE0_BLK = 0xafe0;
export const PIIX4_GPE0_BLK_LEN = 4;
/** APM control and status ports (QEMU's hw/isa/apm.c), the FADT's SMI_CMD. */
export const APM_CNT_IOPORT = 0xb2;
export const ACPI_ENABLE = 0xf1;
export const ACPI_DISABLE = 0xf0;
/** SeaBIOS wires the SCI to ISA IRQ 9 (PIIX4_PM_INTRRUPT) and says so in the FADT. */
export const PIIX4_SCI_IRQ = 9;
/** SLP_TYP values of QEMU's PIIX4 (and SeaBIOS's \_S3/\_S5 packages). */
export const PIIX4_SLP_TYP_S5 = 0;
export const PIIX4_SLP_TYP_S3 = 1;

export interface Piix4PmOptions {
  /** SLP_EN was written with SLP_TYP `typ` (PIIX4_SLP_TYP_S5: power off). */
  onSleep?: (typ: number) => void;
}

export class Piix4Pm extends PciFunction {
  readonly pm1: AcpiPm1;
  /** PM1a control, SLP_EN excepted (it is write-only). */
  cnt = 0;
  gpeSts = 0;
  gpeEn = 0;
  private apmSts = 0;
  private block: IoRegion | null = null;
  private readonly fixed: IoRegion[] = [];
  private pm1Sci: 0 | 1 = 0;
  private sci: 0 | 1 = 0;
  private tmrTimer = -1;

  constructor(private readonly m: Machine, private readonly opts: Piix4PmOptions = {}) {
    super('piix4-pm', { vendor: 0x8086, device: 0x7113, classCode: 0x068000, revision: 0x03, interruptPin: 1 });
    for (let r = 0x40; r < 0x100; r++) this.writable[r] = 0xff;
    this.writable[PIIX4_PM_PMBA] = 0xc0; // 64-byte aligned; bit 0 (I/O space indicator) reads 1
    this.writable[PIIX4_PM_PMBA + 2] = 0;
    this.writable[PIIX4_PM_PMBA + 3] = 0;
    this.config[PIIX4_PM_PMBA] = 0x01;
    this.config[PIIX4_PM_DEVACTB + 3] = 0x02; // APMC_EN: SMM "already set up" (QEMU's piix4_reset without SMM)
    this.config[PCI_INTERRUPT_LINE] = PIIX4_SCI_IRQ;
    this.pm1 = new AcpiPm1(() => m.clock.now(), (level) => { this.pm1Sci = level; this.updateSci(); });
    this.fixed.push(m.ports.register(PIIX4_GPE0_BLK, PIIX4_GPE0_BLK_LEN, {
      read: (o, size) => this.readBytes(((this.gpeSts | (this.gpeEn << 16)) >>> 0), o, size),
      write: (o, size, v) => this.writeGpe(o, size, v),
    }, 'piix4-pm gpe0'));
    this.fixed.push(m.ports.register(APM_CNT_IOPORT, 2, {
      read: (o) => (o === 0 ? 0 : this.apmSts),
      write: (o, size, v) => {
        if (o === 1) { this.apmSts = v & 0xff; return; }
        if ((v & 0xff) === ACPI_ENABLE) this.cnt |= PM1_CNT_SCI_EN;
        else if ((v & 0xff) === ACPI_DISABLE) this.cnt &= ~PM1_CNT_SCI_EN;
        if (size > 1) this.apmSts = (v >>> 8) & 0xff;
      },
    }, 'apm'));
  }

  /** The PM block's base while it decodes (PMBA with PMREGMISC bit 0), else -1. */
  get pmBase(): number {
    if (!(this.config[PIIX4_PM_PMREGMISC]! & 1)) return -1;
    return (this.config[PIIX4_PM_PMBA]! | (this.config[PIIX4_PM_PMBA + 1]! << 8)) & 0xffc0;
  }

  protected override configWriteHook(offset: number, size: AccessSize): void {
    const touches = (reg: number, len: number) => offset < reg + len && offset + size > reg;
    if (touches(PIIX4_PM_PMBA, 4) || touches(PIIX4_PM_PMREGMISC, 1)) this.mapBlock();
  }

  /** QEMU's pm_io_space_update: the block follows PMBA while enabled. */
  private mapBlock(): void {
    const base = this.pmBase;
    const want = base > 0 ? base : -1;
    if (want < 0) {
      this.block?.unregister();
      this.block = null;
    } else if (!this.block) {
      this.block = this.m.ports.register(want, PIIX4_PM_IO_SIZE, {
        read: (o, size) => this.readBlock(o, size),
        write: (o, size, v) => this.writeBlock(o, size, v),
      }, 'piix4-pm');
    } else if (this.block.base !== want) {
      this.block.move(want);
    }
  }

  override detach(): void {
    this.block?.unregister();
    this.block = null;
    for (const r of this.fixed.splice(0)) r.unregister();
    if (this.tmrTimer >= 0) this.m.clock.cancel(this.tmrTimer);
    super.detach();
  }

  private readBytes(all: number, offset: number, size: number): number {
    const v = all >>> (8 * offset);
    return size >= 4 ? v >>> 0 : v & ((1 << (8 * size)) - 1);
  }

  private readBlock(o: number, size: AccessSize): number {
    if (o < PM_BLK_PM1_CNT) return this.pm1.readEvt(o, Math.min(size, 4 - o));
    if (o < PM_BLK_PM1_CNT + 2) return this.readBytes(this.cnt, o - PM_BLK_PM1_CNT, size) & (size === 1 ? 0xff : 0xffff);
    if (o >= PM_BLK_TMR && o < PM_BLK_TMR + 4) return this.readBytes(this.pm1.timer(), o - PM_BLK_TMR, size);
    return 0;
  }

  private writeBlock(o: number, size: AccessSize, v: number): void {
    if (o < PM_BLK_PM1_CNT) {
      this.pm1.writeEvt(o, Math.min(size, 4 - o), v);
      this.armTimer();
      return;
    }
    if (o < PM_BLK_PM1_CNT + 2) {
      let val = this.cnt;
      for (let i = 0; i < size && o + i < PM_BLK_PM1_CNT + 2; i++) {
        const shift = 8 * (o + i - PM_BLK_PM1_CNT);
        val = (val & ~(0xff << shift)) | (((v >>> (8 * i)) & 0xff) << shift);
      }
      this.writeCnt(val);
    }
  }

  /** QEMU's acpi_pm1_cnt_write: SLP_EN does not stick; with it, SLP_TYP names the sleep state. */
  private writeCnt(val: number): void {
    this.cnt = val & 0xffff & ~PM1_CNT_SLP_EN;
    if (val & PM1_CNT_SLP_EN) this.opts.onSleep?.((val & PM1_CNT_SLP_TYP_MASK) >>> PM1_CNT_SLP_TYP_SHIFT);
  }

  private writeGpe(o: number, size: AccessSize, v: number): void {
    for (let i = 0; i < size && o + i < PIIX4_GPE0_BLK_LEN; i++) {
      const byte = (v >>> (8 * i)) & 0xff;
      const at = o + i;
      if (at < 2) this.gpeSts &= ~(byte << (8 * at));
      else this.gpeEn = (this.gpeEn & ~(0xff << (8 * (at - 2)))) | (byte << (8 * (at - 2)));
    }
    this.updateSci();
  }

  /** A general-purpose event from the platform (status bit `n` of GPE0). */
  raiseGpe(n: number): void {
    this.gpeSts |= 1 << n;
    this.updateSci();
  }

  /** While TMR_EN is set, wake up when bit 23 of the timer next changes so TMR_STS raises the SCI on time. */
  private armTimer(): void {
    if (this.tmrTimer >= 0 || !(this.pm1.en & PM1_TMR_EN)) return;
    this.tmrTimer = this.m.clock.setTimer(this.m.clock.now() + this.pm1.nsToNextHalf(), () => {
      this.tmrTimer = -1;
      this.pm1.update();
      this.armTimer();
    });
  }

  private updateSci(): void {
    const level: 0 | 1 = this.pm1Sci || (this.gpeSts & this.gpeEn) !== 0 ? 1 : 0;
    if (level === this.sci) return;
    this.sci = level;
    this.m.irq.setIsaIrq(PIIX4_SCI_IRQ, level);
  }
}
