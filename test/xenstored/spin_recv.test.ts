// spinRecv's frame completion (shared/native/sock.cc, shared/sockio.ts), on
// real Unix sockets: a writer process (test/fixtures/piece_writer.ts) sends
// xs_wire frames in pieces and at moments chosen here, and the spin must
// return whole frames, no more waiting than a frame needs, and never for
// longer than its wait however the bytes trickle in. The time bounds are
// loose (a tenth to a half of what a broken spin would take): they tell a
// spin that waits from one that does not, not how fast it is.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EAGAIN, frameSpec, socketFd, spinRecv } from '../../shared/sockio.js';
import { DIST } from '../helpers/host.js';

const WRITER = join(DIST, 'test', 'fixtures', 'piece_writer.js');
const XS_READ = 2;

/** An xs_wire frame (io/xs_wire.h struct xsd_sockmsg, then the payload); `len` may lie. */
function frame(reqId: number, payload: string, len = Buffer.byteLength(payload)): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(XS_READ, 0);
  h.writeUInt32LE(reqId, 4);
  h.writeUInt32LE(len, 12);
  return Buffer.concat([h, Buffer.from(payload)]);
}

const hex = (b: Buffer) => `w:${b.toString('hex')}`;

interface Tap { teardown(fn: () => unknown): void }

/** Accepts the writer's connection, left unread by libuv (pauseOnConnect), and returns its descriptor. */
async function connectWriter(t: Tap, steps: string[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-spin-'));
  const path = join(dir, 's.sock');
  const server = createServer({ pauseOnConnect: true });
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const writer = spawn(process.execPath, [WRITER, path, ...steps], { stdio: ['ignore', 'ignore', 'inherit'] });
  const sock = await accepted;
  t.teardown(() => {
    writer.kill('SIGKILL');
    sock.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return socketFd(sock);
}

/** One spinRecv on `fd` with a budget of 2 s for the first bytes; its result, bytes and duration. */
function spin(fd: number, buf: Buffer, waitUs: number, maxLen = 4096, budgetUs = 2_000_000) {
  const at = new Int32Array(1);
  const t0 = performance.now();
  const n = spinRecv(Int32Array.of(fd), buf, budgetUs, false, at, frameSpec(16, 12, maxLen, waitUs));
  return { n, data: n > 0 ? Buffer.from(buf.subarray(0, n)) : Buffer.alloc(0), ms: performance.now() - t0 };
}

t.test('a whole frame comes back at once, however long a wait is allowed', async (t) => {
  const f = frame(1, '/local/domain/0\0');
  const fd = await connectWriter(t, [hex(f)]);
  const r = spin(fd, Buffer.alloc(65536), 1_000_000);
  t.same(r.data, f, 'the frame');
  t.ok(r.ms < 500, `returned in ${r.ms.toFixed(1)} ms, not after the 1 s wait`);
});

t.test('a header split inside its length field, the rest 30 ms later: one whole frame', async (t) => {
  const f = frame(2, '/a/b\0');
  const fd = await connectWriter(t, [hex(f.subarray(0, 14)), 's:30', hex(f.subarray(14))]);
  const r = spin(fd, Buffer.alloc(65536), 1_000_000);
  t.same(r.data, f, 'the frame, whole');
});

t.test('without a wait the spin returns what it has', async (t) => {
  const f = frame(3, '/a/b\0');
  const fd = await connectWriter(t, [hex(f.subarray(0, 14)), 's:300', hex(f.subarray(14))]);
  const r = spin(fd, Buffer.alloc(65536), 0);
  t.same(r.data, f.subarray(0, 14), 'the first 14 bytes only');
});

t.test('two frames and the start of a third, its rest later: all three', async (t) => {
  const [a, b, c] = [frame(4, '/x\0'), frame(5, '/y\0'), frame(6, '/a/rather/longer/path\0')];
  const fd = await connectWriter(t, [hex(Buffer.concat([a, b, c.subarray(0, 20)])), 's:30', hex(c.subarray(20))]);
  const r = spin(fd, Buffer.alloc(65536), 1_000_000);
  t.same(r.data, Buffer.concat([a, b, c]), 'three whole frames');
});

t.test('a length over the maximum is not waited for: the caller refuses it', async (t) => {
  const f = frame(7, 'abc', 5000);
  const fd = await connectWriter(t, [hex(f)]);
  const r = spin(fd, Buffer.alloc(65536), 1_000_000);
  t.same(r.data, f, 'the header and what came');
  t.ok(r.ms < 500, `returned in ${r.ms.toFixed(1)} ms, not after the 1 s wait`);
});

t.test('a full buffer ends the wait', async (t) => {
  const f = frame(8, 'x'.repeat(100));
  const fd = await connectWriter(t, [hex(f)]);
  const r = spin(fd, Buffer.alloc(64), 1_000_000);
  t.equal(r.n, 64, 'as much as fits');
  t.ok(r.ms < 500, `returned in ${r.ms.toFixed(1)} ms`);
});

t.test('end of file inside a frame: what came, then end of file', async (t) => {
  const f = frame(9, '/a/b\0');
  const fd = await connectWriter(t, [hex(f.subarray(0, 10)), 'e']);
  const buf = Buffer.alloc(65536);
  const r = spin(fd, buf, 1_000_000);
  t.same(r.data, f.subarray(0, 10), 'the 10 bytes sent');
  t.equal(spin(fd, buf, 0).n, 0, 'then end of file');
});

t.test('a frame that trickles in a byte at a time: the wait stays bounded', async (t) => {
  // A header announcing ~2 GB: the frame never ends while bytes keep coming.
  const f = frame(10, '', 0x7ffffff0);
  const fd = await connectWriter(t, [hex(f), 't:600']);
  const r = spin(fd, Buffer.alloc(8 << 20), 20_000, 0x7fffffff);
  t.ok(r.n > 16, `read on past the header (${r.n} bytes)`);
  t.ok(r.ms < 300, `returned in ${r.ms.toFixed(1)} ms for a 20 ms wait, while bytes kept coming for 600 ms`);
});

t.test('nothing comes: EAGAIN once the budget is spent', async (t) => {
  const fd = await connectWriter(t, ['s:1000']);
  const r = spin(fd, Buffer.alloc(64), 1_000_000, 4096, 20_000);
  t.equal(r.n, EAGAIN, '-EAGAIN');
});

t.test('bad arguments are EINVAL', async (t) => {
  const at = new Int32Array(1);
  const buf = Buffer.alloc(64);
  const fds = Int32Array.of(0);
  t.equal(spinRecv(fds, buf, 0, false, at, frameSpec(3, 0, 4096, 0)), -22, 'a header under 4 bytes');
  t.equal(spinRecv(fds, buf, 0, false, at, frameSpec(16, 13, 4096, 0)), -22, 'a length field past the header');
  t.equal(spinRecv(fds, buf, 0, false, at, frameSpec(16, 12, -1, 0)), -22, 'a negative maximum');
  t.equal(spinRecv(fds, buf, 0, false, at, frameSpec(16, 12, 4096, -1)), -22, 'a negative wait');
  t.equal(spinRecv(fds, Buffer.alloc(0), 0, false, at), -22, 'an empty buffer');
  t.equal(spinRecv(fds, buf, 0, false, new Int32Array(0)), -22, 'no room for the index');
});
