// ACPI fixed hardware of a PM register block (ACPI 6.4 §4.8.3): the PM1
// event registers (status, write 1 to clear, and enable), the PM timer and
// the SCI they drive. Two users: the PIIX4 power management function of a
// device model (shared/hw/piix4_pm.ts, as QEMU's hw/acpi/core.c), and the
// HVM vCPU, which answers PM1a_STS/PM1a_EN and PM_TMR itself as Xen's
// hypervisor does (xen/arch/x86/hvm/pmtimer.c), so that a guest polling the
// ACPI PM clocksource never waits for a device model.
//
// The timer counts at 3.579545 MHz from when the block was made. It is 24
// bits wide: the FADT SeaBIOS builds does not set TMR_VAL_EXT, so the guest
// masks to 24 bits and TMR_STS is set each time bit 23 changes.

export const ACPI_PM_TIMER_HZ = 3579545;
export const ACPI_PM_TIMER_MASK = 0xffffff;

// PM1 status and enable bits (ACPI 6.4 tables 4.16-4.19).
export const PM1_TMR_STS = 1 << 0;
export const PM1_BM_STS = 1 << 4;
export const PM1_GBL_STS = 1 << 5;
export const PM1_PWRBTN_STS = 1 << 8;
export const PM1_SLPBTN_STS = 1 << 9;
export const PM1_RTC_STS = 1 << 10;
export const PM1_WAK_STS = 1 << 15;
export const PM1_TMR_EN = PM1_TMR_STS;
export const PM1_PWRBTN_EN = PM1_PWRBTN_STS;

// PM1 control (ACPI 6.4 table 4.20).
export const PM1_CNT_SCI_EN = 1 << 0;
export const PM1_CNT_SLP_TYP_SHIFT = 10;
export const PM1_CNT_SLP_TYP_MASK = 7 << PM1_CNT_SLP_TYP_SHIFT;
export const PM1_CNT_SLP_EN = 1 << 13;

/** The events that raise SCI while enabled (Xen's pmtimer.c SCI_MASK). */
export const PM1_SCI_MASK = PM1_TMR_STS | PM1_PWRBTN_STS | PM1_SLPBTN_STS | PM1_GBL_STS | PM1_RTC_STS;

/** Register offsets in the PM block (the FADT's PM1a_EVT_BLK, PM1a_CNT_BLK and PM_TMR_BLK as SeaBIOS lays them out). */
export const PM_BLK_PM1_STS = 0;
export const PM_BLK_PM1_EN = 2;
export const PM_BLK_PM1_CNT = 4;
export const PM_BLK_TMR = 8;

/** PM timer ticks since `ns` nanoseconds (exact integer arithmetic: ns since boot exceed 2^53 / HZ within hours). */
export function pmTimerTicks(ns: number): number {
  const s = Math.floor(ns / 1e9);
  return s * ACPI_PM_TIMER_HZ + Math.floor(((ns - s * 1e9) * ACPI_PM_TIMER_HZ) / 1e9);
}

/**
 * PM1 event registers and the timer. `now` is a monotonic nanosecond clock;
 * `setSci` is called with the SCI's level whenever it may have changed.
 */
/** What a save keeps of AcpiPm1: the timer as nanoseconds counted, so that a restore goes on from there. */
export interface AcpiPm1State { sts: number; en: number; elapsedNs: number; halves: number; sci: 0 | 1 }

export class AcpiPm1 {
  sts = 0;
  en = 0;
  private start: number;
  /** How many times bit 23 had changed when last looked at. */
  private halves = 0;
  private sci: 0 | 1 = 0;

  constructor(private readonly now: () => number, private readonly setSci: (level: 0 | 1) => void) {
    this.start = now();
  }

  private ticks(): number { return pmTimerTicks(this.now() - this.start); }

  saveState(): AcpiPm1State {
    return { sts: this.sts, en: this.en, elapsedNs: this.now() - this.start, halves: this.halves, sci: this.sci };
  }

  /** A saved state back: the timer resumes its count; the SCI line is driven again at the next update(). */
  restoreState(s: AcpiPm1State): void {
    this.sts = s.sts & 0xffff;
    this.en = s.en & 0xffff;
    this.start = this.now() - s.elapsedNs;
    this.halves = s.halves;
    this.sci = 0;
    this.update();
  }

  /** PM_TMR: the 24-bit count. */
  timer(): number {
    this.update();
    return this.ticks() & ACPI_PM_TIMER_MASK;
  }

  /** Nanoseconds until bit 23 next changes (when TMR_STS will be set). */
  nsToNextHalf(): number {
    const half = 1 << 23;
    const left = half - (this.ticks() % half);
    return Math.ceil((left * 1e9) / ACPI_PM_TIMER_HZ);
  }

  /** Sets TMR_STS for every change of bit 23 since the last look, and brings the SCI up to date. */
  update(): void {
    const h = Math.floor(this.ticks() / (1 << 23));
    if (h !== this.halves) { this.halves = h; this.sts |= PM1_TMR_STS; }
    const level: 0 | 1 = (this.sts & this.en & PM1_SCI_MASK) !== 0 ? 1 : 0;
    if (level !== this.sci) { this.sci = level; this.setSci(level); }
  }

  /** An event from the platform (the power button: PM1_PWRBTN_STS). */
  raise(bits: number): void {
    this.sts |= bits & 0xffff;
    this.update();
  }

  /** A read of `size` bytes at `offset` (0-3) of the 4-byte PM1 event block: status, then enable. */
  readEvt(offset: number, size: number): number {
    this.update();
    const all = (this.sts | (this.en << 16)) >>> 0;
    const v = all >>> (8 * offset);
    return size >= 4 ? v >>> 0 : v & ((1 << (8 * size)) - 1);
  }

  /** A write, byte by byte as Xen's handle_evt_io: status bits are cleared by writing 1, enable bits are stored. */
  writeEvt(offset: number, size: number, value: number): void {
    for (let i = 0; i < size && offset + i < 4; i++) {
      const byte = (value >>> (8 * i)) & 0xff;
      const at = offset + i;
      if (at < 2) this.sts &= ~(byte << (8 * at));
      else {
        const shift = 8 * (at - 2);
        this.en = (this.en & ~(0xff << shift)) | (byte << shift);
      }
    }
    this.update();
  }
}
