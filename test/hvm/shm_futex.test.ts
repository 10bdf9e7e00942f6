// The two native pieces HVM guests rest on (shared/native/shm.cc):
// futexes that wake across processes (Atomics.notify cannot), and a segment
// mapped over a WebAssembly.Memory so that wasm code, this process and
// another one share those bytes.
import t from 'tap';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DIST, productEnv } from '../helpers/host.js';
import { futexWait, futexWake, shmCreate, shmMapInto, shmUnlink } from '../../shared/shm.js';

const PEER = join(DIST, 'test', 'fixtures', 'futex_peer.js');

t.test('futex round trips between two processes; a segment under a WebAssembly.Memory is shared', async (t) => {
  const name = `/xenemu.t${randomBytes(4).toString('hex')}.futex`;
  const sab = shmCreate(name, 2 * 4096);
  t.teardown(() => { shmUnlink(name); });
  const w = new Int32Array(sab);
  new Uint8Array(sab)[4096] = 0xa5;

  const mem = new WebAssembly.Memory({ initial: 2, maximum: 16 });
  new Uint8Array(mem.buffer)[65536 + 7] = 1;
  shmMapInto(mem.buffer, 65536, name, 8192);
  const view = new Uint8Array(mem.buffer);
  t.equal(view[65536 + 4096], 0xa5, 'the buffer now shows the segment (its byte written before the mapping)');
  t.equal(view[65536 + 7], 0, 'what the buffer held there is gone');

  const peer = fork(PEER, [name], { env: productEnv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  t.teardown(() => { peer.kill('SIGKILL'); });
  const hello = await new Promise<{ pageByte: number }>((res) => peer.once('message', (m) => res(m as { pageByte: number })));
  t.equal(hello.pageByte, 0xa5, "the peer's own WebAssembly.Memory maps the segment's second page");

  const N = 2000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const v = Atomics.add(w, 0, 1) + 1; // odd: a request
    futexWake(sab, 0, 1);
    while (Atomics.load(w, 0) === v) futexWait(sab, 0, v, 1000);
  }
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / N;
  t.equal(Atomics.load(w, 1), N, `${N} requests answered, none lost (${us.toFixed(1)} us per round trip)`);
  t.equal(view[65536 + 4096 + 1], N & 0xff, "the peer's write through its wasm memory mapping is in ours");

  t.equal(futexWait(sab, 0, Atomics.load(w, 0) + 1, 0), 'not-equal', 'a stale expected value returns at once');
  t.equal(futexWait(sab, 8, 0, 5), 'timed-out', 'a wait times out');
  t.throws(() => futexWait(sab, 2, 0, 0), RangeError, 'an unaligned word is refused');
  t.throws(() => shmMapInto(mem.buffer, 100, name, 4096), RangeError, 'an unaligned mapping is refused');
  t.throws(() => shmMapInto(mem.buffer, 0, name, 3 * 4096), /smaller than asked/, 'a window past the segment is refused');

  Atomics.store(w, 2, 1);
  futexWake(sab, 0, 1);
  const code = await new Promise<number | null>((res) => peer.once('exit', (c) => res(c)));
  t.equal(code, 0, 'the peer stops when asked');
});
