// Network: UDP throughput and ping round trips between two PV guests on one
// host, and the notifications it takes (docs/net.md).
//
//   guest A iperf -c ─► netfront tx ring ─► netback (Dom0): GNTTABOP_copy batch ─► xenbr0
//        ─► netback rx: GNTTABOP_copy batch into B's posted buffers ─► guest B iperf -s
//
// Baseline: two Node processes on the host's loopback doing the same (1470-byte
// UDP datagrams as fast as the sender's socket takes them, throughput counted
// at the receiver), sampled right after the guests' run.
import { PtyClient } from '../launcher/pty_client.js';
import { join } from 'node:path';
import { XsClient } from '../shared/xenstore/client.js';
import { median, type Metric, type Suite, type SuiteContext } from './suite.js';
import { startBenchHost, type BenchHost } from './xen_host.js';

const TARGET_RATIO = 0.3;


interface BenchGuest { name: string; id: number; con: PtyClient; run(cmd: string, timeoutMs?: number): Promise<string> }

async function guest(h: BenchHost, ctx: SuiteContext, xs: XsClient, name: string, vif: string): Promise<BenchGuest> {
  const cfg = h.file(`${name}.cfg`, `name = "${name}"\nmemory = 32\nvif = ['${vif}']\n`);
  await ctx.scope.run(`xl create ${name}`, process.execPath, [h.cli, 'xl', 'create', cfg], { env: h.env });
  const id = Number((await ctx.scope.run('xl domid', process.execPath, [h.cli, 'xl', 'domid', name], { env: h.env })).trim());
  const con = new PtyClient(await xs.readString(`/local/domain/${id}/console/tty`));
  const prompt = new RegExp(`root@${name}:~# $`);
  await con.until(prompt, 0, 60_000);
  return {
    name, id, con,
    async run(cmd, timeoutMs = 60_000) {
      const from = con.text.length;
      con.write(`${cmd}\r`);
      await con.until(prompt, from + cmd.length, timeoutMs);
      return con.text.slice(from).replace(/\r/g, '');
    },
  };
}

async function notifications(g: BenchGuest): Promise<number> {
  const out = await g.run('ethtool -S eth0');
  const n = (k: string) => Number(new RegExp(`${k}: (\\d+)`).exec(out)?.[1] ?? 0);
  return n('notifiesOut') + n('eventsIn');
}

const RECEIVER = `
const d = require('node:dgram').createSocket('udp4');
let bytes = 0, first = 0, last = 0;
d.on('message', (m) => {
  if (m.length === 4) { console.log(JSON.stringify({ bytes, secs: (last - first) / 1000 })); process.exit(0); }
  const now = performance.now(); if (!first) first = now; last = now; bytes += m.length;
});
d.bind(0, '127.0.0.1', () => console.log('port ' + d.address().port));`;

const SENDER = `
const d = require('node:dgram').createSocket('udp4');
const [port, secs] = process.argv.slice(1).map(Number);
const buf = Buffer.alloc(1470);
const end = performance.now() + secs * 1000;
let inflight = 0;
function pump() {
  while (inflight < 64 && performance.now() < end) { inflight++; d.send(buf, port, '127.0.0.1', () => { inflight--; pump(); }); }
  if (performance.now() >= end && inflight === 0) {
    let n = 0; const fin = () => { d.send(Buffer.alloc(4), port, '127.0.0.1'); if (++n < 5) setTimeout(fin, 50); else setTimeout(() => process.exit(0), 100); }; fin();
  }
}
pump();`;

/** Mbits/sec received by one Node process from another over loopback UDP. */
async function hostUdp(ctx: SuiteContext, secs: number): Promise<number> {
  const rx = ctx.scope.spawn('udp receiver', process.execPath, ['-e', RECEIVER]);
  await rx.waitForOutput('port ', 10_000);
  const port = Number(/port (\d+)/.exec(rx.stdout())![1]);
  ctx.scope.spawn('udp sender', process.execPath, ['-e', SENDER, String(port), String(secs)]);
  await rx.waitForOutput('"secs"', secs * 1000 + 20_000);
  const r = JSON.parse(rx.stdout().split('\n').find((l) => l.includes('"secs"'))!) as { bytes: number; secs: number };
  return (r.bytes * 8) / r.secs / 1e6;
}

export const net: Suite = {
  name: 'net',
  description: 'UDP throughput and ping between two PV guests through netback and xenbr0',
  async run(ctx) {
    const secs = ctx.opts.quick ? 1 : 3;
    const rounds = ctx.opts.quick ? 1 : 3;
    const h = await startBenchHost(ctx, { memoryMB: 1024 });
    const xs = await XsClient.connect(join(h.rundir, 'xenstored.sock'));
    const guests: BenchGuest[] = [];
    try {
      const a = await guest(h, ctx, xs, 'neta', 'bridge=xenbr0');
      const b = await guest(h, ctx, xs, 'netb', 'bridge=xenbr0');
      guests.push(a, b);
      const ipB = `10.0.0.${b.id}`;
      await a.run(`ping -c 2 -i 0.1 ${ipB}`); // ARP and warm-up

      const guestRates: number[] = [];
      const hostRates: number[] = [];
      const perMiB: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const before = (await notifications(a)) + (await notifications(b));
        const from = b.con.text.length;
        b.con.write('iperf -s\r');
        await b.con.until(/Server listening/, from, 10_000);
        const out = await a.run(`iperf -c ${ipB} -t ${secs}`, secs * 1000 + 30_000);
        const rep = /Server Report:\n\[  3\] +[\d.]+- *[\d.]+ sec +([\d.]+) MBytes +([\d.]+) Mbits\/sec/.exec(out);
        if (!rep) throw new Error(`no server report in:\n${out}`);
        b.con.write('\x03');
        await b.con.until(/root@netb:~# $/, from, 10_000);
        guestRates.push(Number(rep[2]));
        const after = (await notifications(a)) + (await notifications(b));
        perMiB.push((after - before) / Number(rep[1]));
        ctx.log(`round ${i + 1}: guests ${rep[2]} Mbits/sec (${rep[1]} MBytes)`);
        hostRates.push(await hostUdp(ctx, secs));
        ctx.log(`round ${i + 1}: host loopback UDP ${hostRates.at(-1)!.toFixed(0)} Mbits/sec`);
      }

      const pingOut = await a.run(`ping -c ${ctx.opts.quick ? 10 : 50} -i 0.02 ${ipB}`, 60_000);
      const rtt = /rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(pingOut);
      if (!rtt) throw new Error(`no rtt line in:\n${pingOut}`);
      ctx.note(`ping guest->guest: rtt min/avg/max/mdev = ${rtt.slice(1).join('/')} ms`);

      const metrics: Metric[] = [
        { name: 'UDP guest->guest', value: median(guestRates), unit: 'Mbit/s', baseline: median(hostRates),
          target: { cmp: '>=', value: TARGET_RATIO, ratio: true }, samples: guestRates,
          details: { hostLoopbackSamples: hostRates.map((r) => r.toFixed(0)).join(','), datagram: 1470, seconds: secs } },
        { name: 'ping RTT guest->guest (avg)', value: Number(rtt[2]), unit: 'ms',
          details: { min: Number(rtt[1]), max: Number(rtt[3]), mdev: Number(rtt[4]) } },
        { name: 'notifications per MiB', value: median(perMiB), unit: 'notif/MiB', samples: perMiB },
      ];
      return metrics;
    } finally {
      for (const g of guests) g.con.close();
      xs.close();
      const left = await h.stop();
      if (left.pids.length || left.segments.length) ctx.note(`net: left behind ${JSON.stringify(left)}`);
    }
  },
};
