// Stub domains (docs/stubdom.md): an HVM guest whose qemu-dm runs in a PV
// domain `<guest>-dm` of its own, through the real processes: what the
// toolstack writes, the guest booting through the stub's blkfront and
// console, `xl console <guest>`, destroy, SIGKILL of the stub, and a hostile
// stub domain (test/fixtures/hostile_stubdom.ts) refused everything but its
// target. test/hvm/linux.test.ts boots Linux with a stub domain too (disk
// md5, ping).
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootGuests, bootGuestsMissing, qemuDmPids, row } from '../hvm/boot_guests.js';
import { DIST, XENEMU_CLI, readHostRecord, waitFor } from '../helpers/host.js';
import { list, writeCfg, xlOk } from '../host/xl.js';
import { XEN_EPERM } from '../../shared/abi/errno.js';
import { GNTST_general_error } from '../../shared/abi/grant_table.js';

const HOSTILE = join(DIST, 'test', 'fixtures', 'hostile_stubdom.js');
const STUB = ['device_model_stubdomain_override = 1', 'stubdomain_memory = 32'];

t.test('stub domains', { skip: bootGuestsMissing() }, async (t) => {
  const g = await bootGuests(t);
  const { h, xs } = g;
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
  const stubSerial = (name: string) => join(h.rundir, 'logs', 'console', `${name}-dm.log`);
  const booted = (name: string) => waitFor(() => read(stubSerial(name)).includes('PM timer'), 60_000,
    `${name} to boot\n${read(g.dmLog(name)).slice(-3000)}`);

  await t.test('the toolstack builds <guest>-dm; the guest boots through it; xl console; destroy takes both', async (t) => {
    const id = await g.create('sg', '', STUB);
    const stub = (await row(h, 'sg-dm'))?.id;
    t.ok(stub !== undefined, `xl list shows sg-dm (d${stub})`);
    await booted('sg');
    t.pass("SeaBIOS read the boot sector from the guest's disk through the stub's blkfront, and its COM1 lines reached the stub's console");
    t.equal(await xs.readString(`/local/domain/${stub}/target`), String(id), '/local/domain/<stub>/target');
    t.equal(await xs.readString(`/local/domain/${id}/image/device-model-domid`), String(stub), 'image/device-model-domid');
    t.equal(await xs.readString(`/local/domain/${stub}/device-model/${id}/state`), 'running', 'device-model/<guest>/state');
    const vm = await xs.readString(`/local/domain/${id}/vm`);
    t.match(await xs.readString(`${vm}/image/dmargs`), new RegExp(`^-xen-domid ${id} .*-drive file=/dev/xvda,if=ide,index=0`), 'dmargs name the stub\'s vbd');
    t.equal(await xs.readString(`/local/domain/${stub}/device/vbd/51712/state`), '4', "the stub's vbd xvda is connected");
    t.equal(await xs.readString(`/local/domain/${stub}/device/vif/0/state`), '4', "the stub's vif 0 is connected");
    t.same(qemuDmPids(h), [], 'Domain-0 runs no qemu-dm');
    t.match(await xlOk(h, 'top', '-b', '-i', '1'), /^\s+sg-dm\s/m, 'xl top (xentop) lists sg-dm');
    t.match(read(g.dmLog('sg')), /qemu-dm\[stubdom d\d+\]: running/, 'the stub logs to qemu-dm-sg.log');
    t.match(read(join(h.rundir, 'logs', 'hypervisor.log')), new RegExp(`d${stub}: device model of d${id}`), 'XEN_DOMCTL_set_target');

    const child = spawn(process.execPath, [XENEMU_CLI, 'xl', 'console', 'sg'], { env: { ...h.env, XENEMU_HOST: h.name }, stdio: ['pipe', 'pipe', 'pipe'] });
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor(() => out.includes('PM timer'), 15_000, 'xl console sg shows the guest\'s COM1');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdin.write('\x1d');
    t.equal(await exited, 0, 'xl console sg: the backlog of COM1, Ctrl-] detaches');

    await xlOk(h, 'destroy', 'sg');
    await waitFor(async () => !(await list(h)).some((r) => r.name === 'sg-dm'), 10_000, 'sg-dm destroyed with sg');
    await g.allGone(t, id, 'guest destroyed');
    await g.allGone(t, stub!, 'its stub domain');
  });

  await t.test('SIGKILL of the stub domain crashes its guest; on_crash destroy removes both', async (t) => {
    const id = await g.create('kg', '', [...STUB, 'on_crash = "destroy"']);
    await booted('kg');
    const stub = (await row(h, 'kg-dm'))!.id;
    process.kill(readHostRecord(h.rundir)!.pids.domains[String(stub)]!, 'SIGKILL');
    await waitFor(async () => { const r = await list(h); return !r.some((x) => x.name === 'kg' || x.name === 'kg-dm'); }, 10_000, 'kg and kg-dm gone');
    t.match(read(join(h.rundir, 'logs', 'dom0.log')), new RegExp(`d${id} 'kg': stub domain d${stub} is gone: crashing the guest`), 'the guest was crashed');
    await g.allGone(t, id, 'stub killed');
    await g.allGone(t, stub, 'the killed stub');
  });

  await t.test('a hostile stub domain is refused all but its target, and the target still boots', async (t) => {
    await xlOk(h, 'create', writeCfg(h, 'victim.cfg', 'name = "victim"\nmemory = 32\n'));
    const victim = (await row(h, 'victim'))!.id;
    writeFileSync(join(h.rundir, 'hostile-victim'), String(victim));
    const id = await g.create('hg', '', [...STUB, `stubdomain_kernel = "${HOSTILE}"`]);
    const stub = (await row(h, 'hg-dm'))!.id;
    await booted('hg');
    const line = /hostile-stubdom: (\{.*\})/.exec(read(join(h.rundir, 'logs', `dom${stub}.log`)))?.[1];
    t.ok(line, 'the hostile stub reported');
    const r = JSON.parse(line ?? '{}') as Record<string, number | string>;
    t.equal(r.target_param, 0, 'HVMOP_get_param of its target: allowed');
    t.equal(r.target_segments, 0, "a foreign mapping of its target's memory: allowed");
    for (const k of ['victim_segments', 'dom0_segments', 'victim_ioreq_server', 'dom0_dm_op', 'victim_param', 'sysctl_physinfo', 'pause_target', 'getdomaininfo']) {
      t.equal(r[k], -XEN_EPERM, `${k}: -EPERM`);
    }
    t.equal(r.victim_grant, GNTST_general_error, "mapping the victim's grant 0 (given to Domain-0): GNTST_general_error");
    t.equal(r.victim_xs_write, 'EACCES', "writing the victim's xenstore node: EACCES");
    t.equal(r.dom0_xs_write, 'EACCES', "writing Domain-0's xenstore node: EACCES");
    t.equal(r.victim_xs_read, 'EACCES', "reading the victim's xenstore node: EACCES");
    t.equal(r.target_xs_read, 'OK', "reading its target's xenstore node: allowed (XS_SET_TARGET)");
    const dmesg = await xlOk(h, 'dmesg');
    for (const what of ['xenemu_getsegments denied', 'dm_op denied', 'physinfo denied', 'pausedomain denied', 'hvm_get_param denied']) {
      t.match(dmesg, new RegExp(`d${stub}: ${what}`), `xl dmesg: ${what}`);
    }
    t.match(dmesg, new RegExp(`grant: d${stub} bad flags .* in d${victim} ref 0`), 'xl dmesg: the grant refused');
    t.equal(await xs.readString(`/local/domain/${victim}/name`), 'victim', "the victim's name is unchanged");
    t.match((await row(h, 'victim'))!.state, /^[rb-]{2}-{4}$/, 'the victim keeps running');
    await xlOk(h, 'destroy', 'hg');
    await xlOk(h, 'destroy', 'victim');
    await g.allGone(t, id, 'hostile stub\'s guest destroyed');
  });
});
