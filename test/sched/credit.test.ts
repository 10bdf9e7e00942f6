// Xen's credit scheduler on fixture domains (VcpuPool burning): weights,
// caps, BOOST on wake-up, hard affinity, pause. Tolerances are wide: the
// machine has 2 cores shared with other work.
import t from 'tap';
import { startSchedHost } from './vcpu_host.js';
import { affinity, hvLog, pin, runningOver, schedCredit, schedGlobals } from './credit_host.js';

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms)); // measurement windows, not event waits

t.test('pcpus=1: weights 256 and 512 share the pCPU 1:2', async (t) => {
  const s = await startSchedHost(t, 1);
  const a = await s.domain();
  const b = await s.domain();
  t.same(await schedCredit(s, a.domid), { ret: 0, weight: 256, cap: 0 }, 'default weight 256, no cap');
  t.equal((await schedCredit(s, b.domid, { weight: 512 })).ret, 0, 'weight 512 set');
  t.equal((await schedCredit(s, b.domid)).weight, 512, 'and read back');
  await a.p.call('burnStart', { seconds: 30 });
  await b.p.call('burnStart', { seconds: 30 });
  await settle(500);
  const [ra, rb] = await runningOver([a.p, b.p], 3000);
  const ratio = rb / ra;
  // 2.0 ideal; the floor leaves room for a host loaded by other work (1.0 would be no weighting).
  t.ok(ratio > 1.35 && ratio < 2.7, `B/A = ${ratio.toFixed(2)} (A ${(ra / 1e6).toFixed(0)} ms, B ${(rb / 1e6).toFixed(0)} ms)`);
});

t.test('pcpus=1: a cap of 25 holds a busy guest near 25% of the pCPU', async (t) => {
  const s = await startSchedHost(t, 1);
  const a = await s.domain();
  t.equal((await schedCredit(s, a.domid, { cap: 25 })).ret, 0, 'cap 25 set');
  await a.p.call('burnStart', { seconds: 30 });
  await settle(300);
  const t0 = process.hrtime.bigint();
  const [ra] = await runningOver([a.p], 3000);
  const share = ra / Number(process.hrtime.bigint() - t0);
  t.ok(share > 0.15 && share < 0.35, `share ${(share * 100).toFixed(1)}% with cap 25`);
  const st = await a.p.call('stats');
  t.ok(st.vcpus[0].offline_ns > 1e9, `parked (offline) ${(st.vcpus[0].offline_ns / 1e6).toFixed(0)} ms between its periods`);
  t.equal((await schedCredit(s, a.domid, { cap: 0 })).ret, 0, 'cap removed');
  await settle(200);
  const t1 = process.hrtime.bigint();
  const [rb] = await runningOver([a.p], 1000);
  const free = rb / Number(process.hrtime.bigint() - t1);
  t.ok(free > 0.5, `uncapped it runs freely again (${(free * 100).toFixed(0)}%)`);
});

t.test('pcpus=1: an idle guest woken under load runs within a time slice (BOOST)', async (t) => {
  const s = await startSchedHost(t, 1);
  const busy1 = await s.domain();
  const busy2 = await s.domain();
  const idle = await s.domain();
  await idle.p.call('burn', { seconds: 0.01 }); // its thread is warm
  await busy1.p.call('burnStart', { seconds: 30 });
  await busy2.p.call('burnStart', { seconds: 30 });
  await settle(300);
  const walls: number[] = [];
  for (let i = 0; i < 7; i++) {
    const r = await idle.p.call('burn', { seconds: 0.002 });
    walls.push(r.wallMs);
    await settle(60);
  }
  walls.sort((x, y) => x - y);
  const median = walls[walls.length >> 1];
  t.ok(median < 30, `2 ms of work done in ${median} ms wall (median; all ${walls.join(', ')}) with two busy guests`);
});

t.test('pcpus=2: pinning keeps a vCPU on its pCPU', async (t) => {
  const s = await startSchedHost(t, 2);
  const a = await s.domain();
  const b = await s.domain();
  t.equal(await pin(s, a.domid, 0, [1], 2), 0, 'd(a) vCPU 0 pinned to pCPU 1');
  t.same(await affinity(s, a.domid, 0), [1], 'getvcpuaffinity says 1');
  t.same(await affinity(s, b.domid, 0), [0, 1], 'unpinned: all pCPUs');
  t.equal(await pin(s, a.domid, 0, [5], 2), -22, 'a mask with no pCPU of the host: -EINVAL');
  await a.p.call('burnStart', { seconds: 30 });
  await b.p.call('burnStart', { seconds: 30 });
  const seen = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const info = await s.vcpuinfo(a.domid, 0);
    if (info.running) seen.add(info.cpu);
    await settle(50);
  }
  t.same([...seen], [1], `a ran only on pCPU 1 (seen ${[...seen].join(',')})`);
  t.equal(await pin(s, a.domid, 0, [0], 2), 0, 'repinned to pCPU 0 while running');
  await settle(200);
  const seen0 = new Set<number>();
  for (let i = 0; i < 10; i++) {
    const info = await s.vcpuinfo(a.domid, 0);
    if (info.running) seen0.add(info.cpu);
    await settle(50);
  }
  t.same([...seen0], [0], 'it moved to pCPU 0');
});

t.test('pcpus=1: a paused domain gets nothing, its competitor everything', async (t) => {
  const s = await startSchedHost(t, 1);
  const a = await s.domain();
  const b = await s.domain();
  await a.p.call('burnStart', { seconds: 30 });
  await b.p.call('burnStart', { seconds: 30 });
  await settle(200);
  t.equal(await s.pause(b.domid), 0, 'b paused');
  const i0 = await s.vcpuinfo(b.domid, 0);
  await settle(1000);
  const i1 = await s.vcpuinfo(b.domid, 0);
  const [ra] = await runningOver([a.p], 1000);
  t.ok(i1.cpu_time - i0.cpu_time < 1e6, `paused b accrued ${(i1.cpu_time - i0.cpu_time) / 1e6} ms`);
  t.ok(ra > 700e6, `a ran ${(ra / 1e6).toFixed(0)} ms of 1000`);
  t.equal(await s.unpause(b.domid), 0, 'b unpaused');
});

t.test('scheduler_op: parameters are checked as Xen checks them', async (t) => {
  const s = await startSchedHost(t, 2);
  const a = await s.domain();
  t.same(await schedGlobals(s), { ret: 0, tslice_ms: 30, ratelimit_us: 1000, vcpu_migr_delay_us: 0 }, 'defaults: 30 ms slice, 1000 us rate limit');
  t.equal((await schedGlobals(s, { tslice_ms: 10 })).ret, 0, 'tslice 10 ms');
  t.equal((await schedGlobals(s)).tslice_ms, 10, 'read back');
  t.equal((await schedGlobals(s, { tslice_ms: 0 })).ret, -22, 'tslice 0: -EINVAL');
  t.equal((await schedGlobals(s, { tslice_ms: 1001 })).ret, -22, 'tslice 1001: -EINVAL');
  t.equal((await schedGlobals(s, { ratelimit_us: 50 })).ret, -22, 'ratelimit below 100 us: -EINVAL');
  t.equal((await schedGlobals(s, { ratelimit_us: 20000 })).ret, -22, 'ratelimit above the slice: -EINVAL');
  t.equal((await schedGlobals(s, { ratelimit_us: 0 })).ret, 0, 'ratelimit 0 (off)');
  t.equal((await schedCredit(s, a.domid, { weight: 70000 })).ret, -22, 'weight 70000: -EINVAL');
  t.equal((await schedCredit(s, a.domid, { weight: 0, cap: 50 })).ret, 0, 'weight 0 leaves it, cap 50');
  t.same(await schedCredit(s, a.domid), { ret: 0, weight: 256, cap: 50 });
  const r = await a.p.call('burn', { seconds: 0.2 });
  t.ok(r.cpuMs >= 190, 'work still runs with tslice 10 ms');
  t.comment(hvLog(s.h.rundir, /credit|kept/));
});
