// qemu-dm's answer to a `rep ins` ioreq (count, data_is_ptr; how firmware
// reads a disk by PIO): the elements land in guest memory in order (and
// backwards with df), as one block with one entry in the modified-memory
// ring, so that a 2 KiB sector cannot overflow the ring and cost the vCPU
// every translated page; a block partly outside RAM writes the elements
// before the first that is not.
import t, { type Test } from 'tap';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import {
  IOREQ_READ, IOREQ_STATE_WORD, IOREQ_TYPE_PIO, STATE_IOREQ_READY, STATE_IORESP_READY, encodeIoreqBody, ioreqBits, sharedIopageSlot,
} from '../../shared/abi/hvm/ioreq.js';
import { XENEMU_HVM_SEGMENT_PAGES, drainModified, ioreqPageOffset } from '../../shared/abi/hvm/xenemu_hvm.js';
import { IoreqServerPages } from '../../processes/qemu-dm/ioreq_server.js';
import { DmGuestMemory } from '../../processes/qemu-dm/guest_memory.js';

const RAM = 16 * PAGE_SIZE;

function setup(t: Test) {
  const hvm = new SharedArrayBuffer(XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE);
  const ram = new SharedArrayBuffer(RAM);
  let next = 0x100;
  const server = new IoreqServerPages(hvm, 0, 1, {
    pio: (_dir, port, size) => (port === 0x170 && size === 2 ? next++ : 0xffff),
    mmio: () => 0, pciConfig: () => 0,
  }, new DmGuestMemory(ram, RAM, hvm));
  const dv = new DataView(hvm);
  const i32 = new Int32Array(hvm);
  /** One rep insw of `count` words from port 0x170 to `dest`; returns the modified-ring entries it left. */
  const repInsw = (dest: number, count: number, df = false): Array<[number, number]> => {
    const at = ioreqPageOffset(0) + sharedIopageSlot(0);
    encodeIoreqBody(dv, at, { addr: 0x170n, data: BigInt(dest), count, size: 2, vp_eport: 0, data_is_ptr: true, dir: IOREQ_READ, df, type: IOREQ_TYPE_PIO });
    Atomics.store(i32, (at + IOREQ_STATE_WORD) >> 2, (ioreqBits(STATE_IOREQ_READY, true, IOREQ_READ, df) << 16) | (IOREQ_TYPE_PIO << 24));
    t.equal(server.serve(), 1, 'one request served');
    t.equal((Atomics.load(i32, (at + IOREQ_STATE_WORD) >> 2) >>> 16) & 0xf, STATE_IORESP_READY, 'answered');
    const entries: Array<[number, number]> = [];
    drainModified(i32, dv, (pfn, n) => entries.push([pfn, n]), () => entries.push([-1, -1]));
    return entries;
  };
  return { server, words: new Uint16Array(ram), repInsw };
}

t.test('a sector by rep insw: the words in order, one ring entry', async (t) => {
  const { words, repInsw } = setup(t);
  t.same(repInsw(2 * PAGE_SIZE, 1024), [[2, 1]], 'one entry for the 2 KiB block');
  const got = words.subarray(PAGE_SIZE, PAGE_SIZE + 1024);
  t.ok(got.every((w, i) => w === 0x100 + i), 'word i is the port\'s i-th read');
  t.same(repInsw(3 * PAGE_SIZE - 1024, 1024), [[2, 2]], 'a block across a page boundary: one entry of two frames');
});

t.test('rep insw with DF set fills downwards from data', async (t) => {
  const { words, repInsw } = setup(t);
  t.same(repInsw(0x3006, 4, true), [[3, 1]]);
  t.same([...words.subarray(0x3000 / 2, 0x3008 / 2)], [0x103, 0x102, 0x101, 0x100], 'the first read at data, the next below it');
});

t.test('a block partly outside RAM: the elements up to the first outside', async (t) => {
  const { server, words, repInsw } = setup(t);
  repInsw(RAM - 4, 4);
  t.same([...words.subarray(RAM / 2 - 2)], [0x100, 0x101], 'the two words inside RAM');
  t.equal(server.stats.bad, 1, 'the failure counted');
});
