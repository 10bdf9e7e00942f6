// xenemu's xenstored against Xen 4.17's C xenstored (Debian's xen-utils-4.17,
// run by test/helpers/xenstored.ts startXenC): the same requests, in the same
// order, on the same number of connections, to both daemons; every message
// each connection receives (replies and watch events: type, req_id, tx_id,
// payload) must be the same bytes. The C daemon is the reference: where the
// two differ, xenemu is wrong.
//
// After each request, once its answer is in, every connection sends a ping
// (GET_DOMAIN_PATH 0 with a req_id of its own) and the transcript takes
// everything it received before the ping's answer: a daemon queues the
// events a request causes before it answers it, so what a request caused
// anywhere is complete and ordered, without any wait on time. (Pinging
// before the answer is in would race: the C daemon serves its connections
// in its own order, not in the order requests arrived on different sockets.)
//
// XS_LOCKSTEP_DUMP=1 prints the C daemon's transcript of each script.
import t from 'tap';
import {
  XS_READ, XS_WRITE, XS_DIRECTORY, XS_DIRECTORY_PART, XS_GET_PERMS, XS_SET_PERMS, XS_MKDIR, XS_RM,
  XS_WATCH, XS_UNWATCH, XS_TRANSACTION_START, XS_TRANSACTION_END, XS_GET_DOMAIN_PATH, XS_SET_TARGET,
  XS_RELEASE, XS_RESUME, XS_IS_DOMAIN_INTRODUCED, XS_RESET_WATCHES, XS_TYPE_NAMES, XS_WATCH_EVENT,
} from '../../shared/abi/io/xs_wire.js';
import { startXenstored, startXenC, xenCMissing } from '../helpers/xenstored.js';
import { RawXs, type RawMsg } from '../helpers/xs_raw.js';

/** One request: on connection c, inside the transaction saved as `tx`; `save` keeps the reply as a transaction id. */
interface Step { c: number; type: number; payload: string | Buffer; tx?: string; save?: string }
interface Script { name: string; conns: number; steps: Step[] }

const PING_REQ = 0x7e57;
const PING = Buffer.from('0\0');

/** NUL-terminated strings. */
const z = (...s: string[]): string => s.map((x) => x + '\0').join('');
const S = (c: number, type: number, payload: string | Buffer, extra: Partial<Step> = {}): Step => ({ c, type, payload, ...extra });

/** Bytes as text: printable ASCII as is, the rest as \xNN. */
function bytes(b: Buffer | string): string {
  return [...Buffer.from(b)].map((c) => (c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
}

/**
 * A generation count (the first string of a DIRECTORY_PART reply) is a
 * number of each daemon's own; a transcript keeps only which ones are equal:
 * the first one seen becomes G1, the next other one G2, and so on.
 */
function show(c: number, m: RawMsg, gens: Map<string, string>): string {
  let payload = m.payload;
  if (m.type === XS_DIRECTORY_PART) {
    const nul = payload.indexOf(0);
    const g = payload.toString('latin1', 0, nul);
    if (!gens.has(g)) gens.set(g, `G${gens.size + 1}`);
    payload = Buffer.concat([Buffer.from(gens.get(g)!), payload.subarray(nul)]);
  }
  return `c${c} ${XS_TYPE_NAMES[m.type] ?? m.type} req=${m.reqId} tx=${m.txId} ${bytes(payload)}`;
}

async function transcript(socketPath: string, script: Script): Promise<string[]> {
  const conns: RawXs[] = [];
  for (let i = 0; i < script.conns; i++) conns.push(await RawXs.open(socketPath));
  const txs = new Map<string, number>();
  const out: string[] = [];
  const gens = new Map<string, string>();
  try {
    for (const [i, s] of script.steps.entries()) {
      const reqId = i + 1;
      conns[s.c]!.send(s.type, s.payload, reqId, s.tx ? txs.get(s.tx) ?? 0 : 0);
      out.push(`> c${s.c} ${XS_TYPE_NAMES[s.type]} ${bytes(s.payload)}${s.tx ? ` in ${s.tx}` : ''}`);
      // Its answer first: by then everything it caused is queued everywhere.
      for (;;) {
        const m = await conns[s.c]!.next();
        if (!m) { out.push(`c${s.c} closed`); break; }
        out.push(show(s.c, m, gens));
        if (m.reqId !== reqId || m.type === XS_WATCH_EVENT) continue;
        if (s.save && m.type === s.type) txs.set(s.save, Number(m.payload.toString('latin1').replace(/\0$/, '')));
        break;
      }
      for (const [ci, conn] of conns.entries()) {
        if (conn.closed) continue;
        conn.send(XS_GET_DOMAIN_PATH, PING, PING_REQ);
        for (;;) {
          const m = await conn.next();
          if (!m) { out.push(`c${ci} closed`); break; }
          if (m.reqId === PING_REQ && m.type === XS_GET_DOMAIN_PATH) break;
          out.push(show(ci, m, gens));
        }
      }
    }
  } finally {
    for (const c of conns) c.close();
  }
  return out;
}

export const SCRIPTS: Script[] = [
  {
    name: 'a transaction reads the value it first saw, not a later outside write',
    conns: 2,
    steps: [
      S(1, XS_WRITE, '/a\0old'),
      S(0, XS_TRANSACTION_START, z(''), { save: 'T' }),
      S(0, XS_READ, z('/a'), { tx: 'T' }),
      S(1, XS_WRITE, '/a\0new'),
      S(0, XS_READ, z('/a'), { tx: 'T' }),
      S(0, XS_READ, z('/a')),
      S(0, XS_TRANSACTION_END, z('T'), { tx: 'T' }),
      S(0, XS_READ, z('/a')),
    ],
  },
  {
    name: 'a transaction sees the permissions of a node removed outside it',
    conns: 2,
    steps: [
      S(1, XS_WRITE, '/p\0x'),
      S(1, XS_SET_PERMS, z('/p', 'n0', 'r5')),
      S(0, XS_TRANSACTION_START, z(''), { save: 'T' }),
      S(0, XS_GET_PERMS, z('/p'), { tx: 'T' }),
      S(1, XS_RM, z('/p')),
      S(0, XS_GET_PERMS, z('/p'), { tx: 'T' }),
      S(0, XS_READ, z('/p'), { tx: 'T' }),
      S(0, XS_GET_PERMS, z('/p')),
      S(0, XS_TRANSACTION_END, z('F'), { tx: 'T' }),
    ],
  },
  {
    name: 'a node absent at first sight stays absent in the transaction',
    conns: 2,
    steps: [
      S(0, XS_TRANSACTION_START, z(''), { save: 'T' }),
      S(0, XS_READ, z('/late'), { tx: 'T' }),
      S(1, XS_WRITE, '/late\0here'),
      S(0, XS_READ, z('/late'), { tx: 'T' }),
      S(0, XS_GET_PERMS, z('/late'), { tx: 'T' }),
      S(0, XS_DIRECTORY, z('/'), { tx: 'T' }),
      S(0, XS_TRANSACTION_END, z('T'), { tx: 'T' }),
    ],
  },
  {
    name: 'a directory listed in a transaction gets no outside children',
    conns: 2,
    steps: [
      S(1, XS_WRITE, '/d/x\0' + '1'),
      S(0, XS_TRANSACTION_START, z(''), { save: 'T' }),
      S(0, XS_DIRECTORY, z('/d'), { tx: 'T' }),
      S(1, XS_WRITE, '/d/y\0' + '2'),
      S(1, XS_RM, z('/d/x')),
      S(0, XS_DIRECTORY, z('/d'), { tx: 'T' }),
      S(0, XS_READ, z('/d/x'), { tx: 'T' }),
      S(0, XS_WRITE, '/d/z\0' + '3', { tx: 'T' }),
      S(0, XS_DIRECTORY, z('/d'), { tx: 'T' }),
      S(0, XS_DIRECTORY, z('/d')),
      S(0, XS_TRANSACTION_END, z('T'), { tx: 'T' }),
      S(0, XS_DIRECTORY, z('/d')),
    ],
  },
  {
    name: 'a transaction keeps its own write over a later outside one',
    conns: 2,
    steps: [
      S(0, XS_TRANSACTION_START, z(''), { save: 'T' }),
      S(0, XS_WRITE, '/w\0mine', { tx: 'T' }),
      S(1, XS_WRITE, '/w\0theirs'),
      S(0, XS_READ, z('/w'), { tx: 'T' }),
      S(0, XS_TRANSACTION_END, z('T'), { tx: 'T' }),
      S(0, XS_READ, z('/w')),
    ],
  },
  {
    name: 'watch tokens are bytes, echoed unchanged',
    conns: 2,
    steps: [
      S(0, XS_WATCH, Buffer.from('/tok\0t\xff\x80\0', 'latin1')),
      S(1, XS_WRITE, '/tok\0v'),
      S(0, XS_WATCH, Buffer.from('@releaseDomain\0r\xfe\0', 'latin1')),
      S(0, XS_UNWATCH, Buffer.from('/tok\0t\xff\x80\0', 'latin1')),
      S(1, XS_WRITE, '/tok\0w'),
    ],
  },
  {
    name: 'paths with bytes outside [A-Za-z0-9-/_@] are EINVAL',
    conns: 1,
    steps: [
      S(0, XS_WRITE, Buffer.from('/bad\xff\0v', 'latin1')),
      S(0, XS_READ, Buffer.from('/bad\xc3\xa9\0', 'latin1')),
      S(0, XS_WATCH, Buffer.from('/bad\xff\0tok\0', 'latin1')),
      S(0, XS_MKDIR, z('/sp ace')),
    ],
  },
  {
    name: 'values are bytes',
    conns: 1,
    steps: [
      S(0, XS_WRITE, Buffer.from('/bin\0\xff\x00\xc3\xa9\x80', 'latin1')),
      S(0, XS_READ, z('/bin')),
    ],
  },
  {
    name: 'special nodes take SET_PERMS and answer GET_PERMS',
    conns: 1,
    steps: [
      S(0, XS_GET_PERMS, z('@introduceDomain')),
      S(0, XS_GET_PERMS, z('@releaseDomain')),
      S(0, XS_SET_PERMS, z('@introduceDomain', 'n0', 'r5')),
      S(0, XS_GET_PERMS, z('@introduceDomain')),
      S(0, XS_SET_PERMS, z('@releaseDomain', 'r0')),
      S(0, XS_GET_PERMS, z('@releaseDomain')),
      S(0, XS_GET_PERMS, z('@other')),
      S(0, XS_SET_PERMS, z('@other', 'n0')),
      S(0, XS_READ, z('@introduceDomain')),
    ],
  },
  {
    name: 'DIRECTORY_PART past the end answers the generation and an empty list',
    conns: 1,
    steps: [
      S(0, XS_WRITE, '/dp/a\0' + '1'),
      S(0, XS_WRITE, '/dp/bb\0' + '2'),
      S(0, XS_DIRECTORY_PART, z('/dp', '0')),
      S(0, XS_DIRECTORY_PART, z('/dp', '2')),
      S(0, XS_DIRECTORY_PART, z('/dp', '5')),
      S(0, XS_DIRECTORY_PART, z('/dp', '6')),
      S(0, XS_DIRECTORY_PART, z('/dp', '100')),
      S(0, XS_DIRECTORY_PART, z('/dp/a', '0')),
      S(0, XS_DIRECTORY_PART, z('/dp/a', '1')),
    ],
  },
  {
    name: 'one watch event per node a committed transaction changed',
    conns: 2,
    steps: [
      S(1, XS_WATCH, z('/e', 'tok')),
      S(0, XS_TRANSACTION_START, z(''), { save: 'T' }),
      S(0, XS_WRITE, '/e/a\0' + '1', { tx: 'T' }),
      S(0, XS_WRITE, '/e/a\0' + '2', { tx: 'T' }),
      S(0, XS_WRITE, '/e/b\0' + '1', { tx: 'T' }),
      S(0, XS_WRITE, '/e/a\0' + '3', { tx: 'T' }),
      S(0, XS_TRANSACTION_END, z('T'), { tx: 'T' }),
    ],
  },
  {
    name: 'one watch event per node a committed transaction changed, in the order first touched',
    conns: 2,
    steps: [
      S(1, XS_WRITE, '/f/old\0' + 'x'),
      S(1, XS_WATCH, z('/f', 'all')),
      S(1, XS_WATCH, z('/f/b', 'b')),
      S(0, XS_TRANSACTION_START, z(''), { save: 'T' }),
      S(0, XS_WRITE, '/f/b\0' + '1', { tx: 'T' }),
      S(0, XS_READ, z('/f/old'), { tx: 'T' }),
      S(0, XS_WRITE, '/f/a\0' + '1', { tx: 'T' }),
      S(0, XS_RM, z('/f/old'), { tx: 'T' }),
      S(0, XS_WRITE, '/f/b\0' + '2', { tx: 'T' }),
      S(0, XS_SET_PERMS, z('/f/a', 'n0', 'r3'), { tx: 'T' }),
      S(0, XS_MKDIR, z('/f/c/d'), { tx: 'T' }),
      S(0, XS_DIRECTORY_PART, z('/f', '0'), { tx: 'T' }),
      S(0, XS_TRANSACTION_END, z('T'), { tx: 'T' }),
      S(0, XS_DIRECTORY_PART, z('/f', '0')),
    ],
  },
  {
    name: 'an aborted transaction fires nothing',
    conns: 2,
    steps: [
      S(1, XS_WATCH, z('/g', 'tok')),
      S(0, XS_TRANSACTION_START, z(''), { save: 'T' }),
      S(0, XS_WRITE, '/g/a\0' + '1', { tx: 'T' }),
      S(0, XS_TRANSACTION_END, z('F'), { tx: 'T' }),
      S(0, XS_READ, z('/g/a')),
    ],
  },
  {
    name: 'removing a subtree fires each watch on a removed node, deepest first, then the ancestors',
    conns: 2,
    steps: [
      S(0, XS_WRITE, '/r/a/b\0' + '1'),
      S(0, XS_WRITE, '/r/a/c\0' + '2'),
      S(0, XS_WRITE, '/r/z\0' + '3'),
      S(1, XS_WATCH, z('/r', 'top')),
      S(1, XS_WATCH, z('/r/a/b', 'b')),
      S(1, XS_WATCH, z('/r/a', 'a')),
      S(1, XS_WATCH, z('/r/a/none', 'none')),
      S(1, XS_WATCH, z('/r/a/c', 'c')),
      S(1, XS_WATCH, z('/', 'root')),
      S(0, XS_RM, z('/r/a')),
      S(0, XS_RM, z('/r/a')),
      S(0, XS_WRITE, '/r/a/b/deep\0' + '4'),
      S(0, XS_RM, z('/r')),
    ],
  },
  {
    name: 'removing a subtree inside a transaction fires on commit as outside',
    conns: 2,
    steps: [
      S(0, XS_WRITE, '/q/a/b\0' + '1'),
      S(0, XS_WRITE, '/q/a/c\0' + '2'),
      S(1, XS_WATCH, z('/q/a/c', 'c')),
      S(1, XS_WATCH, z('/q', 'top')),
      S(0, XS_TRANSACTION_START, z(''), { save: 'T' }),
      S(0, XS_RM, z('/q/a'), { tx: 'T' }),
      S(0, XS_READ, z('/q/a/b'), { tx: 'T' }),
      S(0, XS_DIRECTORY, z('/q'), { tx: 'T' }),
      S(0, XS_TRANSACTION_END, z('T'), { tx: 'T' }),
    ],
  },
  {
    name: 'a write fires the watches on the node and its ancestors, in the order they were set',
    conns: 2,
    steps: [
      S(1, XS_WATCH, z('/o/a/b', 'deep')),
      S(1, XS_WATCH, z('/o', 'top')),
      S(1, XS_WATCH, z('/o/a', 'mid')),
      S(1, XS_WATCH, z('/o/a/b/c', 'below')),
      S(0, XS_WRITE, '/o/a/b\0' + 'v'),
      S(0, XS_SET_PERMS, z('/o/a', 'n0', 'b7')),
      S(0, XS_MKDIR, z('/o/a/b')),
      S(0, XS_MKDIR, z('/o/x')),
      S(1, XS_UNWATCH, z('/o', 'top')),
      S(1, XS_UNWATCH, z('/o', 'top')),
      S(0, XS_WRITE, '/o/a\0' + 'w'),
    ],
  },
  {
    name: 'an unknown transaction id',
    conns: 1,
    steps: [
      S(0, XS_TRANSACTION_START, z(''), { save: 'T' }),
      S(0, XS_TRANSACTION_END, z('F'), { tx: 'T' }),
      S(0, XS_READ, z('/'), { tx: 'T' }),
      S(0, XS_GET_DOMAIN_PATH, z('3'), { tx: 'T' }),
      S(0, XS_IS_DOMAIN_INTRODUCED, z('0'), { tx: 'T' }),
      S(0, XS_RESET_WATCHES, '', { tx: 'T' }),
      S(0, XS_WATCH, z('/u', 'tok'), { tx: 'T' }),
      S(0, XS_UNWATCH, z('/u', 'tok'), { tx: 'T' }),
      S(0, XS_TRANSACTION_START, z(''), { tx: 'T' }),
      S(0, XS_TRANSACTION_END, z('T'), { tx: 'T' }),
    ],
  },
  {
    name: 'transaction start and end arguments; domain 0 requests',
    conns: 1,
    steps: [
      S(0, XS_TRANSACTION_START, '', { save: 'T' }),
      S(0, XS_TRANSACTION_END, z('F'), { tx: 'T' }),
      S(0, XS_TRANSACTION_START, z('junk'), { save: 'U' }),
      S(0, XS_TRANSACTION_END, z('x'), { tx: 'U' }),
      S(0, XS_TRANSACTION_END, '', { tx: 'U' }),
      S(0, XS_TRANSACTION_END, z('F')),
      S(0, XS_TRANSACTION_END, z('x')),
      S(0, XS_TRANSACTION_START, z(''), { tx: 'U' }),
      S(0, XS_TRANSACTION_END, z('T'), { tx: 'U' }),
      S(0, XS_SET_TARGET, z('0', '0')),
      S(0, XS_RELEASE, z('0')),
      S(0, XS_RESUME, z('0')),
      S(0, XS_IS_DOMAIN_INTRODUCED, z('0')),
      S(0, XS_RESET_WATCHES, ''),
    ],
  },
  {
    name: 'reads, writes, mkdir and rm, and their errors',
    conns: 1,
    steps: [
      S(0, XS_WRITE, '/m/a/b\0' + 'v'),
      S(0, XS_READ, z('/m/a')),
      S(0, XS_MKDIR, z('/m/a')),
      S(0, XS_MKDIR, z('/m/c/d')),
      S(0, XS_DIRECTORY, z('/m')),
      S(0, XS_WRITE, '/m/a/b\0'),
      S(0, XS_READ, z('/m/a/b')),
      S(0, XS_RM, z('/m/none')),
      S(0, XS_RM, z('/m/none/deeper')),
      S(0, XS_RM, z('/')),
      S(0, XS_WRITE, '/\0' + 'root'),
      S(0, XS_READ, z('/')),
      S(0, XS_READ, z('/m/')),
      S(0, XS_READ, z('//m')),
      S(0, XS_READ, z('')),
      S(0, XS_READ, '/m'),
      S(0, XS_READ, z('/m', '/m')),
      S(0, XS_WRITE, '/m/novalue'),
      S(0, XS_DIRECTORY, z('/none')),
      S(0, XS_GET_PERMS, z('/none')),
      S(0, XS_SET_PERMS, z('/none', 'n0')),
      S(0, XS_SET_PERMS, z('/m', 'x0')),
      S(0, XS_SET_PERMS, z('/m')),
      S(0, XS_SET_PERMS, z('/m', 'r0', 'w1', 'b2', 'n3')),
      S(0, XS_GET_PERMS, z('/m')),
      S(0, XS_GET_PERMS, z('/m/a/b')),
      S(0, XS_WRITE, '/m/inherit\0' + 'x'),
      S(0, XS_GET_PERMS, z('/m/inherit')),
    ],
  },
  {
    name: 'relative paths, domain paths, watches on them',
    conns: 2,
    steps: [
      S(0, XS_WRITE, 'rel/x\0' + '1'),
      S(0, XS_READ, z('/local/domain/0/rel/x')),
      S(0, XS_DIRECTORY, z('rel')),
      S(1, XS_WATCH, z('rel', 'r')),
      S(0, XS_WRITE, '/local/domain/0/rel/y\0' + '2'),
      S(0, XS_RM, z('/local/domain/0')),
      S(1, XS_WATCH, z('rel', 'r')),
      S(1, XS_UNWATCH, z('rel', 'other')),
      S(1, XS_UNWATCH, z('/local/domain/0/rel', 'r')),
      S(1, XS_WATCH, z('/bad//path', 'x')),
      S(1, XS_WATCH, z('/only-one-arg')),
      S(0, XS_GET_DOMAIN_PATH, z('7')),
      S(0, XS_GET_DOMAIN_PATH, z('')),
      S(0, XS_GET_DOMAIN_PATH, z('12abc')),
      S(0, XS_IS_DOMAIN_INTRODUCED, z('junk')),
      S(0, XS_IS_DOMAIN_INTRODUCED, z('7')),
      S(1, XS_RESET_WATCHES, ''),
      S(0, XS_WRITE, 'rel/z\0' + '3'),
    ],
  },
  {
    name: 'big values and directories',
    conns: 1,
    steps: [
      S(0, XS_WRITE, '/big/v\0' + 'x'.repeat(4096 - 7)),
      S(0, XS_READ, z('/big/v')),
      ...Array.from({ length: 40 }, (_, i) => S(0, XS_WRITE, `/big/d/${'n'.repeat(100)}${i}\0`)),
      S(0, XS_DIRECTORY, z('/big/d')),
      S(0, XS_DIRECTORY_PART, z('/big/d', '0')),
      S(0, XS_DIRECTORY_PART, z('/big/d', '3979')),
    ],
  },
  {
    name: 'the tree a daemon starts with',
    conns: 1,
    steps: [
      S(0, XS_DIRECTORY, z('/')),
      S(0, XS_DIRECTORY, z('/tool')),
      S(0, XS_GET_PERMS, z('/tool')),
      S(0, XS_GET_PERMS, z('/tool/xenstored')),
      S(0, XS_READ, z('/tool/xenstored')),
      S(0, XS_GET_PERMS, z('/')),
    ],
  },
];

const missing = xenCMissing();
const skip = missing ? `Xen's C xenstored cannot run here: ${missing}` : false;
{
  for (const script of SCRIPTS) {
    t.test(script.name, { skip }, async (t) => {
      const xenC = await startXenC(t);
      const xs = await startXenstored(t);
      const want = await transcript(xenC.socketPath, script);
      const got = await transcript(xs.socketPath, script);
      if (process.env.XS_LOCKSTEP_DUMP) t.comment(want.join('\n'));
      t.same(got, want, 'xenemu answers what Xen 4.17 answers');
    });
  }
}
