// A real host driven by the real CLI (`xenemu xl ...`): create from a cfg
// file with overrides, `xl list` columns and flags, refused creates that
// leave nothing behind, pause/unpause, mem-set, destroy, and the node
// commands (dmesg, info, uptime, domid, domname).
import t from 'tap';
import * as fs from 'node:fs';
import { startHost, waitFor } from '../helpers/host.js';
import { shmList, shmPrefix } from '../../shared/shm.js';
import { PtyClient, list, xl, xlOk, xenstore, writeCfg } from './xl.js';

const HEADER = 'Name                                        ID   Mem VCPUs\tState\tTime(s)';
const CFG = `# a test guest
name = "g"
memory = 64
maxmem = 128
vcpus = 1
on_crash = "destroy"
`;

t.test('xl against a real host', async (t) => {
  const h = await startHost(t, { memory: 1024, pcpus: 2 });
  const xs = await xenstore(t, h);
  const cfg = writeCfg(h, 'g.cfg', CFG);

  // create with key=value overrides after the file
  const c = await xl(h, ['create', cfg, 'name=g1', 'memory=48', 'maxmem=96']);
  t.equal(c.code, 0, `create exits 0 (${c.stderr})`);
  t.match(c.stderr, `Parsing config from ${cfg}`);

  const out = await xlOk(h, 'list');
  t.equal(out.split('\n')[0], HEADER, 'xl list header');
  const rows = await list(h);
  t.match(rows[0], { name: 'Domain-0', id: 0, state: /^r-----$/ }, 'Domain-0 first, running');
  const g1 = rows.find((r) => r.name === 'g1')!;
  t.ok(g1, 'g1 listed');
  t.match(g1, { mem: 48, vcpus: 1 }, 'memory and vcpus from the overrides');
  t.match(g1.state, /^[r-]b?-{4}$|^[-r][-b]----$/, 'running or blocked, nothing else');
  t.match(out, /^g1 {38} +\d+ +48 +1 {5}[-r][-b]---- {2} +\d+\.\d$/m, "xl's column layout");
  t.equal((await xlOk(h, 'domid', 'g1')).trim(), String(g1.id), 'domid');
  t.equal((await xlOk(h, 'domname', String(g1.id))).trim(), 'g1', 'domname');
  t.equal(await xs.readString(`/local/domain/${g1.id}/name`), 'g1', 'name in xenstore');
  t.match(await xs.readString(`/local/domain/${g1.id}/console/tty`), /^\/dev\/pts\/\d+$/, 'console tty recorded');
  t.ok(fs.existsSync(`${h.rundir}/logs/console/g1.log`), 'console log');

  await t.test('refused creates leave nothing behind', async (t) => {
    const before = { list: await list(h), shm: shmList(shmPrefix(h.name)).sort(), xs: (await xs.directory('/local/domain')).sort() };
    const strip = (rows: typeof before.list) => rows.map((r) => ({ ...r, time: 0 }));
    const cases: Array<[string, string[], RegExp]> = [
      ['duplicate name', ['name=g1'], /domain with name "g1" already exists/],
      ['memory that does not fit', ['name=big', 'memory=8192', 'maxmem=8192'], /cannot create domain "big": 8192 MiB of memory requested, \d+ MiB free: Out of memory \(-ENOMEM\)/],
      ['unknown key', ['name=typo', 'memroy=64'], /command line:\d+: config parsing error near `memroy': unknown key `memroy'/],
      ['too many vcpus', ['name=wide', 'vcpus=64'], /64 vCPUs asked, a PV guest has at most 32/],
    ];
    for (const [what, over, msg] of cases) {
      const r = await xl(h, ['create', cfg, ...over]);
      t.equal(r.code, 1, `${what}: exit 1`);
      t.match(r.stderr, msg, `${what}: message`);
    }
    t.same(strip(await list(h)), strip(before.list), 'xl list unchanged');
    t.same(shmList(shmPrefix(h.name)).sort(), before.shm, '/dev/shm unchanged');
    t.same((await xs.directory('/local/domain')).sort(), before.xs, 'no xenstore home left');
  });

  await t.test('pause and unpause', async (t) => {
    t.equal((await xl(h, ['pause', 'g1'])).code, 0);
    t.match((await list(h)).find((r) => r.name === 'g1')!.state, /^--p---$/, 'flag p');
    t.equal((await xl(h, ['unpause', 'g1'])).code, 0);
    t.notMatch((await list(h)).find((r) => r.name === 'g1')!.state, /p/, 'no p');
    const r = await xl(h, ['pause', 'nosuch']);
    t.equal(r.code, 1);
    t.match(r.stderr, 'nosuch is an invalid domain identifier (rc=-6)');
  });

  await t.test('mem-set: the guest balloons and the list follows', async (t) => {
    t.equal((await xl(h, ['mem-set', 'g1', '32m'])).code, 0);
    t.equal(await xs.readString(`/local/domain/${g1.id}/memory/target`), String(32 * 1024), 'memory/target in KiB');
    // The guest's balloon driver gives pages back in its own process: poll the list.
    await waitFor(async () => (await list(h)).find((r) => r.name === 'g1')!.mem === 32, 10_000, 'Mem 32');
    t.equal((await xl(h, ['mem-set', 'g1', '64m'])).code, 0);
    await waitFor(async () => (await list(h)).find((r) => r.name === 'g1')!.mem === 64, 10_000, 'Mem 64');
    const r = await xl(h, ['mem-set', 'g1', '512m']);
    t.equal(r.code, 1, 'above maxmem is refused');
    t.pass('Mem followed the target down and up');
  });

  await t.test('node commands', async (t) => {
    const info = await xlOk(h, 'info');
    t.match(info, /^nr_cpus +: 2$/m);
    t.match(info, /^total_memory +: 1024$/m);
    t.match(info, /^free_memory +: \d+$/m);
    t.match(info, /^xen_version +: 4\.17\S*$/m);
    const dmesg = await xlOk(h, 'dmesg');
    t.match(dmesg, /\(XEN\) Domain-0 ready/);
    t.match(dmesg, new RegExp(`\\(XEN\\) d${g1.id}: created`));
    const up = await xlOk(h, 'uptime');
    t.match(up, /^Name +ID Uptime$/m);
    t.match(up, /^Domain-0 +0 +\d+:\d\d:\d\d$/m);
    t.match(up, new RegExp(`^g1 +${g1.id} +\\d+:\\d\\d:\\d\\d$`, 'm'));
    t.match(await xlOk(h, 'info'), /^xend_config_format/m);
  });

  await t.test('destroy', async (t) => {
    const segs = () => shmList(shmPrefix(h.name)).filter((s) => s.includes(`.dom${g1.id}.`));
    t.ok(segs().length > 0, 'the domain has segments');
    const pty = new PtyClient(await xs.readString(`/local/domain/${g1.id}/console/tty`));
    t.teardown(() => pty.close());
    t.equal((await xl(h, ['destroy', 'g1'])).code, 0);
    await pty.hangup;
    t.pass('its console PTY was closed (the client sees a hangup)');
    t.notOk((await list(h)).some((r) => r.name === 'g1'), 'gone from the list');
    t.same(segs(), [], 'its segments are gone');
    t.equal(await xs.tryRead(`/local/domain/${g1.id}`), null, 'its xenstore home is gone');
    t.notOk(await xs.isDomainIntroduced(g1.id), 'released from xenstored');
    const r = await xl(h, ['destroy', '0']);
    t.equal(r.code, 1, 'Domain-0 cannot be destroyed');
  });
});
