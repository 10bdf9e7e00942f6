// xenconsoled with a real PTY: a fake guest writes its ring, a client opens
// the slave path with fs; typing lands in the `in` ring; raw mode; backlog on
// attach; hostile rings; no descriptor left behind.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Xenconsoled } from '../../processes/dom0/xenconsoled/xenconsoled.js';
import { Backlog } from '../../processes/dom0/xenconsoled/backlog.js';
import { XenconsInterface } from '../../shared/abi/io/console.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';

const enc = (s: string) => Buffer.from(s, 'latin1');

function openFds(): string[] {
  return fs.readdirSync('/proc/self/fd').map((f) => {
    try { return `${f}->${fs.readlinkSync(`/proc/self/fd/${f}`)}`; } catch { return f; }
  }).filter((s) => /\/dev\/(pts|ptmx)|\.log$/.test(s)).sort();
}

/** A guest: its console page and a counter of notifications from xenconsoled. */
function fakeGuest() {
  const page = new Uint8Array(new SharedArrayBuffer(PAGE_SIZE));
  const ring = new XenconsInterface(page);
  let notified = 0;
  const waiters: Array<() => void> = [];
  return {
    page, ring,
    notify: () => { notified++; waiters.splice(0).forEach((w) => w()); },
    get notified() { return notified; },
    /** Resolves when a notification made `cond` true (no sleeping). */
    until(cond: () => boolean): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out waiting for the console')), 10000);
        const check = () => { if (cond()) { clearTimeout(timer); resolve(); } else waiters.push(check); };
        check();
      });
    },
  };
}

/** Read from a client's fd until `want` has arrived; returns all bytes read. */
async function readUntil(fd: number, want: string): Promise<string> {
  let got = '';
  const buf = Buffer.alloc(4096);
  while (!got.includes(want)) {
    const { bytesRead } = await new Promise<{ bytesRead: number }>((resolve, reject) =>
      fs.read(fd, buf, 0, buf.length, null, (err, bytesRead) => (err ? reject(err) : resolve({ bytesRead }))));
    if (bytesRead === 0) throw new Error(`EOF before ${JSON.stringify(want)}; got ${JSON.stringify(got)}`);
    got += buf.subarray(0, bytesRead).toString('latin1');
  }
  return got;
}

function setup(t: { teardown(fn: () => unknown): void }, opts: { backlogBytes?: number } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenemu-xenconsoled-'));
  const xc = new Xenconsoled({ logDir: dir, ...opts });
  const clients: number[] = [];
  t.teardown(async () => {
    for (const fd of clients) { try { fs.closeSync(fd); } catch { /* closed by the test */ } }
    await xc.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const openClient = (p: string) => {
    const fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    clients.push(fd);
    return fd;
  };
  return { dir, xc, openClient };
}

t.test('guest output reaches a client of the slave, the log and the backlog', async (t) => {
  const { dir, xc, openClient } = setup(t);
  const g = fakeGuest();
  g.ring.writeOut(enc('early boot line\r\n'));
  const { ptyPath } = xc.addConsole(3, 'guest1', g.page, g.notify);
  t.match(ptyPath, /^\/dev\/pts\/\d+$/);
  t.equal(g.ring.out_cons, g.ring.out_prod, 'output written before addConsole was taken');
  t.ok(g.notified >= 1, 'guest notified after its output was consumed');

  const att = xc.attach(3)!;
  t.equal(att.ptyPath, ptyPath);
  t.equal(Buffer.from(att.backlog).toString(), 'early boot line\r\n', 'backlog replays output from before the attach');

  const fd = openClient(ptyPath);
  g.ring.writeOut(enc('login: '));
  xc.kick(3);
  const seen = await readUntil(fd, 'login: ');
  t.equal(seen, 'login: ', 'the client sees new output only, once (unread PTY data was discarded at attach)');

  const log = fs.readFileSync(path.join(dir, 'console', 'guest1.log'), 'utf8');
  t.equal(log, 'early boot line\r\nlogin: ');
  t.match(xc.info(3), { domid: 3, name: 'guest1', outBytes: 24, ringError: false });
});

t.test('typing into the slave lands in the in ring, raw: no echo, CR kept', async (t) => {
  const { xc, openClient } = setup(t);
  const g = fakeGuest();
  const { ptyPath } = xc.addConsole(4, '', g.page, g.notify);
  const fd = openClient(ptyPath);
  const before = g.notified;
  fs.writeSync(fd, 'ls -l\r\x03');
  await g.until(() => g.ring.inPending() >= 7);
  t.ok(g.notified > before, 'guest notified of input');
  const r = g.ring.readIn();
  t.ok(r.ok);
  if (r.ok) t.equal(Buffer.from(r.data).toString('latin1'), 'ls -l\r\x03', 'bytes arrive untranslated (raw mode)');
  // Echo would already be queued on the slave before this marker.
  g.ring.writeOut(enc('MARK'));
  xc.kick(4);
  t.equal(await readUntil(fd, 'MARK'), 'MARK', 'nothing was echoed back');
});

t.test('input waits while the in ring is full, and goes in when the guest reads', async (t) => {
  const { xc, openClient } = setup(t);
  const g = fakeGuest();
  const { ptyPath } = xc.addConsole(5, 'g5', g.page, g.notify);
  const fd = openClient(ptyPath);
  const big = Buffer.alloc(1500, 0x61);
  fs.writeSync(fd, big);
  await g.until(() => g.ring.inPending() === 1024);
  const r = g.ring.readIn();
  t.ok(r.ok && r.data.length === 1024);
  xc.kick(5); // the guest notifies after reading
  await g.until(() => g.ring.inPending() === 476);
  t.pass('the rest arrived after the kick');
});

t.test('the backlog is bounded and keeps the newest bytes', async (t) => {
  const b = new Backlog(10);
  b.append(enc('abc'));
  b.append(enc('defghij'));
  t.equal(Buffer.from(b.snapshot()).toString(), 'abcdefghij');
  b.append(enc('KL'));
  t.equal(Buffer.from(b.snapshot()).toString(), 'cdefghijKL');
  b.append(enc('0123456789XYZ'));
  t.equal(Buffer.from(b.snapshot()).toString(), '3456789XYZ');
  t.equal(b.total, 25);

  const { xc } = setup(t, { backlogBytes: 4096 });
  const g = fakeGuest();
  xc.addConsole(6, 'chatty', g.page, g.notify);
  let written = 0;
  for (let i = 0; written < 10000; i++) {
    const line = enc(`line ${i}\n`);
    let off = 0;
    while (off < line.length) {
      const n = g.ring.writeOut(line.subarray(off));
      off += n;
      if (n === 0) xc.kick(6);
    }
    written += line.length;
  }
  xc.kick(6);
  const back = Buffer.from(xc.attach(6)!.backlog).toString();
  t.equal(back.length, 4096);
  t.ok(back.endsWith(`\n`) && back.includes('line '), 'newest output kept');
  t.equal(xc.info(6)!.outBytes, written);
});

t.test('a hostile ring neither hangs nor crashes the daemon', async (t) => {
  const { xc } = setup(t);
  const g = fakeGuest();
  xc.addConsole(7, 'evil', g.page, g.notify);
  g.ring.out_prod = 0x7fffffff;
  xc.kick(7);
  t.equal(xc.info(7)!.ringError, true);
  t.equal(g.ring.out_cons, 0, 'nothing consumed');
  xc.kick(7);
  t.equal(xc.info(7)!.outBytes, 0);
  t.equal(xc.attach(99), undefined, 'unknown domain');
  xc.kick(99);
  t.throws(() => xc.addConsole(7, 'again', g.page, g.notify), /already has a console/);
});

t.test('removeConsole closes the PTY and leaves no descriptors', async (t) => {
  const { xc, openClient } = setup(t);
  const before = openFds();
  const g = fakeGuest();
  const { ptyPath } = xc.addConsole(8, 'g8', g.page, g.notify);
  const during = openFds();
  t.equal(during.filter((s) => s.endsWith(ptyPath)).length, 1, 'exactly one slave descriptor is kept open');
  // Written before any client opened the slave: it waits in the PTY, and
  // the descriptor xenconsoled keeps on the slave does not read it away.
  g.ring.writeOut(enc('bye'));
  xc.kick(8);
  const fd = openClient(ptyPath);
  t.equal(await readUntil(fd, 'bye'), 'bye');
  fs.closeSync(fd);
  await xc.removeConsole(8);
  t.same(openFds(), before, 'PTY master, slave and log descriptors are closed');
  t.equal(xc.info(8), undefined);
  xc.kick(8);
});
