// A hostile block front end (test/fixtures/hostile_blkfront.ts) next to an
// honest PV guest with its own disk. The hostile domain does the xenbus
// handshake itself and drives the blkif ring by hand: grant refs that do not
// exist or were granted to another domain, more than 11 segments, sectors
// past the end, bad first_sect/last_sect, a disk read into a page granted
// read-only, unknown operations, writes and discards to a read-only vbd, a
// ring-ref never granted, a request rewritten after blkback copied it
// (XSA-155) and a req_prod running ahead of the ring; and BLKIF_OP_INDIRECT
// requests with bad descriptor pages (no such grant, another domain's,
// read-only), bad segment counts, bad descriptors, and descriptors rewritten
// after blkback copied them (XSA-155). Each time blkback answers with an
// error and counts the refusal under the name of the check that fired
// (processes/dom0/blkback/reject.ts), exactly once, in the vbd's statistics
// file and in the total; or it serves the request as it copied it; or it
// disconnects that vbd alone. Pages never granted to Domain-0, or granted
// read-only, stay as they were; the honest guest keeps writing and reading
// its disk correctly. Each error case runs on a vbd without and with
// feature-persistent.
//
// The XSA-155 window is made certain with blkback's test hook
// (XENEMU_TEST_HOOKS=blkback-pause-after-copy): blkback stops right after
// its copy of the named request (or of its descriptor pages) until the test
// has rewritten the slot (or the page) and lets it go.
import t from 'tap';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { probe, type Probe } from '../helpers/probe.js';
import { list, writeCfg, xlOk } from '../host/xl.js';
import { netGuest } from '../net/guests.js';
import {
  BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_RESERVED_1, BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY,
} from '../../shared/abi/io/blkif.js';
import type { BlkifReject } from '../../processes/dom0/blkback/reject.js';
import { LOG_BURST } from '../../processes/dom0/backend_stats.js';
import {
  PAUSE_AFTER_COPY, TEST_HOOKS_ENV, pauseArmPath, pausedPath, testHooksDir, type PauseSpec,
} from '../../processes/dom0/blkback/test_hooks.js';
import { rejections } from './rejections.js';

const HOSTILE = join(DIST, 'test', 'fixtures', 'hostile_blkfront.js');
const MiB = 1 << 20;
const PAGE = 4096;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

interface Info { domid: number; data: { pfn: number; ref: number }[]; ind: { pfn: number; ref: number }[]; ro: { ref: number } }
interface Rsp { id: number; operation: number; status: number }
interface RawSeg { gref: number; first_sect: number; last_sect: number }
type Case = [what: string, reason: BlkifReject, req: Record<string, unknown>];

// Domain-0 inherits it through the launcher and the hypervisor: blkback's pause-after-copy hook.
process.env[TEST_HOOKS_ENV] = PAUSE_AFTER_COPY;

t.test('a hostile blkfront gets named errors or is disconnected; another guest keeps its disk', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const goodImg = join(h.root, 'good.img');
  fs.writeFileSync(goodImg, '');
  fs.truncateSync(goodImg, 8 * MiB);
  const g = await netGuest(t, h, 'bg', `disk = [ '${goodImg},raw,xvda,rw' ]`);
  const served = async (what: string) => {
    const w = await g.run('dd if=/dev/urandom of=/dev/xvda bs=64k count=16 conv=fsync', 60_000);
    t.match(w, /16\+0 records out/, `bg writes its disk after ${what}`);
    const sum = (await g.run('md5sum /dev/xvda 1M', 60_000)).trim();
    t.equal(sum, `${md5(fs.readFileSync(goodImg).subarray(0, MiB))}  /dev/xvda`, `bg reads back what it wrote after ${what}`);
  };

  const imgs = ['xvda', 'xvdb', 'xvdc', 'xvdd', 'xvde'].map((d) => {
    const p = join(h.root, `evil-${d}.img`);
    fs.writeFileSync(p, '');
    fs.truncateSync(p, 4 * MiB);
    return p;
  });
  const cfg = writeCfg(h, 'evil.cfg', `name = "evil"\nmemory = 32\nkernel = "${HOSTILE}"\n` +
    `disk = [ '${imgs[0]},raw,xvda,rw', '${imgs[1]},raw,xvdb,rw', '${imgs[2]},raw,xvdc,rw', '${imgs[3]},raw,xvdd,r', ` +
    `'${imgs[4]},raw,xvde,rw' ]\n`);
  await xlOk(h, 'create', cfg);
  const evil = (await list(h)).find((r) => r.name === 'evil')!.id;
  const p: Probe = probe(h.rundir, evil, 30_000);
  t.teardown(() => p.close());
  const info = (await waitFor(async () => p.call<Info>('info').catch(() => null), 20_000, 'hostile info'))!;
  const sectors = 4 * MiB / 512;
  const rej = rejections(h.rundir, 'vbd', evil);

  const untouched = async (what: string) => {
    t.same(await p.call('untouched'), { canary: true, ro: true, other: true },
      `after ${what}: the never-granted canary, the read-only page and the other domain's page are untouched`);
  };

  // blkback's pause after its copy (processes/dom0/blkback/test_hooks.ts).
  const arm = (spec: PauseSpec) => {
    fs.mkdirSync(testHooksDir(h.rundir), { recursive: true });
    fs.writeFileSync(`${pauseArmPath(h.rundir)}.tmp`, JSON.stringify(spec));
    fs.renameSync(`${pauseArmPath(h.rundir)}.tmp`, pauseArmPath(h.rundir));
  };
  const pausedAt = () => waitFor(() => {
    try { return JSON.parse(fs.readFileSync(pausedPath(h.rundir), 'utf8')) as PauseSpec; } catch { return null; }
  }, 10_000, 'blkback paused after its copy');
  const release = () => fs.rmSync(pausedPath(h.rundir));

  const modes = [
    { devid: 51712, img: imgs[0]!, persistent: false },
    { devid: 51728, img: imgs[1]!, persistent: true },
  ];
  for (const m of modes) {
    await t.test(`vbd ${m.devid}, feature-persistent ${m.persistent ? 'on' : 'off'}`, async (t) => {
      const c = await p.call<{ sectors: number }>('connect', { devid: m.devid, persistent: m.persistent });
      t.equal(c.sectors, sectors, 'connected');
      const ref = (i: number) => info.data[i]!.ref;
      const seg = (gref: number, first_sect = 0, last_sect = 7) => ({ gref, first_sect, last_sect });
      const one = async (q: Record<string, unknown>): Promise<Rsp> => {
        const r = await p.call<{ responses: Rsp[] }>('submit', { devid: m.devid, reqs: [q] });
        t.equal(r.responses.length, 1, `one response to id ${String(q.id)}`);
        const x = r.responses[0]!;
        return { id: x.id, operation: x.operation, status: x.status };
      };
      const image = () => fs.readFileSync(m.img);
      const page = async (i: number) => Buffer.from(await p.call<string>('page', { i }), 'hex');

      // A well-formed request first: the ring works, and nothing is refused.
      await p.call('fill', { i: 0, seed: 1 });
      const pattern = await page(0);
      await rej.expect(t, 'a well-formed write', m.devid, null, async () => {
        t.same(await one({ operation: BLKIF_OP_WRITE, id: 1, sector: 8, segs: [seg(ref(0))] }),
          { id: 1, operation: BLKIF_OP_WRITE, status: BLKIF_RSP_OKAY }, 'a well-formed write is OKAY');
      });
      t.ok(image().subarray(8 * 512, 16 * 512).equals(pattern), 'and lands in the image');

      const cases: Case[] = [
        ['a gref never granted', 'bad_gref', { operation: BLKIF_OP_READ, segs: [seg(9999)] }],
        ['a gref past the grant table', 'bad_gref', { operation: BLKIF_OP_READ, segs: [seg(1_000_000)] }],
        ['a gref granted to another domain', 'bad_gref',
          { operation: BLKIF_OP_READ, segs: [seg(await p.call<number>('grantOther', { domid: g.id }))] }],
        ['a disk read into a page granted read-only', 'readonly_gref', { operation: BLKIF_OP_READ, segs: [seg(info.ro.ref)] }],
        ['12 segments (BLKIF_MAX_SEGMENTS_PER_REQUEST is 11)', 'bad_nr_segments',
          { operation: BLKIF_OP_READ, nr_segments: 12, segs: Array.from({ length: 11 }, (_, i) => seg(ref(i))) }],
        ['255 segments', 'bad_nr_segments', { operation: BLKIF_OP_WRITE, nr_segments: 255, segs: [seg(ref(0))] }],
        ['no segment', 'bad_nr_segments', { operation: BLKIF_OP_READ, nr_segments: 0, segs: [] }],
        ['a flush with 12 segments', 'bad_nr_segments', { operation: BLKIF_OP_FLUSH_DISKCACHE, nr_segments: 12, segs: [seg(ref(0))] }],
        ['sectors past the end', 'sector_out_of_range', { operation: BLKIF_OP_READ, sector: sectors - 4, segs: [seg(ref(0))] }],
        ['a write past the end', 'sector_out_of_range', { operation: BLKIF_OP_WRITE, sector: sectors, segs: [seg(ref(0), 0, 0)] }],
        ['sector_number 2^64-1 (no wrap-around)', 'sector_out_of_range',
          { operation: BLKIF_OP_READ, sector: '18446744073709551615', segs: [seg(ref(0), 0, 0)] }],
        ['a discard past the end', 'sector_out_of_range', { operation: BLKIF_OP_DISCARD, sector: sectors - 8, nr_sectors: 16 }],
        ['a discard of no sector', 'sector_out_of_range', { operation: BLKIF_OP_DISCARD, sector: 0, nr_sectors: 0 }],
        ['first_sect > last_sect', 'bad_first_last_sect', { operation: BLKIF_OP_READ, segs: [seg(ref(0), 5, 2)] }],
        ['last_sect past the page', 'bad_first_last_sect', { operation: BLKIF_OP_READ, segs: [seg(ref(0), 0, 8)] }],
        ['last_sect 255', 'bad_first_last_sect', { operation: BLKIF_OP_WRITE, segs: [seg(ref(0), 4, 255)] }],
        ['a good segment then a bad gref', 'bad_gref', { operation: BLKIF_OP_WRITE, sector: 64, segs: [seg(ref(1)), seg(9999)] }],
        ['a good segment then bad sectors', 'bad_first_last_sect',
          { operation: BLKIF_OP_WRITE, sector: 64, segs: [seg(ref(1)), seg(ref(2), 7, 1)] }],
        ['BLKIF_OP_WRITE_BARRIER (not offered)', 'bad_operation', { operation: BLKIF_OP_WRITE_BARRIER, segs: [seg(ref(0))] }],
        ['BLKIF_OP_RESERVED_1', 'bad_operation', { operation: BLKIF_OP_RESERVED_1, segs: [seg(ref(0))] }],
        ['operation 200', 'bad_operation', { operation: 200, segs: [seg(ref(0))] }],
      ];
      if (m.persistent) {
        // Persistent grants are mapped writable (a page may carry a disk read later), as Linux does.
        cases.push(['a disk write from a page granted read-only (persistent grants map writable)', 'readonly_gref',
          { operation: BLKIF_OP_WRITE, sector: 32, segs: [seg(info.ro.ref)] }]);
      }
      const eopnotsupp = new Set<BlkifReject>(['bad_operation']);
      await p.call('fill', { i: 1, byte: 0xaa });
      const before = image();
      let id = 100;
      for (const [what, reason, q] of cases) {
        const r = await rej.expect(t, what, m.devid, reason, () => one({ sector: 0, id: ++id, ...q }));
        const status = eopnotsupp.has(reason) ? BLKIF_RSP_EOPNOTSUPP : BLKIF_RSP_ERROR;
        t.same(r, { id, operation: q.operation, status }, `${what}: ${status === BLKIF_RSP_ERROR ? 'BLKIF_RSP_ERROR' : 'BLKIF_RSP_EOPNOTSUPP'}`);
      }
      t.ok(image().equals(before), 'no failed request changed the image (no partial writes)');
      await untouched('the bad requests');
      if (!m.persistent) {
        // A read-only grant is enough for a disk write (blkback maps it read-only).
        await rej.expect(t, 'a disk write from a read-only grant', m.devid, null, async () => {
          t.same(await one({ operation: BLKIF_OP_WRITE, id: 200, sector: 32, segs: [seg(info.ro.ref)] }),
            { id: 200, operation: BLKIF_OP_WRITE, status: BLKIF_RSP_OKAY }, 'a disk write from a read-only grant is OKAY');
        });
        t.ok(image().subarray(32 * 512, 40 * 512).every((b) => b === 0x3c), 'with the read-only page\'s bytes');
      }

      // XSA-155: blkback pauses right after copying request 300 out of its
      // slot; the slot is rewritten whole (another id, a disk read into page
      // 11 from elsewhere) before it goes on. It must write page 10 where
      // first asked and answer with the first id; page 11 stays as it was.
      await p.call('fill', { i: 10, seed: 9 });
      await p.call('fill', { i: 11, byte: 0x11 });
      const want = await page(10);
      const from = 1024;
      const to = 2048;
      arm({ domid: evil, devid: m.devid, id: '300', at: 'request' });
      const { slot } = await p.call<{ slot: number }>('post', {
        devid: m.devid, reqs: [{ operation: BLKIF_OP_WRITE, id: 300, sector: from, segs: [seg(ref(10))] }] });
      t.same(await pausedAt(), { domid: evil, devid: m.devid, id: '300', at: 'request' }, 'XSA-155: blkback paused after copying the request');
      await p.call('rewriteSlot', { devid: m.devid, slot, req: { operation: BLKIF_OP_READ, id: 301, sector: to, segs: [seg(ref(11))] } });
      release();
      const rs = await p.call<{ responses: Rsp[] }>('collect', { devid: m.devid, n: 1 });
      t.same(rs.responses.map((x) => ({ id: x.id, operation: x.operation, status: x.status })),
        [{ id: 300, operation: BLKIF_OP_WRITE, status: BLKIF_RSP_OKAY }], 'XSA-155: the response is the copied request\'s');
      t.ok(image().subarray(from * 512, (from + 8) * 512).equals(want), 'XSA-155: the write is where it was first asked, with its data');
      t.ok((await page(11)).every((b) => b === 0x11), 'XSA-155: the rewritten slot\'s read into page 11 did not happen');
      await untouched('the rewritten request');

      // BLKIF_OP_INDIRECT: a good write then read back through one descriptor page.
      const indRef = (i: number) => info.ind[i]!.ref;
      const indirect = (q: Record<string, unknown>) => ({ operation: BLKIF_OP_INDIRECT, ...q });
      const segs16 = Array.from({ length: 16 }, (_, i) => seg(ref(i)));
      for (let i = 0; i < 16; i++) await p.call('fill', { i, seed: 40 + i });
      const pages16 = async () => Buffer.concat(await Promise.all(Array.from({ length: 16 }, (_, i) => page(i))));
      const written = await pages16();
      await p.call('descriptors', { i: 0, segs: segs16 });
      t.same(await one(indirect({ indirect_op: BLKIF_OP_WRITE, nr_segments: 16, id: 500, sector: 512, indirect_grefs: [indRef(0)] })),
        { id: 500, operation: BLKIF_OP_INDIRECT, status: BLKIF_RSP_OKAY }, 'indirect: a 16-segment write is OKAY');
      t.ok(image().subarray(512 * 512, 512 * 512 + 16 * PAGE).equals(written), 'indirect: and lands in the image, page after page');
      for (let i = 0; i < 16; i++) await p.call('fill', { i, byte: 0 });
      t.same(await one(indirect({ indirect_op: BLKIF_OP_READ, nr_segments: 16, id: 501, sector: 512, indirect_grefs: [indRef(0)] })),
        { id: 501, operation: BLKIF_OP_INDIRECT, status: BLKIF_RSP_OKAY }, 'indirect: the 16-segment read back is OKAY');
      t.ok((await pages16()).equals(written), 'indirect: and brings back what was written');
      // The advertised maximum, 256 segments (the 16 pages, 16 times over), is served.
      const segs256 = Array.from({ length: 256 }, (_, i) => seg(ref(i % 16)));
      await p.call('descriptors', { i: 0, segs: segs256 });
      t.same(await one(indirect({ indirect_op: BLKIF_OP_READ, nr_segments: 256, id: 502, sector: 0, indirect_grefs: [indRef(0)] })),
        { id: 502, operation: BLKIF_OP_INDIRECT, status: BLKIF_RSP_OKAY }, 'indirect: 256 segments (feature-max-indirect-segments) are served');

      // Bad indirect requests: each BLKIF_RSP_ERROR under its reason, nothing written.
      for (let i = 0; i < 16; i++) await p.call('fill', { i, seed: 60 + i });
      const roDesc = await p.call<number>('indGrant', { i: 1, readonly: true });
      await p.call('descriptors', { i: 1, segs: [seg(ref(4))] });
      const otherDesc = await p.call<number>('indGrant', { i: 2, domid: g.id });
      await p.call('descriptors', { i: 2, segs: [seg(ref(4))] });
      const indCases: [string, BlkifReject, Record<string, unknown>, RawSeg[]][] = [
        ['descriptor page gref never granted', 'bad_indirect_page',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 1, indirect_grefs: [9999] }, [seg(ref(4))]],
        ['descriptor page gref past the grant table', 'bad_indirect_page',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 1, indirect_grefs: [1_000_000] }, [seg(ref(4))]],
        ['descriptor page granted to another domain', 'bad_indirect_page',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 1, indirect_grefs: [otherDesc] }, [seg(ref(4))]],
        ['257 segments (feature-max-indirect-segments is 256)', 'bad_nr_segments',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 257, indirect_grefs: [indRef(0)] }, Array.from({ length: 257 }, (_, i) => seg(ref(i % 16)))],
        ['65535 segments', 'bad_nr_segments',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 65535, indirect_grefs: [indRef(0), indRef(0), indRef(0)] }, [seg(ref(4))]],
        ['no segment', 'bad_nr_segments', { indirect_op: BLKIF_OP_WRITE, nr_segments: 0, indirect_grefs: [indRef(0)] }, [seg(ref(4))]],
        ['indirect_op FLUSH_DISKCACHE', 'bad_indirect_op',
          { indirect_op: BLKIF_OP_FLUSH_DISKCACHE, nr_segments: 1, indirect_grefs: [indRef(0)] }, [seg(ref(4))]],
        ['indirect_op INDIRECT', 'bad_indirect_op', { indirect_op: BLKIF_OP_INDIRECT, nr_segments: 1, indirect_grefs: [indRef(0)] }, [seg(ref(4))]],
        ['good segments then a bad gref', 'bad_gref',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 3, indirect_grefs: [indRef(0)] }, [seg(ref(4)), seg(ref(5)), seg(9999)]],
        ['255 good segments then one past the grant table', 'bad_gref',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 256, indirect_grefs: [indRef(0)] },
          [...Array.from({ length: 255 }, (_, i) => seg(ref(i % 16))), seg(1_000_000)]],
        ['a segment granted to another domain', 'bad_gref',
          { indirect_op: BLKIF_OP_READ, nr_segments: 2, indirect_grefs: [indRef(0)] }, [seg(ref(4)), seg(otherDesc)]],
        ['a disk read into a page granted read-only', 'readonly_gref',
          { indirect_op: BLKIF_OP_READ, nr_segments: 2, indirect_grefs: [indRef(0)] }, [seg(ref(4)), seg(info.ro.ref)]],
        ['first_sect > last_sect', 'bad_first_last_sect',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 2, indirect_grefs: [indRef(0)] }, [seg(ref(4)), seg(ref(5), 5, 2)]],
        ['last_sect 8', 'bad_first_last_sect',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 2, indirect_grefs: [indRef(0)] }, [seg(ref(4)), seg(ref(5), 0, 8)]],
        ['last_sect 255 on the 200th segment', 'bad_first_last_sect',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 200, indirect_grefs: [indRef(0)] },
          Array.from({ length: 200 }, (_, i) => (i === 199 ? seg(ref(5), 0, 255) : seg(ref(i % 16))))],
        ['sectors past the end', 'sector_out_of_range',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 2, sector: sectors - 8, indirect_grefs: [indRef(0)] }, [seg(ref(4)), seg(ref(5))]],
        ['a read past the end', 'sector_out_of_range',
          { indirect_op: BLKIF_OP_READ, nr_segments: 1, sector: sectors - 4, indirect_grefs: [indRef(0)] }, [seg(ref(4))]],
        ['sector_number 2^64-1', 'sector_out_of_range',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 1, sector: '18446744073709551615', indirect_grefs: [indRef(0)] }, [seg(ref(4), 0, 0)]],
      ];
      if (m.persistent) {
        // Persistent grants are mapped writable (a page may carry a disk read later), as Linux does: refused.
        indCases.push(['descriptor page granted read-only (persistent grants map writable)', 'bad_indirect_page',
          { indirect_op: BLKIF_OP_WRITE, nr_segments: 1, indirect_grefs: [roDesc] }, []]);
      }
      const beforeInd = image();
      for (const [what, reason, q, descs] of indCases) {
        if (descs.length > 0) await p.call('descriptors', { i: 0, segs: descs });
        const r = await rej.expect(t, `indirect, ${what}`, m.devid, reason, () => one(indirect({ sector: 1536, id: ++id, ...q })));
        t.same(r, { id, operation: BLKIF_OP_INDIRECT, status: BLKIF_RSP_ERROR }, `indirect, ${what}: BLKIF_RSP_ERROR`);
      }
      t.ok(image().equals(beforeInd), 'indirect: no failed request changed the image (no partial writes)');
      await untouched('the bad indirect requests');
      if (!m.persistent) {
        // blkback only reads a descriptor page: a read-only grant of it is enough.
        t.same(await one(indirect({ indirect_op: BLKIF_OP_WRITE, nr_segments: 1, id: 600, sector: 1536, indirect_grefs: [roDesc] })),
          { id: 600, operation: BLKIF_OP_INDIRECT, status: BLKIF_RSP_OKAY }, 'indirect: a descriptor page granted read-only is enough');
        t.ok(image().subarray(1536 * 512, 1544 * 512).equals(await page(4)), 'with the data its descriptor names');
      }

      // XSA-155 for indirect requests. (1) blkback pauses after copying the
      // descriptor page of request 700 (a fresh grant: mapped for it; then
      // the same grant again: with persistent grants, already mapped, the
      // synchronous path); the page is rewritten to name another data page
      // and a bad one. (2) blkback pauses after copying the slot of request
      // 702; the slot is rewritten to name another descriptor page. Each time
      // the image must hold exactly the request as first copied.
      await p.call('fill', { i: 12, seed: 13 });
      await p.call('fill', { i: 13, byte: 0x13 });
      const want12 = await page(12);
      const desc3 = await p.call<number>('indGrant', { i: 3 });
      const rewritten = [seg(ref(13), 0, 3), seg(9999, 0, 200)];
      for (const [k, what] of [[0, 'a descriptor page mapped for the request'], [1, 'the same descriptor page again']] as const) {
        const at = 4096 + k * 16;
        await p.call('descriptors', { i: 3, segs: [seg(ref(12))] });
        arm({ domid: evil, devid: m.devid, id: String(700 + k), at: 'descriptors' });
        await p.call('post', { devid: m.devid, reqs: [indirect({ indirect_op: BLKIF_OP_WRITE, nr_segments: 1, id: 700 + k, sector: at, indirect_grefs: [desc3] })] });
        t.same(await pausedAt(), { domid: evil, devid: m.devid, id: String(700 + k), at: 'descriptors' },
          `indirect XSA-155, ${what}: blkback paused after copying the descriptors`);
        await p.call('descriptors', { i: 3, segs: rewritten });
        release();
        const r = await p.call<{ responses: Rsp[] }>('collect', { devid: m.devid, n: 1 });
        t.same(r.responses.map((x) => ({ id: x.id, operation: x.operation, status: x.status })),
          [{ id: 700 + k, operation: BLKIF_OP_INDIRECT, status: BLKIF_RSP_OKAY }], `indirect XSA-155, ${what}: OKAY, the copied request's`);
        t.ok(image().subarray(at * 512, (at + 8) * 512).equals(want12), `indirect XSA-155, ${what}: the image holds exactly the descriptors as copied`);
      }
      await p.call('descriptors', { i: 3, segs: [seg(ref(12))] });
      await p.call('descriptors', { i: 2, segs: [seg(ref(13))] });
      arm({ domid: evil, devid: m.devid, id: '702', at: 'request' });
      const s702 = await p.call<{ slot: number }>('post', {
        devid: m.devid, reqs: [indirect({ indirect_op: BLKIF_OP_WRITE, nr_segments: 1, id: 702, sector: 4128, indirect_grefs: [desc3] })] });
      t.same(await pausedAt(), { domid: evil, devid: m.devid, id: '702', at: 'request' }, 'indirect XSA-155, the slot: blkback paused after copying it');
      await p.call('rewriteSlot', { devid: m.devid, slot: s702.slot,
        req: indirect({ indirect_op: BLKIF_OP_WRITE, nr_segments: 1, id: 702, sector: 4136, indirect_grefs: [indRef(2)] }) });
      release();
      const r702 = await p.call<{ responses: Rsp[] }>('collect', { devid: m.devid, n: 1 });
      t.same(r702.responses.map((x) => x.status), [BLKIF_RSP_OKAY], 'indirect XSA-155, the slot: OKAY');
      t.ok(image().subarray(4128 * 512, 4136 * 512).equals(want12), 'indirect XSA-155, the slot: the write is the copied request\'s');
      t.ok(image().subarray(4136 * 512, 4144 * 512).every((b) => b === 0), 'indirect XSA-155, the slot: nothing where the rewrite pointed');
      await untouched('the rewritten descriptor pages');

      t.equal((await p.call('state', { devid: m.devid })).state, '4', 'the vbd stays Connected after error responses');
      await served(`the hostile requests on ${m.devid}`);
    });
  }

  // xvdc: a flood of bad requests, then a req_prod ahead of the ring.
  await t.test('a flood of bad requests is counted whole and logged within the limit', async (t) => {
    const devid = 51744;
    await p.call('connect', { devid, persistent: true });
    const log = join(h.rundir, 'logs', 'dom0.log');
    const size0 = fs.statSync(log).size;
    const batches = 4;
    const per = 30;
    let id = 5000;
    await rej.expect(t, `${batches * per} requests with no segment`, devid, 'bad_nr_segments', async () => {
      for (let b = 0; b < batches; b++) {
        const reqs = Array.from({ length: per }, () => ({ operation: BLKIF_OP_READ, id: ++id, sector: 0, nr_segments: 0, segs: [] }));
        const r = await p.call<{ responses: Rsp[] }>('submit', { devid, reqs });
        t.equal(r.responses.filter((x) => x.status === BLKIF_RSP_ERROR).length, per, `batch ${b}: ${per} errors`);
      }
    }, batches * per);
    const logged = fs.readFileSync(log).subarray(size0).toString().split('\n')
      .filter((l) => l.includes(`vbd d${evil}/${devid}: rejected`)).length;
    // A fresh device's first window logs LOG_BURST lines; a window may end during the flood (a loaded host): two.
    t.ok(logged >= LOG_BURST && logged <= 2 * LOG_BURST,
      `Domain-0 logged ${logged} of ${batches * per} rejections, each with its name (${LOG_BURST} lines per window)`);
  });

  await t.test('a read-only vbd refuses writes and discards by name', async (t) => {
    const devid = 51760; // xvdd, mode r
    const c = await p.call<{ sectors: number }>('connect', { devid, persistent: true });
    t.equal(c.sectors, sectors, 'connected');
    const before = fs.readFileSync(imgs[3]!);
    const submit = async (q: Record<string, unknown>) => (await p.call<{ responses: Rsp[] }>('submit', { devid, reqs: [q] })).responses.map((x) => x.status);
    const seg = { gref: info.data[0]!.ref, first_sect: 0, last_sect: 7 };
    t.same(await rej.expect(t, 'a write', devid, 'write_to_readonly', () => submit({ operation: BLKIF_OP_WRITE, id: 1, sector: 0, segs: [seg] })),
      [BLKIF_RSP_ERROR], 'a write: BLKIF_RSP_ERROR');
    t.same(await rej.expect(t, 'a flush carrying data', devid, 'write_to_readonly',
      () => submit({ operation: BLKIF_OP_FLUSH_DISKCACHE, id: 2, sector: 0, segs: [seg] })), [BLKIF_RSP_ERROR], 'a flush carrying data: BLKIF_RSP_ERROR');
    t.same(await rej.expect(t, 'a discard', devid, 'discard_unsupported',
      () => submit({ operation: BLKIF_OP_DISCARD, id: 3, sector: 0, nr_sectors: 8 })), [BLKIF_RSP_EOPNOTSUPP], 'a discard: BLKIF_RSP_EOPNOTSUPP');
    t.same(await rej.expect(t, 'a read', devid, null, () => submit({ operation: BLKIF_OP_READ, id: 4, sector: 0, segs: [seg] })),
      [BLKIF_RSP_OKAY], 'a read is served');
    t.ok(fs.readFileSync(imgs[3]!).equals(before), 'the image is unchanged');
  });

  await t.test('a ring-ref never granted: the vbd does not connect, by name', async (t) => {
    const devid = 51776; // xvde
    const c = await rej.expect(t, 'ring-ref 9999', devid, 'bad_ring_ref', () => p.call<{ state: number }>('connect', { devid, ringRef: 9999 }));
    t.equal(c.state, 6, 'the back end is Closed');
    t.match((await p.call('state', { devid })).error, /ring-ref 9999/, 'the error node says why');
    t.equal((await p.call('state', { devid: 51712 })).state, '4', 'the hostile domain\'s other vbds are still Connected');
  });

  await t.test('req_prod ahead of the ring disconnects that vbd alone', async (t) => {
    const devid = 51744; // connected by the flood above
    await rej.expect(t, 'req_prod 33 ahead', devid, 'req_prod_overflow', async () => {
      // One more than the ring holds (32 slots, none answered): RING_REQUEST_PROD_OVERFLOW.
      await p.call('reqProdAhead', { devid, by: 33 });
      await waitFor(async () => (await p.call('state', { devid })).state === '6', 15_000, 'xvdc Closed');
    });
    t.match((await p.call('state', { devid })).error, /bogus ring requests/, 'the error node says why');
    await untouched('req_prod ahead of the ring');
    t.equal((await p.call('state', { devid: 51712 })).state, '4', 'the hostile domain\'s other vbd is still Connected');
    const r = await p.call<{ responses: Rsp[] }>('submit', {
      devid: 51712, reqs: [{ operation: BLKIF_OP_READ, id: 400, sector: 8, segs: [{ gref: info.data[3]!.ref, first_sect: 0, last_sect: 7 }] }] });
    t.same(r.responses.map((x) => x.status), [BLKIF_RSP_OKAY], 'and still served');
    await served('req_prod ahead of the ring');
  });

  await xlOk(h, 'destroy', 'evil');
  await served('the hostile domain was destroyed');
});
