// xl migrate --live of an HVM guest running Debian's i386 Linux to another
// host (docs/saverestore.md): its pages in pre-copy rounds while it runs,
// then its vCPU's context and qemu-dm's device state at the commit. On the
// target its busybox shell answers on the new qemu-dm's COM1 and a ping
// it started before the move goes on through its e1000 (same MAC) to the
// peer on the target's bridge. Each host has a PV peer with the same
// address and MAC on its own bridge, as one network would be.
import t from 'tap';
import { join } from 'node:path';
import { startHost } from '../helpers/host.js';
import { busyboxShell, seabiosMissing } from '../helpers/hvm.js';
import { list, PtyClient, writeCfg, xenstore, xl, xlOk } from '../host/xl.js';
import { netGuest } from '../net/guests.js';
import { buildHvmImage } from '../../launcher/hvm_image.js';

t.setTimeout(400_000);
const PORT = 20000 + ((process.pid + 7919) % 20000);

let image: string | null = null;
let why: string | false = seabiosMissing() ?? false;
if (!why) {
  try { image = (await buildHvmImage({ log: (m) => t.comment(`hvm-image: ${m}`) })).iso; } catch (err) { why = `cannot build the HVM Linux image: ${(err as Error).message}`; }
}

const replies = (log: string) => (log.match(/bytes from 10\.0\.0\.2/g) ?? []).length;

t.test('xl migrate --live of an HVM Linux guest: its shell and its ping go on', { skip: why, timeout: 380_000 }, async (t) => {
  const src = await startHost(t, { memory: 768, pcpus: 2 });
  const dst = await startHost(t, { memory: 768, pcpus: 2, listen: `127.0.0.1:${PORT}` });
  const peerVif = "vif = ['bridge=xenbr0,ip=10.0.0.2,mac=00:16:3e:00:20:02']";
  await netGuest(t, src, 'peer', peerVif);
  await netGuest(t, dst, 'peer', peerVif);
  const cfg = writeCfg(src, 'lx.cfg', [
    'type = "hvm"', 'name = "lx"', 'memory = 144', 'videoram = 16', 'serial = "pty"', 'boot = "d"', 'on_crash = "preserve"',
    `disk = [ 'file:${image},hdc:cdrom,r' ]`, "vif = [ 'bridge=xenbr0,model=e1000,mac=00:16:3e:00:10:09' ]",
  ].join('\n'));
  await xlOk(src, 'create', cfg);
  t.teardown(() => xl(src, ['destroy', 'lx']));
  t.teardown(() => xl(dst, ['destroy', 'lx']));
  const id = (await list(src)).find((r) => r.name === 'lx')!.id;
  const xs = await xenstore(t, src);
  const pty = new PtyClient(await xs.readString(`/local/domain/${id}/serial/0/tty`));
  t.teardown(() => pty.close());
  const run = await busyboxShell(pty, join(src.rundir, 'logs', 'console', 'lx.log'));
  await run('ifconfig eth0 10.0.0.9 netmask 255.255.255.0 up');
  t.match(await run('ping -c 2 10.0.0.2', 60_000), /2 packets received/, 'it pings the source host\'s peer');
  await run('ping -i 0.2 10.0.0.2 > /ping.log 2>&1 &');
  const before = replies(await run('cat /ping.log'));

  const m = await xl(src, ['migrate', '--live', '-l', 'lx', `127.0.0.1:${PORT}`]);
  t.equal(m.code, 0, `xl migrate --live ${m.stderr.trim()}`);
  if (m.code !== 0) return;
  const s = JSON.parse(m.stdout) as { rounds: Array<{ pages: number }>; downtimeMs: number; sentBytes: number; totalMs: number; targetDomid: number };
  t.comment(`rounds ${s.rounds.map((x) => x.pages).join(', ')} pages; ${(s.sentBytes / 1048576).toFixed(1)} MiB; ` +
    `downtime ${s.downtimeMs.toFixed(0)} ms; total ${(s.totalMs / 1000).toFixed(2)} s`);
  t.notOk((await list(src)).some((x) => x.name === 'lx'), 'lx is gone from the source');
  const row = (await list(dst)).find((x) => x.name === 'lx');
  t.equal(row?.id, s.targetDomid, `lx runs on the target as d${row?.id}`);

  const xs2 = await xenstore(t, dst);
  const pty2 = new PtyClient(await xs2.readString(`/local/domain/${row!.id}/serial/0/tty`));
  t.teardown(() => pty2.close());
  // The shell waits at its prompt where it was: a new line brings a new one.
  pty2.write('\r');
  await pty2.until(/\/ # (\x1b\[6n)?$/, 0, 30_000);
  const run2 = async (cmd: string, ms = 30_000) => {
    const from = pty2.text.length;
    pty2.write(`${cmd}\r`);
    await pty2.until(/\/ # (\x1b\[6n)?$/, from + cmd.length, ms);
    return pty2.text.slice(from).replace(/\r/g, '');
  };
  t.match(await run2('echo moved-$((6*7))'), /moved-42/, 'its shell answers on the target');
  let after = 0;
  for (let i = 0; i < 50 && after < before + 5; i++) {
    after = replies(await run2('cat /ping.log'));
    if (after < before + 5) await new Promise((r) => setTimeout(r, 200));
  }
  t.ok(after >= before + 5, `the ping it started before the move goes on: ${before} replies before, ${after} after`);
  const seqs = [...(await run2('kill %1; cat /ping.log')).matchAll(/seq=(\d+)/g)].map((x) => Number(x[1]));
  const spans: string[] = [];
  for (const q of seqs) {
    const last = spans.at(-1)?.split('-');
    if (last && Number(last.at(-1)) === q - 1) spans[spans.length - 1] = `${last[0]}-${q}`; else spans.push(String(q));
  }
  t.comment(`replies (icmp seq, every 200 ms): ${spans.join(', ')}`);
  t.match(await run2('ping -c 2 10.0.0.2', 60_000), /2 packets received/, "a new ping reaches the target host's peer");
});
