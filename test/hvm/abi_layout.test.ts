// shared/abi/hvm/ against libxen-dev's headers: a C program built at test
// time prints the layouts of ioreq_t (bit-fields included), buf_ioreq_t,
// buffered_iopage_t and struct hvm_info_table, and ours must match byte for
// byte.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { DIST } from '../helpers/host.js';
import { ccBuild, ccMissing } from '../helpers/cc.js';
import * as R from '../../shared/abi/hvm/ioreq.js';
import * as H from '../../shared/abi/hvm/hvm_info_table.js';

const SRC = join(DIST, '..', 'test', 'hvm', 'c', 'hvm_layout.c');

t.test('ioreq.h and hvm_info_table.h layouts match the C headers', { skip: ccMissing(['xen/hvm/ioreq.h']) ?? false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-cc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, 'hvm_layout');
  if (!ccBuild(t, SRC, exe, ['-I/usr/include'])) return;
  const c = JSON.parse(spawnSync(exe, { encoding: 'utf8' }).stdout) as Record<string, number | number[]>;
  t.equal(c.ioreq_size, R.IOREQ_SIZE, 'sizeof(ioreq_t)');
  for (const k of ['addr', 'data', 'count', 'size', 'vp_eport', 'type'] as const) t.equal(c[k], R.ioreq[k], `ioreq_t.${k}`);
  const ours = (bits: number) => { const b = new Array(32).fill(0); b[R.ioreq.bits] = bits; return b; };
  t.same(c.state3, ours(R.ioreqBits(R.STATE_IORESP_READY, false, 0, false)), 'state: bits 0-3 of the byte at 30');
  t.same(c.dataIsPtr, ours(R.ioreqBits(0, true, 0, false)), 'data_is_ptr: bit 4');
  t.same(c.dirRead, ours(R.ioreqBits(0, false, R.IOREQ_READ, false)), 'dir: bit 5');
  t.same(c.df, ours(R.ioreqBits(0, false, 0, true)), 'df: bit 6');
  const w = R.bufIoreqWord(R.IOREQ_TYPE_COPY, 1, 4, 0xb8123);
  t.same(c.bufIoreq, [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24, 0x44, 0x33, 0x22, 0x11], 'buf_ioreq_t: type, dir, size, addr:20, data');
  t.same(R.decodeBufIoreq(new DataView(Uint8Array.from(c.bufIoreq as number[]).buffer), 0),
    { type: R.IOREQ_TYPE_COPY, dir: 1, size: 4, addr: 0xb8123, data: 0x11223344 }, 'and decodes back');
  t.equal(c.buf_ioreq_size, R.BUF_IOREQ_SIZE);
  t.equal(c.buf_ioreq, R.buffered_iopage.buf_ioreq, 'buffered_iopage_t.buf_ioreq');
  t.equal(c.slot_num, R.IOREQ_BUFFER_SLOT_NUM);
  t.ok((c.buffered_iopage_size as number) <= 4096, 'buffered_iopage_t fits a page');
  t.equal(c.hvm_info_size, H.HVM_INFO_TABLE_SIZE, 'sizeof(struct hvm_info_table)');
  t.same([c.hi_length, c.hi_checksum, c.hi_apic_mode, c.hi_nr_vcpus, c.hi_low_mem_pgend, c.hi_reserved_mem_pgstart, c.hi_high_mem_pgend, c.hi_vcpu_online],
    [H.hvm_info_table.length, H.hvm_info_table.checksum, H.hvm_info_table.apic_mode, H.hvm_info_table.nr_vcpus,
      H.hvm_info_table.low_mem_pgend, H.hvm_info_table.reserved_mem_pgstart, H.hvm_info_table.high_mem_pgend,
      H.hvm_info_table.vcpu_online], 'struct hvm_info_table field offsets');
  t.equal(c.HVM_INFO_PADDR, H.HVM_INFO_PADDR);
});
