// Debian's i386 Linux as an HVM guest whose device model is a stub domain:
// the CD-ROM (launcher/hvm_image.ts's cached image) and the hard disk are
// read through the stub's blkfronts from Domain-0's blkback, the e1000's
// frames leave through the stub's netfront to netback and xenbr0, COM1 is
// the stub's console. The disk's md5 matches the host's, the guest and a PV
// guest ping each other, poweroff -f ends the guest and its stub.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startHost, waitFor } from '../helpers/host.js';
import { busyboxShell, seabiosMissing } from '../helpers/hvm.js';
import { list, PtyClient, writeCfg, xenstore, xl, xlOk } from '../host/xl.js';
import { netGuest } from '../net/guests.js';
import { buildHvmImage } from '../../launcher/hvm_image.js';
import { readStatistics } from '../../processes/dom0/backend_stats.js';

t.setTimeout(300_000);

let image: string | null = null;
let why: string | false = seabiosMissing() ?? false;
if (!why) {
  try { image = (await buildHvmImage({ log: (m) => t.comment(`hvm-image: ${m}`) })).iso; } catch (err) { why = `cannot build the HVM Linux image: ${(err as Error).message}`; }
}

t.test('Debian i386 Linux with its qemu-dm in a stub domain: disk by DMA through blkfront, ping through netfront', { skip: why, timeout: 240_000 }, async (t) => {
  const h = await startHost(t, { memory: 1024, pcpus: 2 });
  const pv = await netGuest(t, h, 'pv', "vif = ['bridge=xenbr0,ip=10.0.0.2']");
  const disk = join(h.root, 'hda.img');
  writeFileSync(disk, randomBytes(8 << 20));
  const md5 = createHash('md5').update(readFileSync(disk)).digest('hex');
  const cfg = writeCfg(h, 'slinux.cfg', [
    'type = "hvm"', 'name = "slinux"', 'memory = 144', 'videoram = 16', 'serial = "pty"', 'boot = "dc"', 'on_crash = "preserve"',
    'device_model_stubdomain_override = 1',
    `disk = [ 'file:${disk},hda,w', 'file:${image},hdc:cdrom,r' ]`,
    "vif = [ 'bridge=xenbr0,model=e1000,mac=00:16:3e:00:10:02' ]",
  ].join('\n'));
  const t0 = Date.now();
  await xlOk(h, 'create', cfg);
  t.teardown(() => xl(h, ['destroy', 'slinux']));
  const rows = await list(h);
  const id = rows.find((r) => r.name === 'slinux')!.id;
  const stub = rows.find((r) => r.name === 'slinux-dm')!.id;
  t.pass(`xl list: slinux d${id}, slinux-dm d${stub}`);
  t.equal(execFileSync('sh', ['-c', `pgrep -f 'xenemu-qemu-dm .*host=${h.name}$' || true`], { encoding: 'utf8' }).trim(), '', 'no qemu-dm process in Domain-0');
  const xs = await xenstore(t, h);
  const pty = new PtyClient(await xs.readString(`/local/domain/${stub}/console/tty`));
  t.teardown(() => pty.close());
  const run = await busyboxShell(pty, join(h.rundir, 'logs', 'console', 'slinux-dm.log'));
  t.pass(`Linux to its shell ${((Date.now() - t0) / 1000).toFixed(1)} s after xl create`);

  t.match(await run('uname -a'), /^Linux hvm 6\.1\.\S+-686 .* i686 GNU\/Linux/m, 'uname -a');
  t.equal((await run('md5sum /dev/sda', 120_000)).trim(), `${md5}  /dev/sda`, "md5sum /dev/sda matches the host's (read through the stub's blkfront)");
  // blkback writes its counters at sync: wait for the next one. md5sum read
  // all 8 MiB (16384 sectors) through the stub's blkfront, whose reads ahead
  // (processes/qemu-dm/block_proxy.ts) make few requests of it.
  const stats = join(h.rundir, 'xen-backend', 'devices', `vbd-${stub}-51712`, 'statistics');
  const rd = await waitFor(() => {
    try { const c = readStatistics(stats); return (c.rd_sect ?? 0) >= (8 << 20) / 512 ? c : null; } catch { return null; }
  }, 15_000, "blkback's counters for the stub's xvda");
  t.pass(`Domain-0's blkback served the stub's xvda (rd_sect ${rd.rd_sect}, rd_req ${rd.rd_req})`);
  await run('ifconfig eth0 10.0.0.9 netmask 255.255.255.0 up');
  t.match(await run('ping -c 3 10.0.0.2', 60_000), /3 packets transmitted, 3 packets received/, 'eth0 (e1000) pings the PV guest through the stub\'s netfront');
  t.match(await pv.run('ping -c 2 10.0.0.9'), /2 received|2 packets received/, 'and the PV guest pings back');
  pty.write('poweroff -f\r');
  await waitFor(async () => !(await list(h)).some((r) => r.id === id || r.id === stub), 60_000, 'poweroff -f ended the guest and its stub');
});
