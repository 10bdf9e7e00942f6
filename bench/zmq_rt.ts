// The evtchn benchmark's baseline: a raw ZeroMQ round trip between two Node
// processes with the socket type (PAIR over ipc://) and codec
// (shared/wire/codec.ts) of the hypervisor's domain channels, and messages
// of the same shapes: `notify` one way, `upcall` back.
//
//   node dist/bench/zmq_rt.js server ipc://...      answers every message
//   node dist/bench/zmq_rt.js client ipc://... MS   round trips for MS ms, prints JSON
import * as zmq from 'zeromq';
import { encode, decode } from '../shared/wire/codec.js';
import { watchParent } from '../shared/runtime/lifeline.js';

async function server(endpoint: string): Promise<void> {
  const sock = new zmq.Pair({ linger: 0 });
  await sock.bind(endpoint);
  process.stdout.write('listening\n');
  for await (const [m] of sock) {
    const msg = decode<{ type: string; port: number }>(m as Buffer);
    if (msg.type === 'notify') await sock.send(encode({ type: 'upcall', vcpu: 0 }));
  }
}

async function client(endpoint: string, ms: number): Promise<void> {
  const sock = new zmq.Pair({ linger: 0 });
  sock.connect(endpoint);
  const rt = async () => {
    await sock.send(encode({ type: 'notify', port: 1 }));
    const [r] = await sock.receive();
    return decode<{ type: string }>(r as Buffer).type === 'upcall';
  };
  await rt(); // connected
  let n = 0;
  const t0 = performance.now();
  let now = t0;
  while (now - t0 < ms) {
    if (await rt()) n++;
    now = performance.now();
  }
  process.stdout.write(`${JSON.stringify({ roundTrips: n, ms: now - t0 })}\n`);
  sock.close();
}

const [role, endpoint, ms] = process.argv.slice(2);
watchParent(() => process.exit(0));
if (role === 'server') void server(endpoint!);
else if (role === 'client') void client(endpoint!, Number(ms));
else { process.stderr.write('usage: zmq_rt server|client ENDPOINT [MS]\n'); process.exit(2); }
