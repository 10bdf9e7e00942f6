// Xen 4.17's own `xl list -l` of an HVM guest with xenemu's real qemu-dm:
// libxl asks the device model over QMP (query-cpus-fast, on the socket
// libxl names /var/run/xen/qmp-libxl-<domid>), then prints the domain's
// configuration; its view agrees with xenemu's xl.
import t from 'tap';
import { connect } from 'node:net';
import { join } from 'node:path';
import { runXen, xenToolsMissing } from '../helpers/xenctrl.js';
import { bootGuests, bootGuestsMissing } from '../hvm/boot_guests.js';
import { qmp } from '../helpers/qmp.js';

t.test("Xen's xl list -l of an HVM guest asks qemu-dm over QMP", { skip: xenToolsMissing() ?? bootGuestsMissing() }, async (t) => {
  const g = await bootGuests(t);
  const id = await g.create('lh', '');
  await g.booted('lh');
  const sock = join(g.h.rundir, `qmp-libxl-${id}`);
  t.match(await qmp(sock, 'query-cpus-fast'), [{ 'cpu-index': 0, 'qom-path': '/machine/unattached/device[0]', target: 'i386' }],
    'query-cpus-fast: the one vCPU');
  const greeting = await new Promise<string>((resolve, reject) => {
    const s = connect(sock);
    s.once('data', (d) => { resolve(d.toString('latin1')); s.destroy(); });
    s.once('error', reject);
  });
  t.ok(greeting.endsWith('}\r\n'), 'QMP lines end with CRLF, as QEMU ends them and libxl parses them');
  const r = await runXen(g.h, 'xl', ['list', '-l', 'lh']);
  t.equal(r.code, 0, `xl list -l lh exits 0 ${r.stderr.trim()}`);
  const doms = JSON.parse(r.stdout) as Array<{ domid: number; config: { c_info: { type: string; name: string }; b_info: { max_vcpus: number; max_memkb: number } } }>;
  t.equal(doms.length, 1, 'one domain');
  t.equal(doms[0]!.domid, id, 'its domid');
  t.equal(doms[0]!.config.c_info.type, 'hvm', 'c_info.type hvm');
  t.equal(doms[0]!.config.c_info.name, 'lh', 'c_info.name');
  t.equal(doms[0]!.config.b_info.max_vcpus, 1, 'b_info.max_vcpus 1');
  t.equal(doms[0]!.config.b_info.max_memkb, 32 * 1024, 'b_info.max_memkb: 32 MiB');
});
