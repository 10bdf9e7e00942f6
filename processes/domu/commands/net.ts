// Network commands, printing what their Linux counterparts print:
// ifconfig (net-tools), ping (iputils), iperf (iperf 2, UDP) and
// ethtool -S (netfront's counters, including notifications).
import type { Command, CommandIo, KernelServices } from '../services.js';
import { ipToString, parseIp } from '../net/ipv4.js';
import { macToString } from '../net/ethernet.js';
import type { NetInterface } from '../net/interfaces.js';
import type { UdpSocket } from '../net/stack.js';

function human(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return u === 0 ? `${bytes} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** net-tools' flags field: IFF_UP 0x1, BROADCAST 0x2, RUNNING 0x40, MULTICAST 0x1000. */
function flags(i: NetInterface): string {
  const up = i.up && i.dev.state === 'connected';
  const running = up && (i.dev.linkUp ?? true);
  if (running) return '4163<UP,BROADCAST,RUNNING,MULTICAST>';
  return up ? '4099<UP,BROADCAST,MULTICAST>' : '4098<BROADCAST,MULTICAST>';
}

function ifconfigText(i: NetInterface): string {
  const s = i.dev.stats;
  const mask = i.stack.netmask;
  return `${i.dev.name}: flags=${flags(i)}  mtu 1500\n` +
    (i.stack.ip ? `        inet ${ipToString(i.stack.ip)}  netmask ${ipToString(mask)}  broadcast ${ipToString((i.stack.ip | ~mask) >>> 0)}\n` : '') +
    `        ether ${macToString(i.dev.mac)}  txqueuelen 1000  (Ethernet)\n` +
    `        RX packets ${s.rxPackets}  bytes ${s.rxBytes} (${human(s.rxBytes)})\n` +
    `        RX errors 0  dropped ${s.rxDropped}  overruns 0  frame 0\n` +
    `        TX packets ${s.txPackets}  bytes ${s.txBytes} (${human(s.txBytes)})\n` +
    `        TX errors 0  dropped ${s.txDropped} overruns 0  carrier 0  collisions 0\n\n`;
}

/** A dotted netmask's prefix length, or null when its ones are not contiguous. */
function maskPrefix(mask: number): number | null {
  const inv = ~mask >>> 0;
  if ((inv & (inv + 1)) !== 0) return null;
  return 32 - Math.log2(inv + 1);
}

/**
 * `ifconfig IF [ADDR[/PREFIX]] [netmask MASK] [up|down]`, as net-tools does
 * it: SIOCSIFADDR (which brings the interface up too), SIOCSIFNETMASK,
 * SIOCSIFFLAGS; a missing interface is ENODEV.
 */
function ifconfigSet(argv: string[], io: CommandIo, k: KernelServices): number {
  const name = argv[1]!;
  const ifc = k.net?.byName(name);
  let ip: number | null = null;
  let prefix: number | null = null;
  let up: boolean | null = null;
  for (let a = 2; a < argv.length; a++) {
    const w = argv[a]!;
    if (w === 'up') up = true;
    else if (w === 'down') up = false;
    else if (w === 'netmask') {
      const m = parseIp(argv[++a] ?? '');
      const p = m === null ? null : maskPrefix(m);
      if (p === null) { io.out(`${argv[a] ?? ''}: Unknown host\nifconfig: \`--help' gives usage information.\n`); return 1; }
      prefix = p;
    } else {
      const [addr, pfx] = w.split('/');
      const v = parseIp(addr ?? '');
      const p = pfx === undefined ? null : Number(pfx);
      if (v === null || (p !== null && !(Number.isInteger(p) && p >= 0 && p <= 32))) { io.out(`${w}: Unknown host\nifconfig: \`--help' gives usage information.\n`); return 1; }
      ip = v;
      if (p !== null) prefix = p;
    }
  }
  if (!ifc) {
    if (ip !== null) io.out('SIOCSIFADDR: No such device\n');
    io.out(`${name}: ERROR while getting interface flags: No such device\n`);
    return 1;
  }
  try {
    if (ip !== null) {
      // An address without a mask takes its class's (net-tools: SIOCSIFADDR sets the classful mask).
      const classful = ip >>> 31 === 0 ? 8 : ip >>> 30 === 2 ? 16 : 24;
      ifc.stack.configure(ip, prefix ?? classful);
      if (up === null && !ifc.up) k.net!.setUp(ifc, true);
    } else if (prefix !== null) {
      ifc.stack.configure(ifc.stack.ip, prefix);
    }
    if (up !== null) k.net!.setUp(ifc, up);
  } catch (e) {
    io.out(`SIOCSIFFLAGS: ${(e as Error).message}\n`);
    return 1;
  }
  return 0;
}

const ifconfig: Command = {
  name: 'ifconfig', help: 'ifconfig [IF [ADDR] [netmask MASK] [up|down]]: interfaces, their addresses and counts',
  run(argv, io, k) {
    const list = k.net?.list ?? [];
    if (argv.length > 2) return ifconfigSet(argv, io, k);
    if (argv[1]) {
      const i = k.net?.byName(argv[1]);
      if (!i) { io.out(`${argv[1]}: error fetching interface information: Device not found\n`); return 1; }
      io.out(ifconfigText(i));
      return 0;
    }
    for (const i of list) io.out(ifconfigText(i));
    return 0;
  },
};

const ethtool: Command = {
  name: 'ethtool', help: 'ethtool -S IFACE: netfront statistics (notifications)',
  run(argv, io, k) {
    const i = argv[1] === '-S' && argv[2] ? k.net?.byName(argv[2]) : undefined;
    if (argv[1] !== '-S' || !argv[2]) { io.out('usage: ethtool -S DEVNAME\n'); return 1; }
    if (!i) { io.out(`Cannot get stats strings information: No such device\n`); return 1; }
    io.out('NIC statistics:\n');
    for (const [key, v] of Object.entries(i.dev.stats)) io.out(`     ${key}: ${v}\n`);
    return 0;
  },
};

const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((r) => {
  const t = setTimeout(r, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
});

let pingIdent = 1;

async function ping(argv: string[], io: CommandIo, k: KernelServices): Promise<number> {
  let count = Infinity;
  let interval = 1;
  let size = 56;
  let host: string | undefined;
  for (let a = 1; a < argv.length; a++) {
    const w = argv[a]!;
    if (w === '-c') count = Number(argv[++a]);
    else if (w === '-i') interval = Number(argv[++a]);
    else if (w === '-s') size = Number(argv[++a]);
    else if (w.startsWith('-')) { io.out(`ping: invalid option -- '${w.slice(1)}'\n`); return 2; }
    else host = w;
  }
  if (!host || !(count > 0) || !(interval >= 0.001) || !(size >= 0 && size <= 1472)) {
    io.out('Usage: ping [-c count] [-i interval] [-s packetsize] destination\n');
    return 2;
  }
  const dst = parseIp(host);
  if (dst === null) { io.out(`ping: ${host}: Name or service not known\n`); return 2; }
  const ifc = k.net?.route(dst);
  if (!ifc || !ifc.stack.ip) { io.out('ping: connect: Network is unreachable\n'); return 2; }
  const stack = ifc.stack;
  const ident = (pingIdent++ * 0x2f1 + k.domid) & 0xffff;
  const sentAt = new Map<number, number>();
  const rtts: number[] = [];
  let received = 0;
  let waitAll: (() => void) | null = null;
  stack.onEchoReply(ident, (r) => {
    const t0 = sentAt.get(r.seq);
    if (t0 === undefined) return;
    sentAt.delete(r.seq);
    const rtt = performance.now() - t0;
    rtts.push(rtt);
    received++;
    io.out(`${r.bytes} bytes from ${ipToString(r.from)}: icmp_seq=${r.seq} ttl=${r.ttl} time=${rtt < 10 ? rtt.toFixed(3) : rtt.toFixed(1)} ms\n`);
    if (sentAt.size === 0) waitAll?.();
  });
  io.out(`PING ${host} (${host}) ${size}(${size + 28}) bytes of data.\n`);
  const start = performance.now();
  let sent = 0;
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = (i + 8) & 0xff;
  try {
    while (sent < count && !io.signal.aborted) {
      sent++;
      sentAt.set(sent & 0xffff, performance.now());
      stack.sendEcho(dst, ident, sent & 0xffff, payload);
      if (sent < count) await sleep(interval * 1000, io.signal);
    }
    if (sentAt.size > 0 && !io.signal.aborted) {
      // The last replies get a moment (ping's linger: twice the worst RTT, at least 1 s).
      await new Promise<void>((r) => {
        waitAll = r;
        const t = setTimeout(r, Math.max(1000, 2 * Math.max(0, ...rtts)));
        io.signal.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
      });
    }
  } finally {
    stack.onEchoReply(ident, null);
  }
  const time = Math.round(performance.now() - start);
  const loss = sent === 0 ? 0 : Math.round(((sent - received) / sent) * 100);
  io.out(`\n--- ${host} ping statistics ---\n${sent} packets transmitted, ${received} received, ${loss}% packet loss, time ${time}ms\n`);
  if (rtts.length) {
    const min = Math.min(...rtts);
    const max = Math.max(...rtts);
    const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
    const mdev = Math.sqrt(rtts.reduce((a, b) => a + (b - avg) ** 2, 0) / rtts.length);
    io.out(`rtt min/avg/max/mdev = ${[min, avg, max, mdev].map((v) => v.toFixed(3)).join('/')} ms\n`);
  }
  return received > 0 ? 0 : 1;
}

// --- iperf (iperf 2, UDP) ----------------------------------------------
//
// Datagrams carry iperf 2's UDP header: int32 id (sequence, negative on the
// last one), u32 tv_sec, u32 tv_usec. The server answers the final datagram
// with a report (here: a small struct after the same header), which the
// client prints as "Server Report", retrying the final datagram as iperf does.

const IPERF_PORT = 5001;
const REPORT_MAGIC = 0x78656e72; // 'xenr'

function mbits(bytes: number, secs: number): string {
  const v = secs > 0 ? (bytes * 8) / secs / 1e6 : 0;
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} Mbits/sec`;
}
function mbytes(bytes: number): string { return `${(bytes / 1048576).toFixed(1)} MBytes`; }
const interval = (secs: number) => `${(0).toFixed(1).padStart(4)}-${secs.toFixed(1).padStart(4)} sec`;

interface Session { src: number; port: number; first: number; last: number; bytes: number; packets: number; maxSeq: number; outOfOrder: number }

async function iperfServer(port: number, len: number, io: CommandIo, k: KernelServices): Promise<number> {
  const ifc = k.net?.list[0];
  if (!ifc) { io.out('iperf: no network interface\n'); return 1; }
  const sock = ifc.stack.bind(port);
  if (!sock) { io.out(`bind failed: Address already in use\n`); return 1; }
  const line = '-'.repeat(60);
  io.out(`${line}\nServer listening on UDP port ${port}\nReceiving ${len} byte datagrams\n${line}\n`);
  let session: Session | null = null;
  let sid = 3;
  sock.onMessage((d) => {
    if (d.data.length < 12) return;
    const dv = new DataView(d.data.buffer, d.data.byteOffset, d.data.byteLength);
    const seq = dv.getInt32(0);
    const now = performance.now();
    if (!session || session.src !== d.src || session.port !== d.srcPort) {
      if (seq < 0) { sendReport(sock, d.src, d.srcPort, seq, null); return; }
      session = { src: d.src, port: d.srcPort, first: now, last: now, bytes: 0, packets: 0, maxSeq: 0, outOfOrder: 0 };
      io.out(`[${String(sid).padStart(3)}] local ${ipToString(ifc.stack.ip)} port ${port} connected with ${ipToString(d.src)} port ${d.srcPort}\n`);
      io.out(`[ ID] Interval       Transfer     Bandwidth        Jitter   Lost/Total Datagrams\n`);
    }
    const s = session;
    if (seq >= 0) {
      s.bytes += d.data.length;
      s.packets++;
      s.last = now;
      if (seq < s.maxSeq) s.outOfOrder++; else s.maxSeq = seq;
      return;
    }
    // The final datagram: report, then wait for the next client.
    const total = Math.max(-seq, s.maxSeq);
    const secs = (s.last - s.first) / 1000;
    const lost = Math.max(0, total - s.packets);
    io.out(`[${String(sid).padStart(3)}] ${interval(secs)}  ${mbytes(s.bytes)}  ${mbits(s.bytes, secs)}   0.000 ms ${String(lost).padStart(4)}/${total} (${total ? Math.round((lost / total) * 100) : 0}%)\n`);
    sendReport(sock, d.src, d.srcPort, seq, { bytes: s.bytes, packets: s.packets, total, ms: s.last - s.first });
    session = null;
    sid++;
  });
  await new Promise<void>((r) => io.signal.addEventListener('abort', () => r(), { once: true }));
  sock.close();
  return 0;
}

function sendReport(sock: UdpSocket, dst: number, port: number, seq: number,
                    r: { bytes: number; packets: number; total: number; ms: number } | null): void {
  const b = new Uint8Array(40);
  const dv = new DataView(b.buffer);
  dv.setInt32(0, seq);
  dv.setUint32(12, REPORT_MAGIC);
  if (r) { dv.setFloat64(16, r.bytes); dv.setUint32(24, r.packets); dv.setUint32(28, r.total); dv.setFloat64(32, r.ms); }
  sock.send(dst, port, b);
}

async function iperfClient(host: string, port: number, secs: number, len: number, io: CommandIo, k: KernelServices): Promise<number> {
  const dst = parseIp(host);
  if (dst === null) { io.out(`iperf: ${host}: Name or service not known\n`); return 1; }
  const ifc = k.net?.route(dst);
  if (!ifc || !ifc.stack.ip) { io.out('connect failed: Network is unreachable\n'); return 1; }
  const sock = ifc.stack.bind(0)!;
  const line = '-'.repeat(60);
  io.out(`${line}\nClient connecting to ${host}, UDP port ${port}\nSending ${len} byte datagrams\n${line}\n`);
  io.out(`[  3] local ${ipToString(ifc.stack.ip)} port ${sock.port} connected with ${host} port ${port}\n`);
  let report: { bytes: number; packets: number; total: number; ms: number } | null = null;
  let gotReport: (() => void) | null = null;
  sock.onMessage((d) => {
    if (d.data.length < 40) return;
    const dv = new DataView(d.data.buffer, d.data.byteOffset, d.data.byteLength);
    if (dv.getUint32(12) !== REPORT_MAGIC || dv.getInt32(0) >= 0) return;
    report = { bytes: dv.getFloat64(16), packets: dv.getUint32(24), total: dv.getUint32(28), ms: dv.getFloat64(32) };
    gotReport?.();
  });
  const buf = new Uint8Array(len);
  const dv = new DataView(buf.buffer);
  const start = performance.now();
  const end = start + secs * 1000;
  let seq = 0;
  let bytes = 0;
  try {
    // As fast as the tx ring takes them (iperf -b unlimited): a full ring waits for the back end.
    while (!io.signal.aborted) {
      const now = performance.now();
      if (now >= end) break;
      for (let i = 0; i < 64; i++) {
        dv.setInt32(0, seq);
        dv.setUint32(4, Math.floor(now / 1000));
        dv.setUint32(8, Math.floor((now % 1000) * 1000));
        const r = sock.send(dst, port, buf);
        if (r === 'full') { await ifc.stack.txSpace(); break; }
        if (r === 'dropped') { await new Promise((res) => setTimeout(res, 10)); break; }
        seq++;
        bytes += len;
      }
      await new Promise((res) => setImmediate(res));
    }
    const took = (performance.now() - start) / 1000;
    io.out(`[ ID] Interval       Transfer     Bandwidth\n`);
    io.out(`[  3] ${interval(took)}  ${mbytes(bytes)}  ${mbits(bytes, took)}\n[  3] Sent ${seq} datagrams\n`);
    // The final datagram (negative id), repeated until the server reports (iperf: 10 tries).
    for (let i = 0; i < 10 && !report && !io.signal.aborted; i++) {
      dv.setInt32(0, -seq);
      sock.send(dst, port, buf.subarray(0, 40));
      await new Promise<void>((r) => { gotReport = r; setTimeout(r, 250); });
    }
    const rep = report as { bytes: number; packets: number; total: number; ms: number } | null;
    if (!rep) { io.out(`[  3] WARNING: did not receive ack of last datagram after 10 tries.\n`); return 1; }
    const lost = Math.max(0, rep.total - rep.packets);
    io.out(`[  3] Server Report:\n[  3] ${interval(rep.ms / 1000)}  ${mbytes(rep.bytes)}  ${mbits(rep.bytes, rep.ms / 1000)}   0.000 ms ${String(lost).padStart(4)}/${rep.total} (${rep.total ? Math.round((lost / rep.total) * 100) : 0}%)\n`);
    return 0;
  } finally {
    sock.close();
  }
}

async function iperf(argv: string[], io: CommandIo, k: KernelServices): Promise<number> {
  let server = false;
  let client: string | undefined;
  let port = IPERF_PORT;
  let secs = 10;
  let len = 1470;
  for (let a = 1; a < argv.length; a++) {
    const w = argv[a]!;
    if (w === '-s') server = true;
    else if (w === '-c') client = argv[++a];
    else if (w === '-p') port = Number(argv[++a]);
    else if (w === '-t') secs = Number(argv[++a]);
    else if (w === '-l') len = Number(argv[++a]);
    else if (w === '-u') { /* UDP is the only mode */ }
    else { io.out(`iperf: ignoring extra argument -- ${w}\n`); }
  }
  const usage = () => { io.out('Usage: iperf [-s|-c host] [-u] [-p port] [-t secs] [-l len]\n'); return 1; };
  if (server === (client !== undefined)) return usage();
  if (!(port > 0 && port < 65536) || !(secs > 0) || !(len >= 40 && len <= 1472)) return usage();
  return server ? iperfServer(port, len, io, k) : iperfClient(client!, port, secs, len, io, k);
}

// --- nc -u (netcat, UDP) -------------------------------------------------
//
// `nc -u HOST PORT [-p LPORT]` sends each line typed as one datagram (a
// terminal's read returns a line) and prints what the peer sends;
// `nc -u -l -p PORT` waits on every interface up, and the first sender
// becomes its peer, as netcat's listen mode connects the socket to it.
// Ctrl-C ends it.

async function nc(argv: string[], io: CommandIo, k: KernelServices): Promise<number> {
  let udp = false;
  let listen = false;
  let lport = 0;
  const pos: string[] = [];
  for (let a = 1; a < argv.length; a++) {
    const w = argv[a]!;
    if (w === '-u') udp = true;
    else if (w === '-l') listen = true;
    else if (w === '-lu' || w === '-ul') { udp = true; listen = true; }
    else if (w === '-p') lport = Number(argv[++a]);
    else if (w.startsWith('-')) { io.out(`nc: invalid option -- '${w.slice(1)}'\n`); return 1; }
    else pos.push(w);
  }
  const usage = () => { io.out('Usage: nc -u [-p LPORT] HOST PORT | nc -u -l -p PORT\n'); return 1; };
  if (!udp) { io.out('nc: only UDP (-u) is available\n'); return 1; }
  if (listen && pos.length === 1) lport = Number(pos.pop());
  if (!(Number.isInteger(lport) && lport >= 0 && lport < 65536) || (listen ? pos.length !== 0 || lport === 0 : pos.length !== 2)) return usage();
  let peer: { sock: UdpSocket; ip: number; port: number } | null = null;
  const socks: UdpSocket[] = [];
  try {
    if (listen) {
      for (const i of (k.net?.list ?? []).filter((x) => x.up && x.stack.ip)) {
        const s = i.stack.bind(lport);
        if (!s) { io.out('nc: bind: Address already in use\n'); return 1; }
        socks.push(s);
      }
      if (!socks.length) { io.out('nc: bind: Cannot assign requested address\n'); return 1; }
    } else {
      const dst = parseIp(pos[0]!);
      const port = Number(pos[1]);
      if (dst === null) { io.out(`nc: ${pos[0]}: Name or service not known\n`); return 1; }
      if (!(Number.isInteger(port) && port > 0 && port < 65536)) return usage();
      const ifc = k.net?.route(dst);
      if (!ifc) { io.out('nc: connect: Network is unreachable\n'); return 1; }
      const s = ifc.stack.bind(lport);
      if (!s) { io.out('nc: bind: Address already in use\n'); return 1; }
      socks.push(s);
      peer = { sock: s, ip: dst, port };
    }
    for (const s of socks) {
      s.onMessage((d) => {
        if (!peer) peer = { sock: s, ip: d.src, port: d.srcPort };
        if (peer.sock !== s || peer.ip !== d.src || peer.port !== d.srcPort) return; // a connected socket hears its peer only
        io.out(Buffer.from(d.data).toString('utf8'));
      });
    }
    io.readLines?.((line) => {
      if (peer && peer.sock.send(peer.ip, peer.port, Buffer.from(line)) === 'dropped') io.out('nc: write: Network is unreachable\n');
    });
    await new Promise<void>((r) => { if (io.signal.aborted) r(); else io.signal.addEventListener('abort', () => r(), { once: true }); });
    return 0;
  } finally {
    for (const s of socks) s.close();
  }
}

export const netCommands: Command[] = [
  { name: 'nc', help: 'nc -u HOST PORT | nc -u -l -p PORT: UDP lines typed out, datagrams printed', run: nc },
  ifconfig, ethtool,
  { name: 'ping', help: 'ping [-c N] [-i SECS] [-s BYTES] IP: ICMP echo with round-trip times', run: ping },
  { name: 'iperf', help: 'iperf -s | -c IP [-t SECS] [-l LEN]: UDP throughput between guests', run: iperf },
];
