// Xen 4.17's own xl and xentop (Debian's xen-utils-4.17, unchanged) as
// Domain-0 programs of a real xenemu host, through xenemu's privcmd library:
// what each prints agrees with xenemu's own xl (xm) for the same domains,
// and what each changes is what the hypervisor and xend then report.
//
// The host has Domain-0, two PV guests (g1: 2 vCPUs, a disk, weight 512;
// g2: 1 vCPU) and, where Debian's SeaBIOS is installed, a paused HVM guest
// (its device model is test/fixtures/fake_qemu_dm.ts).
import t from 'tap';
import * as fs from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { DIST, XENEMU_CLI, startHost, waitFor, type TestHost } from '../helpers/host.js';
import { parseList, writeCfg, xend, xenstore, xlOk } from '../host/xl.js';
import { runXen, xenOk, xenToolsMissing } from '../helpers/xenctrl.js';
import { dom0SystemPath } from '../../shared/host.js';

const missing = xenToolsMissing() ?? false;
const FAKE_DM = join(DIST, 'test', 'fixtures', 'fake_qemu_dm.js');
const SEABIOS = '/usr/share/seabios/bios.bin';

/** xl list's state letters r and b move between two reads; p, s, c, d do not. */
const steady = (state: string) => state.replace(/^[-r][-b]/, '..');

/** `xentop -b` / `xl top -b` rows by name: the columns both print. */
function topRows(out: string): Map<string, { state: string; mem: number; maxmem: number; vcpus: number; rest: string[] }> {
  const rows = new Map<string, { state: string; mem: number; maxmem: number; vcpus: number; rest: string[] }>();
  let inTable = false;
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'NAME') { inTable = true; continue; }
    if (!inTable || f.length < 9) { inTable = inTable && f.length >= 9; continue; }
    // xentop's state letters d s b c p r: b and r move between two reads.
    rows.set(f[0]!, { state: f[1]!.replace(/^(..).(..)./, '$1.$2.'), mem: Number(f[4]), maxmem: Number(f[6]), vcpus: Number(f[8]), rest: f.slice(9) });
  }
  return rows;
}

/** vcpu-list rows: name id vcpu -> hard and soft affinity. */
function vcpuRows(out: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of out.trim().split('\n').slice(1)) {
    const m = /^(\S+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+[\d.]+\s+(.*)$/.exec(line);
    if (m) rows.set(`${m[1]} ${m[2]} ${m[3]}`, m[4]!.trim());
  }
  return rows;
}

function xenemu(h: TestHost, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [XENEMU_CLI, ...args], { env: h.env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

t.test("Xen's xl and xentop on a xenemu host agree with xenemu's xl", { skip: missing }, async (t) => {
  const h = await startHost(t, { memory: 1024, pcpus: 2 });
  const xs = await xenstore(t, h);
  const disk = join(h.root, 'g1.img');
  fs.writeFileSync(disk, Buffer.alloc(0));
  fs.truncateSync(disk, 8 << 20);
  const pv = writeCfg(h, 'pv.cfg', 'type = "pv"\nmemory = 64\nmaxmem = 128\nvif = [ "bridge=xenbr0" ]\n');
  await xlOk(h, 'create', pv, 'name=g1', 'vcpus=2', 'cpu_weight=512', `disk=['${disk},raw,xvda,rw']`);
  await xlOk(h, 'create', pv, 'name=g2');
  const hvm = fs.existsSync(SEABIOS);
  if (hvm) {
    const cfg = writeCfg(h, 'h.cfg', `type = "hvm"\nmemory = 64\ndevice_model_override = "${FAKE_DM}"\n`);
    await xlOk(h, 'create', '-p', cfg, 'name=h1');
  } else {
    t.comment(`no HVM guest: ${SEABIOS} is missing (Debian's seabios package)`);
  }
  const ports0 = await xenOk(h, 'lsevtchn', '0');

  await t.test('xl list: the domains, ids, memory, vCPUs and states of xm list', async (t) => {
    const theirs = parseList(await xenOk(h, 'xl', 'list'));
    const ours = parseList(await xlOk(h, 'list'));
    t.same(theirs.map((r) => r.name), ['Domain-0', 'g1', 'g2', ...(hvm ? ['h1'] : [])], 'every domain, by name, in id order');
    t.same(theirs.map((r) => ({ ...r, time: 0, state: steady(r.state) })), ours.map((r) => ({ ...r, time: 0, state: steady(r.state) })),
      'ids, memory, vCPUs and states agree');
    if (hvm) t.match(theirs.find((r) => r.name === 'h1'), { mem: 64, vcpus: 0, state: /^..p/ }, 'the HVM guest, paused before it ran');
    for (const [i, r] of theirs.entries()) t.ok(Math.abs(r.time - ours[i]!.time) < 5, `${r.name}: CPU time ${r.time} s, xm's ${ours[i]!.time} s`);
  });

  await t.test('xl list -l: libxl\'s configuration of each domain, as xm list -l has it', async (t) => {
    const r = await runXen(h, 'xl', ['list', '-l']);
    t.equal(r.code, 0, 'xl list -l exits 0');
    const theirs = JSON.parse(r.stdout) as { domid: number; config: { c_info: Record<string, unknown>; b_info: Record<string, unknown>;
      disks?: Record<string, unknown>[]; nics?: Record<string, unknown>[] } }[];
    const ours = JSON.parse(await xlOk(h, 'list', '-l')) as { domid: number; name: string; config: Record<string, unknown> | null }[];
    const dom0 = theirs.find((d) => d.domid === 0);
    t.match(dom0?.config, { c_info: { type: 'pv', name: 'Domain-0' }, b_info: { max_memkb: 256 * 1024, target_memkb: 256 * 1024 } },
      'Domain-0, from its stub config');
    for (const name of ['g1', 'g2']) {
      const o = ours.find((d) => d.name === name)!;
      const x = theirs.find((d) => d.domid === o.domid);
      const c = o.config as { vcpus: number; maxvcpus: number; memory: number; maxmem: number; type: string };
      t.match(x?.config, {
        c_info: { name, type: c.type },
        b_info: { max_vcpus: c.maxvcpus, max_memkb: c.maxmem * 1024, target_memkb: c.memory * 1024 },
      }, `${name}: name, type, vCPUs and memory`);
      t.equal((x?.config.b_info.avail_vcpus as number[]).length, c.vcpus, `${name}: ${c.vcpus} vCPUs online`);
    }
    const g1 = theirs.find((d) => d.config.c_info.name === 'g1')!;
    t.match(g1.config.b_info.sched_params, { sched: 'credit', weight: 512 }, 'g1: its credit weight');
    t.match(g1.config.disks, [{ pdev_path: disk, vdev: 'xvda', readwrite: 1 }], 'g1: its disk, from libxl\'s device records');
    const mac = String(await xs.read(`/local/domain/0/backend/vif/${ours.find((d) => d.name === 'g1')!.domid}/0/mac`));
    t.match(g1.config.nics, [{ devid: 0, mac, bridge: 'xenbr0' }], 'g1: its vif and its MAC');
    // For an HVM guest libxl asks the device model for its vCPUs over QMP
    // (query-cpus-fast), which neither the fake nor xenemu's qemu-dm answers
    // yet: that guest alone is left out, with libxl's error.
    const hvmId = hvm ? (await xend(h, 'xend.domain', 'h1')).domid : -1;
    const lines = r.stderr.split('\n').filter(Boolean);
    t.ok(lines.every((l) => l.includes(`Domain ${hvmId}:`)), `stderr speaks only of the HVM guest: ${r.stderr}`);
    t.notOk(theirs.some((d) => d.domid === hvmId), 'which is not listed');
  });

  await t.test('xl info prints what xm info prints', async (t) => {
    t.equal(await xenOk(h, 'xl', 'info'), await xlOk(h, 'info'), 'line for line');
  });

  await t.test("xl dmesg reads the hypervisor's console ring as xm dmesg does", async (t) => {
    const theirs = await xenOk(h, 'xl', 'dmesg');
    const ours = await xlOk(h, 'dmesg');
    t.match(theirs, /^\(XEN\) xenemu hypervisor: host /, 'from its first line');
    t.ok(ours.startsWith(theirs), 'what xm dmesg prints (which may have a line more, written since)');
  });

  await t.test('xl pause and unpause', async (t) => {
    await xenOk(h, 'xl', 'pause', 'g2');
    t.match((await xend(h, 'xend.domain', 'g2')).state, /^..p/, 'xend sees g2 paused');
    await xenOk(h, 'xl', 'unpause', 'g2');
    t.match((await xend(h, 'xend.domain', 'g2')).state, /^..-/, 'and running again');
  });

  await t.test('xl vcpu-pin, and vcpu-list as xm vcpu-list', async (t) => {
    await xenOk(h, 'xl', 'vcpu-pin', 'g1', '1', '1');
    const theirs = vcpuRows(await xenOk(h, 'xl', 'vcpu-list'));
    const ours = vcpuRows(await xlOk(h, 'vcpu-list'));
    t.same(theirs, ours, 'the same vCPUs with the same affinities');
    const g1 = (await xend(h, 'xend.domain', 'g1')).domid;
    t.equal(ours.get(`g1 ${g1} 1`), '1 / all', 'the pin reached the hypervisor');
  });

  await t.test('xl sched-credit: show, -w and -c', async (t) => {
    t.equal(await xenOk(h, 'xl', 'sched-credit'), await xlOk(h, 'sched-credit'), 'show: pool parameters and every domain\'s weight and cap');
    await xenOk(h, 'xl', 'sched-credit', '-d', 'g2', '-w', '128', '-c', '50');
    t.match(await xlOk(h, 'sched-credit', '-d', 'g2'), /^g2\s+\d+\s+128\s+50$/m, 'xm sees weight 128, cap 50');
    t.match(await xenOk(h, 'xl', 'sched-credit', '-d', 'g2'), /^g2\s+\d+\s+128\s+50$/m, 'and so does xl');
  });

  await t.test('xl mem-max and mem-set', async (t) => {
    const id = (await xend(h, 'xend.domain', 'g2')).domid;
    await xenOk(h, 'xl', 'mem-max', 'g2', '100m');
    t.equal(String(await xs.read(`/local/domain/${id}/memory/static-max`)), String(100 * 1024), 'static-max');
    t.equal((await xend(h, 'xend.domain', 'g2')).maxmem, 101, 'the hypervisor\'s maximum (100 MiB and libxl\'s 1 MiB slack)');
    await xenOk(h, 'xl', 'mem-set', 'g2', '48m');
    t.equal(String(await xs.read(`/local/domain/${id}/memory/target`)), String(48 * 1024), 'memory/target');
    await waitFor(async () => (await xend(h, 'xend.domain', 'g2')).memory === 48, 10_000, 'the guest ballooning to 48 MiB');
    const theirs = parseList(await xenOk(h, 'xl', 'list', 'g2'));
    t.equal(theirs[0]!.mem, 48, 'xl list shows 48 MiB as xm does');
  });

  await t.test('xl domid, domname, uptime', async (t) => {
    t.equal(await xenOk(h, 'xl', 'domid', 'g1'), await xlOk(h, 'domid', 'g1'), 'domid');
    const id = (await xend(h, 'xend.domain', 'g2')).domid;
    t.equal(await xenOk(h, 'xl', 'domname', String(id)), await xlOk(h, 'domname', String(id)), 'domname');
    const secs = (s: string) => s.split(':').reduce((a, b) => a * 60 + Number(b), 0);
    const up = (out: string) => new Map(out.trim().split('\n').slice(1).map((l) => { const f = l.trim().split(/\s+/); return [f[0]!, secs(f[2]!)]; }));
    const theirs = up(await xenOk(h, 'xl', 'uptime'));
    const ours = up(await xlOk(h, 'uptime'));
    t.same([...theirs.keys()], [...ours.keys()], 'the same domains');
    for (const [n, s] of theirs) t.ok(Math.abs(s - ours.get(n)!) <= 2, `${n}: up ${s} s, xm says ${ours.get(n)} s`);
  });

  await t.test('xentop -b -i 2', async (t) => {
    const out = await xenOk(h, 'xentop', '-b', '-i', '2', '-d', '1');
    t.equal(out.split('\n').filter((l) => /^\s+NAME\s+STATE/.test(l)).length, 2, 'two screens');
    const theirs = topRows(out.slice(out.lastIndexOf('NAME')));
    const ours = topRows(await xlOk(h, 'top', '-b'));
    t.same([...theirs.keys()], [...ours.keys()], 'the same domains');
    for (const [n, o] of ours) {
      t.match(theirs.get(n), { state: o.state, mem: o.mem, maxmem: o.maxmem, vcpus: o.vcpus }, `${n}: state, memory, maximum and vCPUs`);
    }
    const g1 = theirs.get('g1')!;
    t.equal(g1.rest[3], '1', 'g1 has one VBD');
    t.ok(g1.rest.slice(4, 9).every((v) => /^\d+$/.test(v)), `its counters come from blkback's statistics (${g1.rest.slice(4, 9).join(' ')})`);
  });

  await t.test('no event channel of a finished tool stays bound', async (t) => {
    t.equal(await xenOk(h, 'lsevtchn', '0'), ports0, "Domain-0's ports are what they were");
  });

  await t.test('xl destroy', async (t) => {
    const id = (await xend(h, 'xend.domain', 'g2')).domid;
    const t0 = Date.now();
    await xenOk(h, 'xl', 'destroy', 'g2');
    t.ok(Date.now() - t0 < 5000, `within ${Date.now() - t0} ms`);
    t.notOk(parseList(await xlOk(h, 'list')).some((r) => r.name === 'g2'), 'gone from xm list');
    await waitFor(() => !fs.readdirSync(dom0SystemPath(h.rundir, '/var/lib/xen')).some((f) => f.startsWith(`userdata-d.${id}.`)),
      5000, 'its libxl records gone');
    t.equal(await xs.tryRead(`/local/domain/${id}/name`), null, 'its xenstore home gone');
  });

  await t.test('xl create fails at once with a clear message', async (t) => {
    const cfg = writeCfg(h, 'k.cfg', 'name = "k1"\nmemory = 32\nkernel = "/boot/vmlinuz"\n');
    const t0 = Date.now();
    const r = await runXen(h, 'xl', ['create', cfg], 10_000);
    t.ok(Date.now() - t0 < 5000, `it ends in ${Date.now() - t0} ms`);
    t.not(r.code, 0, 'exit status is not 0');
    t.match(r.stderr, /xenemu: Xen's domain builder cannot run guests on a xenemu host .*create guests with `xenemu xl create`/, 'it says why');
    t.notOk(parseList(await xlOk(h, 'list')).some((x) => x.name === 'k1'), 'no domain was made');
  });

  await t.test('xenemu run and xenemu env', async (t) => {
    const r = await xenemu(h, 'run', '--host', h.name, '--', 'xl', 'domid', 'g1');
    t.equal(r.stdout.trim(), (await xlOk(h, 'domid', 'g1')).trim(), 'xenemu run -- xl domid g1');
    const env = await xenemu(h, 'env', '--host', h.name);
    t.match(env.stdout, new RegExp(`^export XENEMU_HOST_DIR='${h.rundir}'$`, 'm'), 'env names the host');
    t.match(env.stdout, /^export LD_PRELOAD='[^']*xenemu_privcmd\.so'$/m, 'and the library');
    const none = await xenemu(h, 'run', '--host', 'nosuchhost', '--', 'xl', 'list');
    t.equal(none.code, 1, 'no such host: status 1');
    t.match(none.stderr, /no xenemu host is running/, 'and why');
  });

  await t.test('xl from a shell under xenemu env', async (t) => {
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile('sh', ['-c', `eval "$(node ${XENEMU_CLI} env --host ${h.name})" && xl domname 0`], { env: h.env, timeout: 30_000 },
        (err, stdout) => resolve({ code: err ? 1 : 0, stdout }));
    });
    t.equal(r.stdout, 'Domain-0\n', 'eval "$(xenemu env)"; xl domname 0');
  });
});
