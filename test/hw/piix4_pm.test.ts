// The PIIX4 power management function (shared/hw/piix4_pm.ts) and the ACPI
// PM1/timer core (shared/hw/acpi_pm.ts), driven as SeaBIOS's pciinit
// programs it and as Linux's ACPI core uses the FADT's registers.
import t from 'tap';
import { buildPc } from '../../shared/hw/pc.js';
import { ACPI_PM_TIMER_HZ, AcpiPm1, PM1_PWRBTN_STS, PM1_TMR_STS, pmTimerTicks } from '../../shared/hw/acpi_pm.js';
import { FakeClock } from './fakes.js';
import { makeMachine } from './machine_fixture.js';

function pcWithPm() {
  const m = makeMachine();
  const clock = new FakeClock();
  m.clock = clock;
  const sleeps: number[] = [];
  const pc = buildPc(m, { acpiPm: { onSleep: (typ) => sleeps.push(typ) } });
  return { m, clock, pc, sleeps };
}

/** SeaBIOS's piix4_pm_config_setup with acpi_pm_base 0xb000. */
function seabiosSetup(m: ReturnType<typeof makeMachine>): void {
  m.cfgWrite(1, 3, 0x3c, 1, 9);
  m.cfgWrite(1, 3, 0x40, 4, 0xb000 | 1);
  m.cfgWrite(1, 3, 0x80, 1, 0x01);
  m.cfgWrite(1, 3, 0x90, 4, 0xb100 | 1);
  m.cfgWrite(1, 3, 0xd2, 1, 0x09);
}

t.test('identity at 01.3 as QEMU plugs it; PMBA, PMREGMISC and the block they map', async (t) => {
  const { m, pc } = pcWithPm();
  t.equal(m.cfgRead(1, 3, 0, 4), 0x71138086, '8086:7113 at 00:01.3');
  t.equal(m.cfgRead(1, 3, 0x08, 4) >>> 0, 0x06800003, 'class 0x0680, revision 3');
  t.equal(m.cfgRead(1, 3, 0x3d, 1), 1, 'interrupt pin A');
  t.equal(m.cfgRead(1, 3, 0x5b, 1), 0x02, 'DEVACTB APMC_EN preset: no SMM set-up for SeaBIOS to do');
  t.equal(m.cfgRead(1, 0, 0x0e, 1), 0x80, 'the PIIX3 says it is multi-function');
  t.equal(m.inw(0xb004), 0xffff, 'no PM block before PMREGMISC enables it');
  seabiosSetup(m);
  t.equal(m.cfgRead(1, 3, 0x40, 4), 0xb001, 'PMBA reads back with bit 0 set');
  t.equal(pc.pm!.pmBase, 0xb000, 'the block decodes at 0xb000');
  t.equal(m.inw(0xb004), 0, 'PM1a_CNT: SCI_EN clear at reset');
  m.cfgWrite(1, 3, 0x40, 4, 0xc03f);
  t.equal(pc.pm!.pmBase, 0xc000, 'PMBA is 64-byte aligned');
  t.equal(m.inw(0xb004), 0xffff, 'the block moved away');
  t.equal(m.inw(0xc004), 0, 'to 0xc000');
  m.cfgWrite(1, 3, 0x80, 1, 0);
  t.equal(m.inw(0xc004), 0xffff, 'PMREGMISC bit 0 clear: no block');
  t.equal(buildPc(makeMachine()).bus.get(1, 3), undefined, 'without acpiPm (-no-acpi) nothing is at 01.3');
});

t.test('SMI_CMD, SLP_EN with SLP_TYP: S5 is asked for, SLP_EN does not stick', async (t) => {
  const { m, sleeps } = pcWithPm();
  seabiosSetup(m);
  m.outb(0xb2, 0xf1);
  t.equal(m.inw(0xb004) & 1, 1, 'ACPI_ENABLE through SMI_CMD sets SCI_EN (what Linux does when it is clear)');
  m.outb(0xb2, 0xf0);
  t.equal(m.inw(0xb004) & 1, 0, 'ACPI_DISABLE clears it');
  m.outb(0xb2, 0xf1);
  m.outw(0xb004, 0x0001 | (1 << 10));
  t.same(sleeps, [], 'SLP_TYP alone does nothing');
  // Linux's acpi_hw_legacy_sleep: SLP_TYP first, then SLP_TYP | SLP_EN.
  m.outw(0xb004, 0x0001 | (0 << 10));
  m.outw(0xb004, 0x0001 | (0 << 10) | (1 << 13));
  t.same(sleeps, [0], '\\_S5 (SLP_TYP 0) with SLP_EN: onSleep(0)');
  t.equal(m.inw(0xb004) & (1 << 13), 0, 'SLP_EN reads 0');
  m.outb(0xb005, ((1 << 10) | (1 << 13)) >> 8);
  t.same(sleeps, [0, 1], 'a byte write of the high half counts too (S3: 1)');
});

t.test('PM timer at 3.579545 MHz, 24 bits; TMR_STS, power button and GPE0 raise the SCI on IRQ 9', async (t) => {
  const { m, clock } = pcWithPm();
  seabiosSetup(m);
  const t0 = m.inl(0xb008);
  clock.advance(1e9);
  t.equal((m.inl(0xb008) - t0) & 0xffffff, ACPI_PM_TIMER_HZ & 0xffffff, 'one second is 3579545 ticks');
  t.ok(m.inl(0xb008) <= 0xffffff, '24 bits wide');
  t.equal(pmTimerTicks(3600e9 + 1e9 / 3), 3600 * ACPI_PM_TIMER_HZ + Math.floor(ACPI_PM_TIMER_HZ / 3), 'exact after an hour');
  t.equal(m.inw(0xb000) & PM1_TMR_STS, 0, 'bit 23 has not changed yet (it does every 2.34 s)');
  clock.advance(1.5e9);
  t.ok(m.inw(0xb000) & PM1_TMR_STS, 'bit 23 changed: TMR_STS');
  m.outw(0xb000, PM1_TMR_STS);
  t.equal(m.inw(0xb000) & PM1_TMR_STS, 0, 'write 1 to clear');
  t.equal(m.irq.isa[9], 0, 'no SCI while nothing is enabled');
  m.outw(0xb002, 1); // TMR_EN
  clock.advance(3e9);
  t.equal(m.irq.isa[9], 1, 'TMR_EN: the timer raises the SCI by itself when bit 23 changes');
  m.outl(0xb000, PM1_TMR_STS); // dword: status, enable 0
  t.equal(m.irq.isa[9], 0, 'cleared, with TMR_EN off by the same dword write');
  m.outw(0xafe2, 0x0002);
  t.equal(m.inl(0xafe0), 0x00020000, 'GPE0 enable at 0xafe2');
});

t.test('AcpiPm1 as the vCPU uses it: the power button with PWRBTN_EN', async (t) => {
  let now = 0;
  const levels: number[] = [];
  const pm1 = new AcpiPm1(() => now, (l) => levels.push(l));
  pm1.raise(PM1_PWRBTN_STS);
  t.same(levels, [], 'not enabled: status only');
  t.equal(pm1.readEvt(0, 2) & PM1_PWRBTN_STS, PM1_PWRBTN_STS, 'PWRBTN_STS set');
  pm1.writeEvt(2, 2, PM1_PWRBTN_STS);
  t.same(levels, [1], 'PWRBTN_EN with the status pending: SCI');
  pm1.writeEvt(1, 1, PM1_PWRBTN_STS >> 8);
  t.same(levels, [1, 0], 'a byte write of 1 to the status clears it and the SCI');
  now = 10e9;
  t.ok(pm1.readEvt(0, 1) & PM1_TMR_STS, 'TMR_STS after time passed');
});
