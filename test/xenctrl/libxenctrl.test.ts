// A C program of ours linked with Debian's libxenctrl and libxenevtchn
// (test/xenctrl/c/xc_peer.c), run under xenemu's privcmd library against a
// real host: xc_physinfo and xc_domain_getinfo say what the hypervisor and
// xend say, xc_domain_getinfo answers the next domain at or above the id
// asked, and event channels behave as Linux's evtchn device over Xen's:
// an unbound port and its interdomain peer, notify, a port masked until it
// is written back, VIRQ_DOM_EXC when a domain goes. A forked child of a tool
// gets a connection of its own (libxl forks): covered by xl destroy in
// xl.test.ts, which runs libxl's hotplug scripts from forked children.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST, startHost, productEnv } from '../helpers/host.js';
import { parseList, writeCfg, xend, xlOk } from '../host/xl.js';
import { ccBuild } from '../helpers/cc.js';
import { runXen, xenToolsMissing } from '../helpers/xenctrl.js';
import { privcmdEnv } from '../../shared/xenctrl.js';
import { EVTCHNSTAT_closed, EVTCHNSTAT_interdomain } from '../../shared/abi/event_channel.js';

const missing = xenToolsMissing() ?? false;
const PEER = join(DIST, '..', 'test', 'xenctrl', 'c', 'xc_peer.c');
const FAKE_DM = join(DIST, 'test', 'fixtures', 'fake_qemu_dm.js');
const SEABIOS = '/usr/share/seabios/bios.bin';

/** `key value...` lines: the first line of each key. */
function facts(out: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const l of out.trim().split('\n')) {
    const [k, ...v] = l.split(' ');
    if (!m.has(k!)) m.set(k!, v);
  }
  return m;
}

t.test('a libxenctrl program as a Domain-0 program of a xenemu host', { skip: missing }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-xcpeer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, 'xc_peer');
  if (!ccBuild(t, PEER, exe, ['-O2', '-Wall'], ['-lxenctrl', '-lxenevtchn'])) return;
  const h = await startHost(t, { memory: 1024, pcpus: 2 });
  const pv = writeCfg(h, 'pv.cfg', 'memory = 64\nmaxmem = 96\n');
  await xlOk(h, 'create', pv, 'name=a', 'vcpus=2');
  await xlOk(h, 'create', '-p', pv, 'name=b');
  // An HVM guest (paused; its device model the fake): libxenctrl sees its type.
  const hvm = existsSync(SEABIOS);
  if (hvm) await xlOk(h, 'create', '-p', writeCfg(h, 'h.cfg', `type = "hvm"\nmemory = 32\ndevice_model_override = "${FAKE_DM}"\n`), 'name=v');
  else t.comment(`no HVM guest: ${SEABIOS} is missing (Debian's seabios package)`);
  const peer = (...args: string[]) => runXen(h, exe, args);

  await t.test('xc_physinfo and xc_domain_getinfo agree with xend', async (t) => {
    const r = await peer('domains');
    t.equal(r.code, 0, `xc_peer domains exits 0 ${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    const phys = facts(r.stdout).get('physinfo')!;
    const info = await xend(h, 'xend.node.info');
    t.equal(Number(phys[1]), info.nr_cpus, 'nr_cpus');
    t.equal(Math.floor(Number(phys[3]) / 256), info.total_memory, 'total memory');
    t.equal(Math.floor(Number(phys[5]) / 256), info.free_memory, 'free memory (MiB, as xl info rounds it)');
    const doms = lines.filter((l) => l.startsWith('domain ')).map((l) => {
      const f = l.split(' ');
      const kv: Record<string, number> = { domid: Number(f[1]) };
      for (let i = 2; i < f.length; i += 2) kv[f[i]!] = Number(f[i + 1]);
      return kv;
    });
    const listed = parseList(await xlOk(h, 'list'));
    t.same(doms.map((d) => d.domid), listed.map((r) => r.id), 'the domains xl list shows, in order');
    for (const d of doms) {
      const rec = await xend(h, 'xend.domain', String(d.domid));
      t.equal(d.pages! / 256, rec.memory, `d${d.domid}: memory`);
      t.equal(d.max_memkb! / 1024, rec.maxmem, `d${d.domid}: maximum`);
      t.equal(d.online, rec.vcpus, `d${d.domid}: vCPUs online`);
      t.equal(d.max_vcpu_id! + 1, rec.maxvcpus, `d${d.domid}: vCPUs`);
      t.equal(d.paused, rec.state[2] === 'p' ? 1 : 0, `d${d.domid}: paused as xend says`);
      t.equal(d.hvm, rec.type === 'hvm' ? 1 : 0, `d${d.domid}: ${rec.type}`);
    }
    const a = (await xend(h, 'xend.domain', 'a')).domid;
    t.equal(lines.filter((l) => l.startsWith(`vcpu ${a} `)).length, 2, 'xc_vcpu_getinfo answers for both of a\'s vCPUs');
  });

  await t.test('xc_domain_getinfo answers the next domain at or above the id asked', async (t) => {
    const a = (await xend(h, 'xend.domain', 'a')).domid;
    const b = (await xend(h, 'xend.domain', 'b')).domid;
    const last = hvm ? (await xend(h, 'xend.domain', 'v')).domid : b;
    t.same(facts((await peer('next', String(a + 1))).stdout).get('next'), [String(a + 1), String(b)], `asked ${a + 1}: d${b}`);
    t.same(facts((await peer('next', String(last + 1))).stdout).get('next'), [String(last + 1), 'none'], `asked ${last + 1}: none (-ESRCH)`);
  });

  await t.test('event channels: bind, notify, pending, masked until written back', async (t) => {
    const r = await peer('evtchn');
    t.equal(r.code, 0, 'xc_peer evtchn exits 0');
    const f = facts(r.stdout);
    const [pa, pb] = f.get('ports')!.map(Number);
    t.ok(pa! > 0 && pb! > 0 && pa !== pb, `two ports of Domain-0: ${pa}, ${pb}`);
    t.same(f.get('bind-event'), [String(pb)], 'binding raised one event on the new port, delivered to its file');
    t.same(f.get('status'), [String(EVTCHNSTAT_interdomain), 'remote', '0', String(pa)], 'xc_evtchn_status: interdomain to the other port');
    t.same(f.get('pending'), [String(pb)], 'notify on one end is pending on the other');
    t.same(f.get('while-masked'), ['-1'], 'a port stays quiet until the program writes it back');
    t.same(f.get('after-unmask'), [String(pb)], 'the event that waited comes once it is written back');
    t.same(f.get('reverse'), [String(pa)], 'and the other way');
    t.match(f.get('foreign-notify')?.join(' '), /^-1 Transport endpoint is not connected$/, 'notify on a port the handle did not bind: ENOTCONN');
    t.same(f.get('closed-status'), [String(EVTCHNSTAT_closed)], 'unbind closes the ports');
  });

  await t.test('VIRQ_DOM_EXC reaches a program that bound it', async (t) => {
    const child = spawn(exe, ['virq'], { env: privcmdEnv(h.rundir, productEnv()), stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    const ready = new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => { out += d; if (out.includes('ready')) resolve(); }));
    const exited = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
    t.teardown(() => { child.kill('SIGKILL'); });
    await ready;
    const port = /ready (\d+)/.exec(out)![1];
    await xlOk(h, 'destroy', 'b');
    child.stdin!.end('go\n');
    t.equal(await exited, 0, 'xc_peer virq exits 0');
    t.match(out, new RegExp(`^virq ${port}$`, 'm'), `the VIRQ arrived on port ${port} when domain b was destroyed`);
  });

  await t.test("a tool's event channels go with it", async (t) => {
    const r = await runXen(h, 'lsevtchn', ['0']);
    t.equal(r.code, 0, 'Xen\'s lsevtchn runs');
    t.notMatch(r.stdout, /Virtual IRQ 3[\s\S]*Virtual IRQ 3/, 'one VIRQ_DOM_EXC binding left: xend\'s');
  });
});
