// What a user does to a running HVM guest from Domain-0 through xl: look at
// its screen (`xl screenshot`, xenemu's: QMP x-xenemu-text-screen and
// screendump on qemu-dm's socket, through xend) and press its ACPI power
// button (`xl shutdown -F` / `xl trigger power`: XEN_DOMCTL_sendtrigger, the
// PM1a status the vCPU answers, the SCI on IRQ 9). The guest is our boot
// sector (asm/lifecycle_boot.asm): it puts a line on the VGA text screen,
// and its PWRBTN variant waits for the SCI and powers off by ACPI S5.
import t from 'tap';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, startHost, waitFor, type TestHost } from '../helpers/host.js';
import { nasmBuild, nasmMissing } from '../helpers/nasm.js';
import { seabiosMissing } from '../helpers/hvm.js';
import { list, writeCfg, xl, xlOk } from '../host/xl.js';

const ASM = join(DIST, '..', 'test', 'hvm', 'asm', 'lifecycle_boot.asm');

/** The PNG signature and IHDR (PNG spec 11.2.2): width and height, read without a PNG library. */
function pngSize(b: Buffer): { width: number; height: number } | null {
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (b.length < 33 || !b.subarray(0, 8).equals(sig) || b.toString('latin1', 12, 16) !== 'IHDR') return null;
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

const why = seabiosMissing() ?? nasmMissing() ?? false;

t.test('xl screenshot and the ACPI power button of an HVM guest', { skip: why }, async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
  const create = async (h: TestHost, name: string, variant: string, extra: string[] = []): Promise<number> => {
    const bin = nasmBuild(t, ASM, join(h.root, `${name}.bin`), variant ? [variant] : []);
    const img = Buffer.alloc(1 << 20);
    if (bin) img.set(bin, 0);
    writeFileSync(join(h.root, `${name}.img`), img);
    const cfg = writeCfg(h, `${name}.cfg`, [
      'type = "hvm"', `name = "${name}"`, 'memory = 32', 'videoram = 16', 'serial = "pty"', 'boot = "c"',
      `disk = [ 'file:${join(h.root, `${name}.img`)},hda,w' ]`, ...extra,
    ].join('\n'));
    await xlOk(h, 'create', cfg);
    t.teardown(() => xl(h, ['destroy', name]));
    return (await list(h)).find((r) => r.name === name)!.id;
  };
  const serial = (name: string) => join(h.rundir, 'logs', 'console', `${name}.log`);

  await t.test('xl screenshot prints the text screen and writes a PNG', async (t) => {
    await create(h, 'screen', '');
    await waitFor(() => read(serial('screen')).includes('PM timer') || null, 60_000, 'the boot sector ran');
    const r = await xl(h, ['screenshot', 'screen']);
    t.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    t.equal(lines[12], 'XENEMU HVM BOOT SECTOR', "row 12 holds the boot sector's line");
    t.match(r.stdout, /SeaBIOS/, "and SeaBIOS's banner is above it");

    const file = join(h.root, 'screen.png');
    const p = await xl(h, ['screenshot', 'screen', file]);
    t.equal(p.code, 0, p.stderr);
    t.match(p.stderr, `Wrote ${file} (720x400 PNG)`, 'it says where and how big');
    const size = pngSize(readFileSync(file));
    t.same(size, { width: 720, height: 400 }, 'a PNG (signature, IHDR) of 80x25 cells of 9x16 dots');

    const bad = await xl(h, ['screenshot', 'screen', join(h.root, 'no', 'such', 'dir', 'x.png')]);
    t.not(bad.code, 0, 'an unwritable file fails');
    t.match(bad.stderr, /Could not open '.*x\.png'.*ENOENT/, `and says why: ${bad.stderr.trim()}`);
  });

  await t.test('clear errors: a PV guest has no emulated display; a missing domain', async (t) => {
    await xlOk(h, 'create', writeCfg(h, 'pv.cfg', 'name = "pv"\nmemory = 32\n'));
    t.teardown(() => xl(h, ['destroy', 'pv']));
    const pv = await xl(h, ['screenshot', 'pv']);
    t.not(pv.code, 0, 'refused for a PV guest');
    t.match(pv.stderr, /no emulated display/, pv.stderr.trim());
    const none = await xl(h, ['screenshot', 'nosuch']);
    t.not(none.code, 0, 'refused for a missing domain');
    t.match(none.stderr, /nosuch is an invalid domain identifier/, none.stderr.trim());
  });

  await t.test('xl shutdown without PV drivers is refused; -F presses the ACPI power button; the guest powers off', async (t) => {
    const id = await create(h, 'button', 'PWRBTN', ['on_poweroff = "destroy"']);
    await waitFor(() => read(serial('button')).includes('waiting for the power button') || null, 60_000, 'the guest waits');
    const no = await xl(h, ['shutdown', 'button']);
    t.not(no.code, 0, 'xl shutdown alone fails');
    t.match(no.stderr, 'PV control interface not available: external graceful shutdown not possible.', 'with xl\'s words');
    t.match(no.stderr, 'Use "-F" to fallback to ACPI power event.', 'and xl\'s hint');
    const r = await xl(h, ['shutdown', '-F', 'button']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, 'PV control interface not available: sending ACPI power button event.', "xl's message");
    await waitFor(() => read(serial('button')).includes('SCI: power button') || null, 20_000, 'the SCI reached the guest');
    await waitFor(async () => !(await list(h)).some((x) => x.id === id), 20_000, 'on_poweroff destroyed it');
    t.pass('the guest took the SCI, saw PWRBTN_STS and entered S5');
    const pvTrig = await xl(h, ['trigger', '0', 'power']);
    t.not(pvTrig.code, 0, 'a PV domain has no ACPI button');
    t.match(pvTrig.stderr, /Send trigger 'power' failed: EINVAL/, pvTrig.stderr.trim());
  });
});
