// A passed-through e1000's INTx in an HVM guest, in seconds: a boot sector
// of our own (asm/pt_intx.asm) finds the device where qemu-dm's xen_pt put
// it, makes it interrupt through ICS 200 times and counts what its handler
// saw. Every round's interrupt comes (bind_pt_irq to the guest's pin, the
// PIIX3 link, the 8259 in level mode with the cascade level-triggered; a
// halted vCPU woken), none finds the device quiet (the line drops with the
// ICR read that cleared it, not a message's trip later), none comes once
// the device is quiet, and the BAR accesses never reach qemu-dm. Then the
// e1000 sends itself a frame whose payload overwrites a function the guest
// ran hot: the guest must then run the new bytes, not v86's translation of
// the old (the device's DMA ring in its BAR channel, drained by the vCPU).
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { nasmBuild, nasmMissing } from '../helpers/nasm.js';
import { seabiosMissing } from '../helpers/hvm.js';
import { writeCfg, xl, xlOk } from '../host/xl.js';
import { makeAssignable } from '../helpers/pci.js';

const NIC = '0000:03:00.0';
const ASM = join(DIST, '..', 'test', 'pci', 'asm', 'pt_intx.asm');

t.test('a passed-through e1000 interrupts an HVM guest through bind_pt_irq', { skip: seabiosMissing() ?? nasmMissing() ?? false }, async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2, pci: ['e1000'] });
  await makeAssignable(h, NIC);
  const bin = nasmBuild(t, ASM, join(h.root, 'pt_intx.bin'));
  if (!bin) return;
  const img = Buffer.alloc(1 << 20);
  img.set(bin, 0);
  const disk = join(h.root, 'pt_intx.img');
  writeFileSync(disk, img);
  const cfg = writeCfg(h, 'ptx.cfg', [
    'type = "hvm"', 'name = "ptx"', 'memory = 32', 'videoram = 16', 'serial = "pty"', 'boot = "c"',
    `disk = [ 'file:${disk},hda,w' ]`, "pci = [ '03:00.0' ]",
  ].join('\n'));
  await xlOk(h, 'create', cfg);
  t.teardown(() => xl(h, ['destroy', 'ptx']));
  const serial = join(h.rundir, 'logs', 'console', 'ptx.log');
  const dmLog = join(h.rundir, 'logs', 'qemu-dm-ptx.log');
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
  const out = await waitFor(() => (/^DONE/m.test(read(serial)) ? read(serial) : null), 120_000, 'the boot sector to finish')
    .catch((e: Error) => { throw new Error(`${e.message}\n${read(serial)}\n${read(dmLog).slice(-2000)}`); });
  t.comment(out.replace(/\r/g, '').trim().split('\n').filter((l) => /^[A-Z0-9]+ /.test(l)).join(' | '));
  const val = (k: string) => { const m = new RegExp(`^${k} ([0-9a-f]+)`, 'm').exec(out); return m ? parseInt(m[1]!, 16) : NaN; };
  t.notOk(/UNEXPECTED|NO E1000|BAD LINE/.test(out), 'the e1000 found, its line a PIC line, no stray vector');
  t.equal(val('TAKEN'), 200, 'each of 200 causes set through ICS interrupted the guest once');
  t.equal(val('LOST'), 0, 'no round waited in vain');
  t.equal(val('QUIET'), 0, 'no interrupt once the device is quiet');
  t.equal(val('RXLEN'), 64, 'the e1000 sent itself the frame (MAC loopback) into the guest\'s buffer by DMA');
  t.equal(val('DMACODE'), 2, 'code the DMA overwrote runs as the device wrote it (the vCPU forgot its translation)');
  t.equal(val('SPURIOUS'), 0, 'no interrupt found ICR clear: the line dropped with the read that cleared it');
  t.match(read(dmLog), /xen_pt 0000:03:00\.0: 00:[0-9a-f]{2}\.0, INTA bound to machine GSI 16\n/, 'qemu-dm bound the INTx (bind_pt_irq)');
  t.notMatch(read(dmLog), /ioreq\(s\) reached qemu-dm inside BAR/, 'no access to the BAR reached qemu-dm');
});
