// A program of our own, assembled with nasm (test/hvm/asm/pc_check.asm) and
// booted by SeaBIOS from an IDE disk, checks the PC qemu-dm and the vCPU
// make: real-mode BIOS services (int 10h, int 13h extended and CHS reads of
// a known pattern, int 15h E820, int 16h), no phantom floppy drives,
// protected mode with paging, the PIT's IRQ0 counted through the PIC, an
// ATA read by `rep insw`, and a PCI
// scan that finds the i440FX, PIIX3, IDE, the Xen platform device, VGA and
// an e1000. Each result comes back on COM1 (the serial log). The guest is an
// `xl create` of an HVM config: the whole toolstack path; then the same with
// the device model in a stub domain (device_model_stubdomain_override).
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { nasmBuild, nasmMissing } from '../helpers/nasm.js';
import { seabiosMissing } from '../helpers/hvm.js';
import { writeCfg, xl, xlOk } from '../host/xl.js';

const ASM = join(DIST, '..', 'test', 'hvm', 'asm', 'pc_check.asm');
const PATTERN_LBA = 100;

t.test('a nasm program checks the PC an HVM guest sees', { skip: seabiosMissing() ?? nasmMissing() ?? false }, async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const prog = nasmBuild(t, ASM, join(h.root, 'pc_check.bin'));
  if (!prog) return;
  const img = Buffer.alloc(8 << 20);
  img.set(prog, 0);
  for (let n = PATTERN_LBA; n < PATTERN_LBA + 8; n++) {
    for (let i = 0; i < 128; i++) img.writeUInt32LE(((n << 16) + i) >>> 0, n * 512 + i * 4);
  }
  const disk = join(h.root, 'hda.img');
  writeFileSync(disk, img);

  // Through the toolstack, as a user would: xl create of an HVM config, the
  // HVM builder, qemu-dm with libxl's arguments, netback's tap for the NIC;
  // or the stub domain `<name>-dm` with the disk and NIC as its vbd and vif.
  const MiB = 32;
  for (const [name, stub] of [['pccheck', false], ['pcstub', true]] as const) {
    await t.test(stub ? 'with its device model in a stub domain' : 'with qemu-dm in Domain-0', async (t) => {
      const cfg = writeCfg(h, `${name}.cfg`, [
        'type = "hvm"', `name = "${name}"`, `memory = ${MiB + 16}`, 'videoram = 16', 'serial = "pty"', 'boot = "c"',
        `disk = [ 'file:${disk},hda,w' ]`, "vif = [ 'bridge=xenbr0,model=e1000,mac=00:16:3e:00:00:42' ]", 'on_crash = "preserve"',
        ...(stub ? ['device_model_stubdomain_override = 1', 'stubdomain_memory = 32'] : []),
      ].join('\n'));
      await xlOk(h, 'create', cfg);
      t.teardown(() => xl(h, ['destroy', name]));
      const dmLog = join(h.rundir, 'logs', `qemu-dm-${name}.log`);
      const dm = { output: () => (existsSync(dmLog) ? readFileSync(dmLog, 'utf8') : '') };
      const serial = join(h.rundir, 'logs', 'console', stub ? `${name}-dm.log` : `${name}.log`);
      const log = await waitFor(() => (existsSync(serial) && readFileSync(serial, 'utf8').includes('PCCHECK done') ? readFileSync(serial, 'utf8') : null),
        90_000, `pc_check to finish\n${dm.output()}`);
      const line = (key: string) => log.split(/\r?\n/).find((l) => l.startsWith(`${key} `))?.slice(key.length + 1);
      t.equal(line('VIDEO mode'), '03', 'int 10h: the VGA BIOS left text mode 3');
      t.equal(line('INT13EXT'), '01', 'int 13h: extensions present');
      t.equal(line('INT13LBA'), 'ok', 'int 13h AH=42h: four sectors of the pattern by LBA');
      t.equal(line('INT13CHS'), 'ok', 'int 13h AH=02h: a sector of the pattern by CHS from AH=08h geometry');
      const e820 = /^([0-9a-f]{2}) ramkb ([0-9a-f]{8})$/.exec(line('E820 entries') ?? '');
      t.ok(e820, 'int 15h E820 answered');
      const ramKb = parseInt(e820![2]!, 16);
      t.ok(ramKb > (MiB - 2) * 1024 && ramKb <= MiB * 1024, `E820 RAM ${ramKb} KiB for a ${MiB} MiB guest`);
      t.equal(line('INT16 key'), '00', 'int 16h: no key waiting');
      t.equal(line('FLOPPY cmos'), '00 equipment 00', 'no floppy drives: none in the CMOS, none in the BIOS equipment word');
      t.equal(line('PAGING'), '01', 'protected mode with paging');
      t.equal(line('IRQ0 ticks'), '00000064', 'the PIT at 1 kHz: 100 IRQ0s counted through the PIC');
      t.equal(line('PIO rep insw'), 'ok', 'ATA READ SECTORS answered by rep insw with the right sector');
      const pci = log.split(/\r?\n/).filter((l) => l.startsWith('PCI ')).map((l) => l.slice(4));
      t.same(pci, ['00 12378086', '08 70008086', '09 70108086', '0b 71138086', '10 00015853', '18 11111234', '20 100e8086'],
        'PCI bus 0: i440FX 00.0, PIIX3 01.0, IDE 01.1, PIIX4 PM 01.3, Xen platform 02.0, VGA 03.0, e1000 04.0');
      if (stub) t.match(dm.output(), /debugcon: SeaBIOS \(version /, "SeaBIOS's banner on port 0x402 reached the stub's device model");
      await xlOk(h, 'destroy', name);
    });
  }
});
