// shared/abi/io/blkif.ts's codecs: what blkfront writes (the allocation-free
// writers) is what blkback and the object decoders read, field for field, in
// io/blkif.h's x86_64 layout (test/blk/peer.test.ts checks the offsets
// against libxen-dev's header with a C compiler).
import t from 'tap';
import {
  BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RING_ENTRY_SIZE, BLKIF_RSP_ERROR, blkif_request,
  blkif_request_segment, decodeRequest, decodeRequestIndirect, decodeResponse, decodeSegment, encodeRequest,
  encodeRequestIndirect, writeIndirectGref, writeRequestHead, writeRequestIndirectHead, writeResponse, writeSegment,
} from '../../shared/abi/io/blkif.js';

const slot = () => Buffer.alloc(BLKIF_RING_ENTRY_SIZE, 0xee);
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

t.test('writeRequestHead + writeSegment decode as decodeRequest reads them, and as encodeRequest writes', async (t) => {
  const cases = [
    { operation: BLKIF_OP_WRITE, nr: 2, handle: 51712, id: 31, sector: 8 },
    { operation: BLKIF_OP_READ, nr: 11, handle: 0xffff, id: 2 ** 53 - 1, sector: 2 ** 40 + 7 },
  ];
  for (const c of cases) {
    const a = slot();
    writeRequestHead(view(a), 0, c.operation, c.nr, c.handle, c.id, c.sector);
    const seg = Array.from({ length: c.nr }, (_, i) => ({ gref: 1000 + i, first_sect: i % 8, last_sect: 7 }));
    seg.forEach((s, i) => writeSegment(view(a), blkif_request.seg + i * blkif_request_segment.SIZE, s.gref, s.first_sect, s.last_sect));
    t.same(decodeRequest(a), {
      operation: c.operation, nr_segments: c.nr, handle: c.handle, id: BigInt(c.id), sector_number: BigInt(c.sector), seg,
    }, `op ${c.operation}, ${c.nr} segments, id ${c.id}, sector ${c.sector}`);
    const b = slot();
    encodeRequest(b, { operation: c.operation, nr_segments: c.nr, handle: c.handle, id: BigInt(c.id), sector_number: BigInt(c.sector), seg });
    const used = blkif_request.seg + c.nr * blkif_request_segment.SIZE;
    t.ok(a.subarray(0, used).equals(b.subarray(0, used)), 'encodeRequest writes the same bytes (padding zeroed)');
  }
  const big = slot();
  writeRequestHead(view(big), 0, BLKIF_OP_READ, 1, 0, 0xfedcba9876543210n, 2n ** 64n - 1n);
  const r = decodeRequest(big);
  t.equal(r.id, 0xfedcba9876543210n, 'a bigint id: all 64 bits');
  t.equal(r.sector_number, 2n ** 64n - 1n, 'a bigint sector: all 64 bits');
  const s = slot();
  writeSegment(view(s), 0, 0xffffffff, 3, 5);
  t.same(decodeSegment(view(s), 0), { gref: 0xffffffff, first_sect: 3, last_sect: 5 }, 'a segment, gref as u32');
  t.same([...s.subarray(6, 8)], [0, 0], 'its padding zeroed');
});

t.test('the indirect writers against decodeRequestIndirect and encodeRequestIndirect', async (t) => {
  const a = slot();
  writeRequestIndirectHead(view(a), 0, BLKIF_OP_WRITE, 256, 51728, 17, 2 ** 33);
  const grefs = [4242, 0, 0, 0, 0, 0, 0, 77];
  grefs.forEach((g, i) => writeIndirectGref(view(a), 0, i, g));
  const want = {
    operation: BLKIF_OP_INDIRECT, indirect_op: BLKIF_OP_WRITE, nr_segments: 256, id: 17n, sector_number: 2n ** 33n,
    handle: 51728, indirect_grefs: grefs,
  };
  const b = slot();
  encodeRequestIndirect(b, want);
  t.ok(a.subarray(0, 64).equals(b.subarray(0, 64)), 'the same 64 bytes');
  t.same(decodeRequestIndirect(a), want, 'decoded field for field');
});

t.test('writeResponse echoes the id halves; decodeResponse reads them', async (t) => {
  const a = slot();
  writeResponse(view(a), 0, 0x76543210, 0xfedcba98, BLKIF_OP_INDIRECT, BLKIF_RSP_ERROR);
  t.same(decodeResponse(a), { id: 0xfedcba9876543210n, operation: BLKIF_OP_INDIRECT, status: BLKIF_RSP_ERROR });
  t.same([a[9], ...a.subarray(12, 16)], [0, 0, 0, 0, 0], 'padding zeroed');
});
