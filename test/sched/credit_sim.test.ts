// The credit policy and the slice mechanism on a simulated clock
// (credit_sim.ts): exact, repeatable answers to the policy's questions,
// independent of how busy the host is. The host-level tests (credit.test.ts)
// and the bench (bench/scheduler.ts) measure the same things on real
// processes.
import t from 'tap';
import { SimHost, type SimGuest } from './credit_sim.js';

const SEEDS = [1, 2, 3];

for (const k of [1, 2, 4]) {
  t.test(`pcpus=1: weights 256:${256 * k} share the pCPU 1:${k} (within 1.5 points)`, async (t) => {
    for (const seed of SEEDS) {
      const h = new SimHost({ pcpus: 1, seed });
      const a = h.domain();
      const b = h.domain();
      t.equal(h.sched.putDomainParams(b.d, { weight: 256 * k }), 0);
      h.burnForever(a);
      h.burnForever(b);
      h.clock.run(1000);
      const [ra, rb] = h.window([a, b], 10_000);
      const share = ra / (ra + rb);
      t.ok(Math.abs(share - 1 / (1 + k)) < 0.015, `seed ${seed}: A ${(share * 100).toFixed(1)}% (ideal ${(100 / (1 + k)).toFixed(1)}%)`);
      h.close();
    }
  });
}

t.test('pcpus=1: caps 10, 25, 50 hold a busy guest within 1.5 points', async (t) => {
  for (const cap of [10, 25, 50]) {
    const h = new SimHost({ pcpus: 1 });
    const a = h.domain();
    h.sched.putDomainParams(a.d, { cap });
    h.burnForever(a);
    h.clock.run(1000);
    const [ra] = h.window([a], 10_000);
    t.ok(Math.abs(ra / 10_000e6 * 100 - cap) < 1.5, `cap ${cap}: ${(ra / 10_000e6 * 100).toFixed(1)}%`);
    h.close();
  }
});

t.test('pcpus=2: 64 busy guests, Jain index >= 0.995', async (t) => {
  const h = new SimHost({ pcpus: 2 });
  const gs = Array.from({ length: 64 }, () => h.domain());
  for (const g of gs) h.burnForever(g);
  h.clock.run(1500);
  const r = h.window(gs, 12_000);
  const s = r.reduce((x, y) => x + y, 0);
  const q = r.reduce((x, y) => x + y * y, 0);
  const j = (s * s) / (r.length * q);
  t.ok(j >= 0.995, `Jain ${j.toFixed(4)} (min ${(Math.min(...r) / 1e6).toFixed(0)} ms, max ${(Math.max(...r) / 1e6).toFixed(0)} ms)`);
  h.close();
});

// Regression: guests started one after another under load (a wake every
// 13 ms, as the bench's probe round trips space them) all landed on pCPU 0's
// queue (50 against 12) when the tickle broke priority ties by pCPU number.
t.test('pcpus=2: 64 guests woken one by one under load share both queues, Jain >= 0.995', async (t) => {
  for (const stagger of [2, 13]) {
    const h = new SimHost({ pcpus: 2 });
    const gs = Array.from({ length: 64 }, () => h.domain());
    for (const g of gs) { h.burnForever(g); h.clock.run(stagger); }
    const lens = h.policy.queueLengths();
    t.ok(Math.abs(lens[0] - lens[1]) <= 4, `wake every ${stagger} ms: run queues ${lens.join('/')}`);
    h.clock.run(1500);
    const r = h.window(gs, 12_000);
    const s = r.reduce((x, y) => x + y, 0);
    const q = r.reduce((x, y) => x + y * y, 0);
    t.ok((s * s) / (r.length * q) >= 0.995, `wake every ${stagger} ms: Jain ${((s * s) / (r.length * q)).toFixed(4)}`);
    h.close();
  }
});

// Regression: a slice end a moment before accounting extended the slice on a
// stale UNDER; the second slice's debt fell below the credit floor and was
// forgiven. Weights 1:4 measured up to 25% instead of 20% depending on the
// phase of slices against accounting periods.
t.test('pcpus=1: weights 1:4 hold within 1.5 points whatever the phase of slices against accounting', async (t) => {
  const worst: string[] = [];
  let bad = 0;
  for (const jitterMs of [0.05, 0.3]) {
    for (const releaseMs of [0.2, 0.5]) {
      for (let off = 0; off < 30; off += 3) {
        const h = new SimHost({ pcpus: 1, jitterMs });
        h.releaseMs = releaseMs;
        const a = h.domain();
        const b = h.domain();
        h.sched.putDomainParams(b.d, { weight: 1024 });
        h.burnForever(a);
        h.clock.run(off);
        h.burnForever(b);
        h.clock.run(1000);
        const [ra, rb] = h.window([a, b], 5000);
        const share = (100 * ra) / (ra + rb);
        if (Math.abs(share - 20) > 1.5) { bad++; worst.push(`jitter ${jitterMs} release ${releaseMs} offset ${off}: ${share.toFixed(1)}%`); }
        h.close();
      }
    }
  }
  t.equal(bad, 0, worst.join('; ') || '40 phases within 1.5 points of 20%');
});

// Regression: a woken vCPU queued on one pCPU while the tickle preempted the
// other waited for a slice end there (p99 27 ms here, 185 ms on a busy host).
t.test('pcpus=2, 8 busy guests: a woken vCPU waits at most the rate limit and a release', async (t) => {
  const h = new SimHost({ pcpus: 2 });
  const busy = Array.from({ length: 8 }, () => h.domain());
  const idle = h.domain();
  for (const g of busy) h.burnForever(g);
  h.clock.run(1000);
  const lat: number[] = [];
  const once = () => {
    const r0 = h.runnable(idle);
    h.burn(idle, 2, () => {
      lat.push((h.runnable(idle) - r0) / 1e6);
      if (lat.length < 200) h.clock.at(20 + (lat.length % 7) * 5, once);
    });
  };
  once();
  h.clock.run(20_000);
  lat.sort((x, y) => x - y);
  t.equal(lat.length, 200, '200 wake-ups');
  const p99 = lat[Math.floor(lat.length * 0.99)];
  t.ok(p99 <= 2.5, `p50 ${lat[100].toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${lat[199].toFixed(2)} ms`);
  h.close();
});

// Regression: a vCPU pinned away from the pCPU it ran on was queued on its
// new pCPU when it gave the old one back, but only the old pCPU was told to
// pick again: with nothing else runnable the new one stayed idle and the
// vCPU never ran again (`xl vcpu-pin` on a guest's only busy vCPU wedged it).
t.test('pcpus=2: a lone busy vCPU pinned away from its pCPU runs on the new one', async (t) => {
  const h = new SimHost({ pcpus: 2 });
  const g = h.domain();
  t.equal(h.sched.setAffinity(g.d, 0, 1n), 0, 'pinned to pCPU 0');
  h.burnForever(g);
  t.ok(h.window([g], 200)[0]! > 190e6, 'runs on pCPU 0');
  for (const [mask, p] of [[2n, 1], [1n, 0], [3n, -1], [2n, 1]] as const) {
    t.equal(h.sched.setAffinity(g.d, 0, mask), 0, `pinned to mask ${mask}`);
    const ran = h.window([g], 500)[0]!;
    t.ok(ran > 450e6, `runs ${(ran / 1e6).toFixed(1)} of the next 500 ms`);
    const owner = h.sched.pcpuOwners().find((o) => o.domid === g.d.domid);
    if (p >= 0) t.equal(owner?.pcpu, p, `on pCPU ${p}`);
  }
  h.close();
});

// The same property at random: guests that burn for a while or for ever,
// pins to any mask, caps, weights, pauses, on 2 to 4 pCPUs. Between events
// no pCPU may be idle while a vCPU allowed on it is eligible. (The bug above
// broke it within the first few events of every seed.)
t.test('random pins, caps, weights, pauses and burns: no pCPU idles while a vCPU it may run waits', async (t) => {
  let broken = '';
  for (let seed = 1; seed <= 40 && !broken; seed++) {
    const pcpus = 2 + (seed % 3);
    const h = new SimHost({ pcpus, seed });
    const gs = Array.from({ length: 2 + (seed % 5) }, () => h.domain());
    let r = seed * 7919;
    const rnd = (n: number) => { r = (r * 1103515245 + 12345) & 0x7fffffff; return r % n; };
    const finite = new Set<SimGuest>();
    for (let i = 0; i < 300 && !broken; i++) {
      const g = gs[rnd(gs.length)]!;
      let what: string;
      switch (rnd(6)) {
        case 0: { const m = BigInt(1 + rnd((1 << pcpus) - 1)); h.sched.setAffinity(g.d, 0, m); what = `pin d${g.d.domid} to ${m}`; break; }
        case 1: { const cap = [0, 10, 30, 80, 150][rnd(5)]!; h.sched.putDomainParams(g.d, { cap }); what = `cap d${g.d.domid} ${cap}`; break; }
        case 2: { const weight = [64, 256, 1024][rnd(3)]!; h.sched.putDomainParams(g.d, { weight }); what = `weight d${g.d.domid} ${weight}`; break; }
        case 3: if (!g.busy && !finite.has(g)) { finite.add(g); h.burn(g, 1 + rnd(80), () => finite.delete(g)); } what = `burn d${g.d.domid}`; break;
        case 4: if (!g.busy) h.burnForever(g); what = `burn d${g.d.domid} for ever`; break;
        default:
          h.sched.domainPaused(g.d);
          (g.d as { running: boolean }).running = false;
          h.clock.run(rnd(30));
          (g.d as { running: boolean }).running = true;
          h.sched.domainUnpaused(g.d);
          what = `pause and unpause d${g.d.domid}`;
      }
      h.clock.run(rnd(200));
      const v = h.sched.idleWhileWaiting();
      if (v) broken = `seed ${seed}, event ${i} (${what}): ${v}`;
    }
    h.close();
  }
  t.equal(broken, '', 'work-conserving after every event of 40 seeds');
});
