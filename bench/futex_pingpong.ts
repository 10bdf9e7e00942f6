// The baseline of the ioreq round trip (bench/hvm.ts): the same hand-off
// between two Node processes through a POSIX shared memory segment, with no
// work on either side. Word 0 is the request count the client bumps (odd: a
// request is posted), the server makes it even again (the answer); each
// sleeps in futexWait when it has nothing to do and wakes the other with
// futexWake (shared/native/shm.cc), as a vCPU and its device model do.
//
//   node dist/bench/futex_pingpong.js client N WARM   prints one JSON line
//   (it forks itself as the server on a segment it creates and unlinks)
//
// The client takes the same samples as the guest program
// (bench/asm/ioreq_rt.asm): WARM untimed round trips, N each timed with the
// clock around it (process.hrtime, as the guest's rdtsc is v86's
// performance.now), then N back to back timed as a whole.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { futexWait, futexWake, shmCreate, shmOpen, shmUnlink } from '../shared/shm.js';
import { watchParent } from '../shared/runtime/lifeline.js';

const SEG_BYTES = 4096;
const REQ = 0;
const STOP = 1;

function serve(sab: SharedArrayBuffer): void {
  const w = new Int32Array(sab);
  const parent = process.ppid;
  for (;;) {
    const v = Atomics.load(w, REQ);
    if (Atomics.load(w, STOP)) return;
    if ((v & 1) === 0) {
      // Idle: sleep; a parent gone (reparented) ends the server.
      if (futexWait(sab, REQ * 4, v, 1000) === 'timed-out' && process.ppid !== parent) return;
      continue;
    }
    Atomics.store(w, REQ, v + 1);
    futexWake(sab, REQ * 4, 1);
  }
}

function client(n: number, warm: number): void {
  const name = `/xenemu.bench-${process.pid}-${randomBytes(3).toString('hex')}.futex`;
  const sab = shmCreate(name, SEG_BYTES);
  const w = new Int32Array(sab);
  const server = fork(fileURLToPath(import.meta.url), ['serve', name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const once = (): void => {
    const v = Atomics.add(w, REQ, 1) + 1;
    futexWake(sab, REQ * 4, 1);
    while (Atomics.load(w, REQ) === v) futexWait(sab, REQ * 4, v, 1000);
  };
  server.once('message', () => {
    shmUnlink(name); // both have it mapped: nothing is left behind, however either ends
    for (let i = 0; i < warm; i++) once();
    const ns = new Float64Array(n);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const a = process.hrtime.bigint();
      once();
      ns[i] = Number(process.hrtime.bigint() - a);
    }
    const timedNs = Number(process.hrtime.bigint() - t0);
    const r0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) once();
    const rateNs = Number(process.hrtime.bigint() - r0);
    Atomics.store(w, STOP, 1);
    futexWake(sab, REQ * 4, 1);
    ns.sort();
    const pick = (p: number) => ns[Math.min(n - 1, Math.ceil((p / 100) * n) - 1)]!;
    process.stdout.write(`${JSON.stringify({ n, p50Ns: pick(50), p90Ns: pick(90), p99Ns: pick(99), timedNs, rateNs })}\n`);
    server.once('exit', () => process.exit(0));
  });
}

const [mode, a, b] = process.argv.slice(2);
if (mode === 'serve') {
  const sab = shmOpen(a!, SEG_BYTES);
  process.send!('ready', () => { serve(sab); process.exit(0); });
} else if (mode === 'client') {
  watchParent(() => process.exit(1));
  client(Number(a), Number(b));
} else {
  process.stderr.write('usage: futex_pingpong.js client N WARM\n');
  process.exit(2);
}
