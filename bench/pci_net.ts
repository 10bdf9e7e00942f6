// UDP from a PV guest to the host's namespace through the passed-through
// e1000 against netfront (docs/passthrough.md, docs/net.md "Uplink").
//
//   eth1  guest iperf -c ─► PV kernel's e1000 driver: TX descriptors in its own frames, TDT
//           (BAR channel) ─► e1000 device process (shared/hw/e1000.ts): DMA through the
//           IOMMU ─► TAP xpt03 ─► namespace NS
//   eth0  guest iperf -c ─► netfront tx ring ─► netback (Domain-0): GNTTABOP_copy
//           ─► Domain-0's xenbr0 ─► TAP vif0.0 ─► NS's xenbr0
//
// One host (`--netns NS --address 10.0.0.254/24 --pci e1000`), one PV guest
// with `vif = ['bridge=xenbr0']` and `pci = ['03:00.0']`. Each round runs
// `iperf -c` (1470-byte datagrams, as fast as the ring takes them) once
// through each NIC, in an order that alternates between rounds. The
// throughput is counted where the frames enter NS: rx_bytes of the TAP
// (xpt03, vif0.0) before and after, over the sender's duration. A node
// socket in NS answers iperf's final datagram with its report (what it
// received: under load it drops, the TAP does not), kept in the details.
// CPU time (utime+stime, /proc/<pid>/stat) of the guest, Domain-0, the
// device process and the hypervisor over each path's runs, per MB at the TAP.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PtyClient } from '../launcher/pty_client.js';
import { readHostRecord } from '../shared/host.js';
import { inNetns, ip, ipQuiet, netnsPath } from '../shared/net/netns.js';
import { XsClient } from '../shared/xenstore/client.js';
import { UPLINK_TAP } from '../shared/net/uplink.js';
import { median, type Metric, type Suite } from './suite.js';
import { startBenchHost, type BenchHost } from './xen_host.js';
import { CLOCK_TICKS, procCpuTicks, type Child } from './harness.js';

const BDF = '0000:03:00.0';
const DATAGRAM = 1470;
/** NS's address on xenbr0 (the guest's eth0 is 10.0.0.<domid>/24). */
const NS_BRIDGE_ADDR = '10.0.0.254';
/** NS's address on the e1000's wire, and the guest's eth1. */
const NS_WIRE_ADDR = '10.77.0.1';
const GUEST_WIRE_ADDR = '10.77.0.2';
const MB = 1e6;

type Path = 'e1000' | 'netfront';
const DST: Record<Path, string> = { e1000: NS_WIRE_ADDR, netfront: NS_BRIDGE_ADDR };

/**
 * iperf's server in NS, as the guest's client expects it (processes/domu/commands/net.ts):
 * datagrams carry int32 id (negative on the last one); the final one is answered with
 * the same header, 'xenr' at 12, f64 bytes, u32 packets, u32 total, f64 ms (big-endian).
 * One JSON line per finished session on stdout, before the report goes out. It exits
 * when its lifeline (fd 3, shared/runtime/lifeline.ts) closes: with the runner, however
 * that ends.
 */
const RECEIVER = `
const life = new (require('node:net').Socket)({ fd: 3, readable: true, writable: false });
for (const e of ['end', 'close', 'error']) life.on(e, () => process.exit(0));
life.on('data', () => {});
life.unref();
const d = require('node:dgram').createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
let s = null;
const done = new Map();
d.on('message', (m, r) => {
  if (m.length < 12) return;
  const seq = m.readInt32BE(0), now = performance.now(), key = r.address + ':' + r.port;
  if (seq >= 0) {
    if (!s || s.key !== key) { s = { key, first: now, last: now, bytes: 0, packets: 0, maxSeq: 0 }; done.delete(key); }
    s.bytes += m.length; s.packets++; s.last = now; if (seq > s.maxSeq) s.maxSeq = seq;
    return;
  }
  let rep = done.get(key);
  if (!rep) {
    const c = s && s.key === key ? s : { bytes: 0, packets: 0, first: now, last: now, maxSeq: 0 };
    rep = { from: key, total: Math.max(-seq, c.maxSeq), bytes: c.bytes, packets: c.packets, ms: c.last - c.first };
    done.set(key, rep); s = null;
    console.log(JSON.stringify(rep));
  }
  const b = Buffer.alloc(40);
  b.writeInt32BE(seq, 0); b.writeUInt32BE(0x78656e72, 12);
  b.writeDoubleBE(rep.bytes, 16); b.writeUInt32BE(rep.packets, 24); b.writeUInt32BE(rep.total, 28); b.writeDoubleBE(rep.ms, 32);
  d.send(b, r.port, r.address);
});
d.bind(5001, () => console.log('listening, SO_RCVBUF ' + d.getRecvBufferSize()));`;


/** Why this machine cannot give a host a namespace and TAPs, or null. */
function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces and TAPs need root';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  const probe = `xq${randomBytes(4).toString('hex')}`;
  try { ip(['netns', 'add', probe]); } catch (e) { return (e as Error).message; } finally { ipQuiet(['netns', 'del', probe]); }
  return null;
}

/** rx counters of NS's links (the kernel's rtnl_link_stats64, as /sys/class/net/IF/statistics shows them). */
function rxStats(ns: string): Record<string, { bytes: number; packets: number; dropped: number }> {
  const links = JSON.parse(ip(['-j', '-s', 'link', 'show'], ns)) as Array<{ ifname: string; stats64: { rx: { bytes: number; packets: number; dropped: number } } }>;
  return Object.fromEntries(links.map((l) => [l.ifname, l.stats64.rx]));
}

type Who = 'guest' | 'dom0' | 'dev' | 'hv';
const WHO: Who[] = ['guest', 'dom0', 'dev', 'hv'];

function pids(h: BenchHost, domid: number): Record<Who, number> {
  const rec = readHostRecord(h.rundir);
  const dom0 = rec?.pids.domains['0'];
  const guest = rec?.pids.domains[String(domid)];
  const dev = rec?.pci?.find((d) => d.bdf === BDF)?.pid;
  if (!rec || !dom0 || !dev || !guest) throw new Error('no Domain-0, guest or e1000 process in the host record');
  return { guest, dom0, dev, hv: rec.pids.hypervisor };
}

/** The sender's side of a run (iperf's client lines): its address and port, duration, datagrams sent. */
function clientReport(out: string): { from: string; secs: number; sent: number } {
  const l = /\[  3\] local ([\d.]+) port (\d+) connected/.exec(out);
  const m = /\[  3\] +[\d.]+- *([\d.]+) sec +[\d.]+ MBytes +[\d.]+ Mbits\/sec\n\[  3\] Sent (\d+) datagrams/.exec(out);
  if (!l || !m) throw new Error(`no iperf client report in:\n${out}`);
  return { from: `${l[1]}:${l[2]}`, secs: Number(m[1]), sent: Number(m[2]) };
}

/** The receiver's line for this run (by the sender's address, port and count), once its stdout has been read; null if none within 2 s. */
async function receiverReport(rx: Child, c: { from: string; sent: number }): Promise<{ bytes: number; ms: number } | null> {
  const head = `{"from":"${c.from}","total":${c.sent},`;
  try { await rx.waitForOutput(head, 2000); } catch { return null; }
  const line = rx.stdout().split('\n').filter((l) => l.startsWith(head)).at(-1);
  return line ? JSON.parse(line) as { bytes: number; ms: number } : null;
}

export const pciNet: Suite = {
  name: 'pcinet',
  description: 'UDP from a PV guest to the host\'s namespace through the passed-through e1000 (eth1) against netfront (eth0), and CPU per MB of each',
  baseline: 'netfront -> netback -> xenbr0 -> vif0.0 in the same guest and round; both counted at the TAP where the frames enter the namespace',
  async run(ctx) {
    const why = netnsUnavailable();
    if (why) { ctx.note(`pcinet: SKIPPED: ${why}`); return []; }
    const secs = ctx.opts.quick ? 1 : 3;
    const rounds = ctx.opts.quick ? 1 : 5;
    const ns = `xb${randomBytes(4).toString('hex')}`;
    const flags = ctx.opts.nodeFlags;
    const h = await startBenchHost(ctx, {
      memoryMB: 512, netns: ns, address: `${NS_BRIDGE_ADDR}/24`, pci: ['e1000'],
      env: flags.length ? { XENEMU_DOMAIN_NODE_FLAGS: flags.join(' ') } : {},
    });
    const xs = await XsClient.connect(join(h.rundir, 'xenstored.sock'));
    let con: PtyClient | undefined;
    let rx: Child | undefined;
    try {
      // Where each path's frames enter NS: both TAPs, counted alike (whole Ethernet frames).
      const wire = readHostRecord(h.rundir)?.pci?.find((d) => d.bdf === BDF)?.tap;
      if (!wire) throw new Error(`no TAP for ${BDF} in host.json`);
      const TAP: Record<Path, string> = { e1000: wire, netfront: UPLINK_TAP };
      ip(['addr', 'add', `${NS_WIRE_ADDR}/24`, 'dev', TAP.e1000], ns);
      await ctx.scope.run('xl pci-assignable-add', process.execPath, [h.cli, 'xl', 'pci-assignable-add', BDF], { env: h.env });
      const cfg = h.file('pcinet.cfg', `name = "pcinet"\nmemory = 64\nvif = [ 'bridge=xenbr0' ]\npci = [ '03:00.0' ]\n`);
      await ctx.scope.run('xl create', process.execPath, [h.cli, 'xl', 'create', cfg], { env: h.env });
      const id = Number((await ctx.scope.run('xl domid', process.execPath, [h.cli, 'xl', 'domid', 'pcinet'], { env: h.env })).trim());
      con = new PtyClient(await xs.readString(`/local/domain/${id}/console/tty`));
      await con.until(/root@[\w-]+:~# $/, 0, 60_000);
      const deadline = Date.now() + 30_000;
      while (!/eth1: Intel\(R\) PRO\/1000/.test(await con.run('dmesg'))) {
        if (Date.now() > deadline) throw new Error('the e1000 did not probe as eth1 in the guest');
        await new Promise((r) => setTimeout(r, 200));
      }
      await con.run(`ifconfig eth1 ${GUEST_WIRE_ADDR} netmask 255.255.255.0 up`);
      // Born in NS (setns of this thread for the spawn), as the host's processes are.
      rx = inNetns(netnsPath(ns), () => ctx.scope.spawn('iperf receiver', process.execPath, ['-e', RECEIVER], { lifeline: true }));
      await rx.waitForOutput('listening', 10_000);
      ctx.log(`pcinet: receiver in ${ns}, ${/listening, (.*)/.exec(rx.stdout())![1]}`);
      for (const path of ['e1000', 'netfront'] as Path[]) {
        const p = await con.run(`ping -c 2 -i 0.2 ${DST[path]}`, 20_000);
        if (!/2 received/.test(p)) throw new Error(`no ping answer from ${DST[path]} (${path}):\n${p}`);
      }
      const p = pids(h, id);

      const rate: Record<Path, number[]> = { e1000: [], netfront: [] };
      const seen: Record<Path, number[]> = { e1000: [], netfront: [] };
      const delivered: Record<Path, number[]> = { e1000: [], netfront: [] };
      const cpu: Record<Path, Record<Who | 'bytes', number>> = {
        e1000: { guest: 0, dom0: 0, dev: 0, hv: 0, bytes: 0 }, netfront: { guest: 0, dom0: 0, dev: 0, hv: 0, bytes: 0 },
      };
      const once = async (path: Path, t: number): Promise<{ mbits: number; seen: number; delivered: number; bytes: number }> => {
        const before = rxStats(ns)[TAP[path]]!;
        const ticks = Object.fromEntries(WHO.map((w) => [w, procCpuTicks(p[w])])) as Record<Who, number>;
        const out = await con!.run(`iperf -c ${DST[path]} -t ${t}`, t * 1000 + 30_000);
        const after = rxStats(ns)[TAP[path]]!;
        for (const w of WHO) cpu[path][w] += procCpuTicks(p[w]) - ticks[w];
        const c = clientReport(out);
        const bytes = after.bytes - before.bytes;
        cpu[path].bytes += bytes;
        const rep = await receiverReport(rx!, c);
        // delivered: frames at the TAP per datagram sent; each is 1512 bytes there (1470 + UDP 8 + IPv4 20 + Ethernet 14).
        return { mbits: (bytes * 8) / c.secs / MB, seen: rep ? (rep.bytes * 8) / (rep.ms / 1000) / MB : NaN,
                 delivered: (after.packets - before.packets) / c.sent, bytes };
      };
      if (!ctx.opts.quick) {
        for (const path of ['e1000', 'netfront'] as Path[]) await once(path, 1); // JIT, rings, ARP
        for (const c of Object.values(cpu)) for (const k of Object.keys(c) as Array<keyof typeof c>) c[k] = 0;
      }
      for (let i = 0; i < rounds; i++) {
        const order: Path[] = i % 2 ? ['netfront', 'e1000'] : ['e1000', 'netfront'];
        for (const path of order) {
          const r = await once(path, secs);
          rate[path].push(r.mbits);
          seen[path].push(r.seen);
          delivered[path].push(r.delivered);
        }
        ctx.log(`pcinet: round ${i + 1}/${rounds}: at the TAP e1000 ${rate.e1000.at(-1)!.toFixed(0)} / netfront ` +
          `${rate.netfront.at(-1)!.toFixed(0)} Mbit/s; the receiver's socket e1000 ${seen.e1000.at(-1)!.toFixed(0)} / ` +
          `netfront ${seen.netfront.at(-1)!.toFixed(0)} Mbit/s`);
      }
      const msPerMB = (path: Path, who: Who) => cpu[path].bytes ? (cpu[path][who] / CLOCK_TICKS) * 1000 / (cpu[path].bytes / MB) : NaN;
      const fmt = (xs: number[], d = 0) => xs.map((x) => x.toFixed(d)).join(',');
      const cpuDetails = (path: Path) => JSON.stringify({
        deviceProcessMsPerMB: Number(msPerMB(path, 'dev').toFixed(2)), hypervisorMsPerMB: Number(msPerMB(path, 'hv').toFixed(2)),
        MB: Number((cpu[path].bytes / MB).toFixed(0)), ticks: JSON.stringify(Object.fromEntries(WHO.map((w) => [w, cpu[path][w]]))),
      });
      const metrics: Metric[] = [
        { name: 'UDP guest->NS e1000 (eth1) vs netfront', value: median(rate.e1000), unit: 'Mbit/s', baseline: median(rate.netfront),
          samples: rate.e1000,
          details: { baselineSamples: fmt(rate.netfront), countedAt: `${TAP.e1000} / ${TAP.netfront}`, datagram: DATAGRAM, seconds: secs,
            receiverSocketE1000: fmt(seen.e1000), receiverSocketNetfront: fmt(seen.netfront),
            deliveredE1000: fmt(delivered.e1000, 3), deliveredNetfront: fmt(delivered.netfront, 3) } },
        { name: 'guest CPU per MB, e1000 vs netfront', value: msPerMB('e1000', 'guest'), unit: 'ms/MB', baseline: msPerMB('netfront', 'guest') },
        { name: 'Domain-0 CPU per MB, e1000 vs netfront', value: msPerMB('e1000', 'dom0'), unit: 'ms/MB', baseline: msPerMB('netfront', 'dom0'),
          details: { e1000: cpuDetails('e1000'), netfront: cpuDetails('netfront') } },
      ];
      return metrics;
    } finally {
      void con?.close();
      xs.close();
      await rx?.stop();
      const left = await h.stop();
      if (left.pids.length || left.segments.length) ctx.note(`pcinet: left behind ${JSON.stringify(left)}`);
    }
  },
};
