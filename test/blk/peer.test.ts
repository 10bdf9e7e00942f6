// Xen's own blkif layout, checked by a peer: test/blk/blkif_peer.c is built
// at test time with `cc` against libxen-dev's xen/io/blkif.h and
// xen/io/ring.h, maps the guest's memory segment (shm_open + mmap) and
// drives blkback through the shared ring page with Xen's macros
// (XEN_FRONT_RING_INIT, RING_GET_REQUEST, RING_PUSH_REQUESTS_AND_CHECK_NOTIFY,
// RING_GET_RESPONSE): a two-segment write, a flush, two reads pushed
// together (one into the middle of a page), and an error response. The
// guest (test/fixtures/hostile_blkfront.ts) grants the pages, does the
// xenbus handshake and relays the notifications the program asks for.
import t from 'tap';
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { probe } from '../helpers/probe.js';
import { ccBuild, ccMissing } from '../helpers/cc.js';
import { list, writeCfg, xlOk } from '../host/xl.js';
import { BLK_RING_SIZE, blkif_request, blkif_request_segment, blkif_response } from '../../shared/abi/io/blkif.js';

const HOSTILE = join(DIST, 'test', 'fixtures', 'hostile_blkfront.js');
const SOURCE = join(DIST, '..', 'test', 'blk', 'blkif_peer.c');
const SECTOR = 96;

// Without cc or libxen-dev's headers this is a tap skip saying which is missing (.ci/setup installs both).
const missing = ccMissing(['xen/io/blkif.h', 'xen/io/ring.h']);

t.test('a C front end built on Xen\'s blkif.h and ring.h is served by blkback', { skip: missing ?? false }, async (t) => {
  const h = await startHost(t, { memory: 256, pcpus: 2 });
  const exe = join(h.root, 'blkif_peer');
  if (!ccBuild(t, SOURCE, exe, ['-Wall', '-Werror', '-O1'], ['-lrt'])) return;

  const img = join(h.root, 'peer.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 4 * 1024 * 1024);
  const cfg = writeCfg(h, 'peer.cfg', `name = "peer"\nmemory = 32\nkernel = "${HOSTILE}"\ndisk = [ '${img},raw,xvda,rw' ]\n`);
  await xlOk(h, 'create', cfg);
  const domid = (await list(h)).find((r) => r.name === 'peer')!.id;
  const p = probe(h.rundir, domid, 30_000);
  t.teardown(() => p.close());
  const info = (await waitFor(async () => p.call('info').catch(() => null), 20_000, 'fixture info'))!;
  const vbd = info.vbds[0];
  const pages = [0, 1, 2, 3].flatMap((i) => [String(info.data[i].pfn), String(info.data[i].ref)]);

  const peer = spawn(exe, [info.mem, String(vbd.ringPfn), String(SECTOR), ...pages], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((res) => peer.once('exit', (code) => res(code)));
  t.teardown(async () => { if (peer.exitCode === null && peer.signalCode === null) { peer.kill('SIGKILL'); await exited; } });
  let stderr = '';
  peer.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const lines: string[] = [];
  let relays: Promise<unknown> = Promise.resolve();
  createInterface({ input: peer.stdout }).on('line', (l) => {
    lines.push(l);
    if (l === 'notify') relays = relays.then(() => p.call('notify', { devid: vbd.devid }));
  });

  await waitFor(() => lines.includes('ready'), 10_000, 'the peer initialised the ring');
  const layout = lines.find((l) => l.startsWith('layout '))!;
  t.equal(layout, `layout req=${blkif_request.SIZE} rsp=${blkif_response.SIZE} seg=${blkif_request_segment.SIZE} ` +
    `off_id=${blkif_request.id} off_sector=${blkif_request.sector_number} off_seg=${blkif_request.seg} ring_size=${BLK_RING_SIZE}`,
    'blkif.h sizes and offsets are shared/abi/io/blkif.ts\'s');
  // The handshake, on the ring page the peer initialised (SHARED_RING_INIT is its own).
  await p.call('connect', { devid: vbd.devid, persistent: false, initRing: false });
  peer.stdin.write('go\n');
  const code = await Promise.race([exited, new Promise<string>((res) => setTimeout(() => res('timeout'), 30_000).unref())]);
  await relays;
  t.equal(code, 0, `the peer ends well (${lines.join(' | ')}${stderr ? ` stderr: ${stderr}` : ''})`);
  t.ok(lines.includes('ok'), 'write, flush, reads and an error response, all in Xen\'s layout');
  t.ok(lines.includes('rsp id=1234605616436508552 op=1 status=0'), 'the write\'s 64-bit id comes back whole');
  t.ok(lines.some((l) => l === 'rsp id=99 op=0 status=-1'), 'a bad segment: BLKIF_RSP_ERROR');

  const bytes = fs.readFileSync(img);
  const want = Buffer.alloc(12 * 512);
  for (let i = 0; i < 4096; i++) want[i] = (i * 7 + 1) & 0xff;
  for (let i = 2 * 512; i < 6 * 512; i++) want[4096 + i - 2 * 512] = (i * 13 + 5) & 0xff;
  t.ok(bytes.subarray(SECTOR * 512, (SECTOR + 12) * 512).equals(want), 'the image holds both segments, in order');
  t.ok(bytes.subarray((SECTOR + 12) * 512, (SECTOR + 16) * 512).every((b) => b === 0), 'and nothing past them');
});
