// A `rep movs` out of MMIO into RAM (how SeaBIOS copies an option ROM out of
// its BAR) goes to the device model as one ioreq per page-bounded run of
// elements (count, data_is_ptr), as Xen's hvmemul_rep_movs sends it, not one
// per element: real v86 running real x86 code (test/hvm/asm/movs_bios.asm),
// the domain's IoRouter and IoreqClient, and qemu-dm's IoreqServerPages on
// another thread, over shared memory as between the two processes.
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import { XEN_DMOP_IO_RANGE_MEMORY } from '../../shared/abi/hvm/dm_op.js';
import { XENEMU_HVM_SEGMENT_PAGES, writeRanges } from '../../shared/abi/hvm/xenemu_hvm.js';
import { futexWait, shmCreate, shmUnlink } from '../../shared/shm.js';
import { V86Machine } from '../../processes/domu/hvm/v86.js';
import { IoreqClient } from '../../processes/domu/hvm/ioreq.js';
import { IoRouter } from '../../processes/domu/hvm/io_router.js';
import { nasmBuild, nasmMissing } from '../helpers/nasm.js';

const DIST = join(fileURLToPath(import.meta.url), '..', '..', '..');
const ASM = join(DIST, '..', 'test', 'hvm', 'asm', 'movs_bios.asm');
const RAM = 2 << 20;

/** The device model's MMIO: byte x of the address space reads as pattern(x), whatever the access size. */
const SERVER = `
const { workerData, parentPort } = require('node:worker_threads');
(async () => {
  const { IoreqServerPages } = await import(workerData.server);
  const { DmGuestMemory } = await import(workerData.memory);
  const { shmOpen } = await import(workerData.shm);
  const pattern = (x) => (x * 7 + 3) & 0xff;
  let reads = 0;
  const server = new IoreqServerPages(workerData.hvm, 0, 1, {
    pio: () => 0xffffffff,
    pciConfig: () => 0xffffffff,
    mmio: (dir, addr, size) => {
      if (dir !== 1) return 0;
      reads++;
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + pattern(addr + i);
      return v;
    },
  }, new DmGuestMemory(shmOpen(workerData.mem, workerData.ram), workerData.ram, workerData.hvm));
  const stop = new Int32Array(workerData.stop);
  parentPort.postMessage('ready');
  while (!Atomics.load(stop, 0)) if (server.serve() === 0) server.wait(20);
  parentPort.postMessage({ stats: server.stats, reads });
})();
`;

const pattern = (x: number) => (x * 7 + 3) & 0xff;

t.test('rep movs from MMIO: one ioreq per page-bounded run, the elements in RAM', { skip: nasmMissing() ?? false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-repmovs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bios = nasmBuild(t, ASM, join(dir, 'movs_bios.bin'));
  if (!bios) return;
  const memName = `/xenemu.test.repmovs.${process.pid}`;
  const memSab = shmCreate(memName, RAM);
  t.teardown(() => { shmUnlink(memName); });
  // The firmware where the builder leaves it: ending at 1 MiB.
  new Uint8Array(memSab).set(bios, 0x100000 - bios.length);
  const hvm = new SharedArrayBuffer(XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE);
  writeRanges(new Int32Array(hvm), new DataView(hvm), [{ server: 0, type: XEN_DMOP_IO_RANGE_MEMORY, start: 0xa0000n, end: 0xbffffn }]);
  const stop = new SharedArrayBuffer(4);
  const url = (p: string) => pathToFileURL(join(DIST, p)).href;
  const worker = new Worker(SERVER, {
    eval: true,
    workerData: {
      hvm, stop, mem: memName, ram: RAM,
      server: url('processes/qemu-dm/ioreq_server.js'), memory: url('processes/qemu-dm/guest_memory.js'), shm: url('shared/shm.js'),
    },
  });
  const result = new Promise<{ stats: { sync: number; rep: number; bad: number }; reads: number }>((res, rej) => {
    worker.on('message', (m) => { if (m !== 'ready') res(m); });
    worker.on('error', rej);
  });
  await new Promise<void>((res) => worker.once('message', () => res()));

  const m = await V86Machine.create({ ramBytes: RAM, memSegment: memName, bios, apic: false, onReset: () => {} });
  t.teardown(() => m.destroy());
  const io = new IoreqClient(hvm, 0, (sab, off, expected, ms) => { futexWait(sab, off, expected, ms); });
  new IoRouter(m, io, new Int32Array(hvm), hvm, new Map());
  const deadline = Date.now() + 20_000;
  while (!m.halted && Date.now() < deadline) {
    m.run();
    await new Promise<void>((res) => setImmediate(res));
  }
  Atomics.store(new Int32Array(stop), 0, 1);
  const r = await result;
  await worker.terminate();
  t.ok(m.halted, 'the firmware ran its copies and halted');

  const ram = new Uint8Array(memSab);
  const expect = (src: number, n: number) => Array.from({ length: n }, (_, i) => pattern(src + i));
  t.same([...ram.subarray(0x10000, 0x11000)], expect(0xa0000, 0x1000), 'copy 1: 4 KiB out of the VGA window, in order');
  t.same([...ram.subarray(0x20000, 0x20040)], expect(0xa0ff0, 0x40), 'copy 2: 64 bytes across a source page boundary');
  t.same([...ram.subarray(0x30001, 0x3000b)], expect(0xa0100, 10), 'copy 3: rep movsb, 10 bytes to an odd address');
  t.equal(r.stats.bad, 0, 'no request refused');
  // Copy 1 is one run of 1024; copy 2 two (4 dwords to the page's end,
  // then 12); copy 3 one of 10: four ioreqs for 1,050 elements.
  t.equal(r.stats.rep, 4, 'four ioreqs with a count, one per page-bounded run');
  t.equal(r.stats.sync, 4, 'and no ioreq per element');
  t.equal(r.reads, 1024 + 16 + 10, 'the device model read every element once');
  t.same(io.stats.sync, 4, 'the vCPU sent four');
});
