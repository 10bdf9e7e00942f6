// shared/hw/snapshot.ts: a device's fields as data and back into a fresh
// device, leaving out what is the process's own (the machine's objects,
// shared memory, timer handles, methods).
import t from 'tap';
import { SnapBuffers, restore, snapshot } from '../../shared/hw/snapshot.js';

class Channel { status = 0x50; lba = 0; buffer = new Uint8Array(8); }

class Device {
  regs = new Uint32Array(4);
  name = 'dev';
  enabled = false;
  channels = [new Channel(), new Channel()];
  pending: { lba: number; count: number } | null = null;
  region: { base: number; unregister(): void } | null = null;
  txTimer: number | null = null;
  ram: Uint8Array;
  routes = new Map<number, number>();
  constructor(readonly machine: { clock: number }, shared: SharedArrayBuffer) { this.ram = new Uint8Array(shared); }
  get busy(): boolean { return this.pending !== null; }
}

t.test('a device snapshot restores into a fresh device', (t) => {
  const machine = { clock: 1 };
  const shared = new SharedArrayBuffer(16);
  const a = new Device(machine, shared);
  a.regs.set([1, 2, 3, 0xffffffff]);
  a.enabled = true;
  a.channels[1]!.status = 0x58;
  a.channels[1]!.buffer[3] = 9;
  a.pending = { lba: 100, count: 2 };
  a.region = { base: 0x1f0, unregister: () => {} };
  a.txTimer = 7;
  a.routes.set(1, 11);
  const bufs = new SnapBuffers();
  const skip = new Set<object>([machine]);
  const snap = JSON.parse(JSON.stringify(snapshot(a, { skip }, bufs))) as ReturnType<typeof snapshot>;

  const machine2 = { clock: 2 };
  const b = new Device(machine2, new SharedArrayBuffer(16));
  b.ram[0] = 5;
  restore(b, snap, { skip: new Set<object>([machine2]) }, bufs.list);
  t.same([...b.regs], [1, 2, 3, 0xffffffff], 'typed arrays copied into the new device');
  t.equal(b.enabled, true, 'primitives');
  t.equal(b.channels[1]!.status, 0x58, 'into the objects the new device made');
  t.equal(b.channels[1]!.buffer[3], 9, "and their buffers");
  t.ok(b.channels[0] instanceof Channel && b.channels[1] instanceof Channel, 'which stay its own instances');
  t.same(b.pending, { lba: 100, count: 2 }, 'an object of data is made again');
  t.equal(b.busy, true, 'getters left alone, computed from the restored fields');
  t.equal(b.region, null, 'an object with methods is the new process\'s to make');
  t.equal(b.txTimer, null, 'timer handles are not carried');
  t.equal(b.machine, machine2, 'skipped objects stay the new process\'s');
  t.equal(b.ram[0], 5, 'shared memory is neither saved nor written');
  t.same([...b.routes], [[1, 11]], 'Maps of data');
  t.end();
});
