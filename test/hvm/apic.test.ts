// The HVM vCPU's local APIC (xl.cfg apic=1, hvm_info_table.apic_mode): real
// v86 running test/hvm/asm/apic_bios.asm. With it CPUID leaf 1 says APIC,
// and a vector latched in the HVM segment's msi_pending (HvmIrqLines.injectMsi,
// the hypervisor's part of a passed-through device's MSI) reaches the guest
// through IrqLines and v86.ts's injectApic: delivered once, a second one
// of the same vector held while the first is in service (no EOI), a
// higher one taken at once, as the APIC's IRR and ISR order them. Without
// the APIC (apic=0) CPUID says none and nothing is injected.
import t from 'tap';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import { XENEMU_HVM_SEGMENT_PAGES, hvm_ctl } from '../../shared/abi/hvm/xenemu_hvm.js';
import { shmCreate, shmUnlink } from '../../shared/shm.js';
import { HvmIrqLines } from '../../shared/xen/hvm_ctl.js';
import { V86Machine } from '../../processes/domu/hvm/v86.js';
import { IrqLines } from '../../processes/domu/hvm/irq.js';
import { nasmBuild, nasmMissing } from '../helpers/nasm.js';

const DIST = join(fileURLToPath(import.meta.url), '..', '..', '..');
const ASM = join(DIST, '..', 'test', 'hvm', 'asm', 'apic_bios.asm');
const RAM = 2 << 20;
const CPUID_EDX_APIC = 1 << 9;

interface Tap { teardown(fn: () => unknown): void; ok(v: unknown, m: string): void; equal(a: unknown, b: unknown, m: string): void }

async function boot(t: Tap, bios: Uint8Array, apic: boolean) {
  const memName = `/xenemu.test.apic${apic ? 1 : 0}.${process.pid}`;
  const memSab = shmCreate(memName, RAM);
  t.teardown(() => { shmUnlink(memName); });
  new Uint8Array(memSab).set(bios, 0x100000 - bios.length);
  const m = await V86Machine.create({ ramBytes: RAM, memSegment: memName, bios, apic, onReset: () => {} });
  t.teardown(() => m.destroy());
  const hvm = new SharedArrayBuffer(XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE);
  const i32 = new Int32Array(hvm);
  const injected: number[] = [];
  const irq = new IrqLines(i32, (n) => m.raiseIrq(n), (n) => m.lowerIrq(n), (v) => { if (m.injectApic(v)) injected.push(v); });
  const ram = new Uint8Array(memSab);
  const runUntilHalted = async () => {
    const deadline = Date.now() + 10_000;
    do {
      m.run();
      await new Promise<void>((res) => setImmediate(res));
    } while (!m.halted && Date.now() < deadline);
  };
  await runUntilHalted();
  const msi = async (v: number) => {
    new HvmIrqLines(hvm).injectMsi(v);
    t.ok(irq.changed, `vector 0x${v.toString(16)} latched: the vCPU has something to look at`);
    irq.sync();
    t.equal(Atomics.load(i32, (hvm_ctl.msi_pending >> 2) + (v >> 5)), 0, 'the latch taken');
    await runUntilHalted();
  };
  return { m, ram, msi, injected };
}

t.test('the local APIC takes a passed-through device\'s MSI vectors', { skip: nasmMissing() ?? false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-apic-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bios = nasmBuild(t, ASM, join(dir, 'apic_bios.bin'));
  if (!bios) return;

  const { m, ram, msi, injected } = await boot(t, bios, true);
  t.equal(ram[0x502], 1, 'the firmware ran and halted');
  t.ok(new DataView(ram.buffer).getUint32(0x504, true) & CPUID_EDX_APIC, 'CPUID leaf 1: APIC');
  await msi(0x41);
  t.equal(ram[0x500], 1, 'vector 0x41 delivered once');
  await msi(0x41);
  t.equal(ram[0x500], 1, 'again while 0x41 is in service (no EOI): held in the IRR');
  await msi(0x51);
  t.equal(ram[0x501], 1, 'a higher vector is taken at once');
  t.equal(ram[0x503], 1, 'after the first 0x41');
  t.same(injected, [0x41, 0x41, 0x51], 'each into the APIC');
  t.equal(m.injectApic(5), false, 'a vector below 16 is refused');

  const off = await boot(t, bios, false);
  t.equal(off.ram[0x502], 1, 'without the APIC (apic=0): the firmware ran');
  t.equal(new DataView(off.ram.buffer).getUint32(0x504, true) & CPUID_EDX_APIC, 0, 'CPUID leaf 1: no APIC');
  await off.msi(0x41);
  t.equal(off.ram[0x500], 0, 'nothing delivered');
  t.same(off.injected, [], 'nothing injected');
});
