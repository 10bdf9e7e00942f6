// The worker thread that sleeps on a BAR channel's doorbell (a futex,
// shared/hw/bar_channel.ts) for the device process's event loop, which
// cannot block: when a request is posted it tells the loop and waits until
// the loop has answered everything and spun a little for more (`busy`).
//
//   loop: seen = doorbell; dev_sleeping = 1; any slot READY? else futex-wait(doorbell, seen)
//         dev_sleeping = 0; busy = 1; post 'kick'; wait while busy (the loop clears it)
import { parentPort, workerData } from 'node:worker_threads';
import { futexWait, shmOpen } from '../../shared/shm.js';
import { BAR_MAX_SLOTS, BAR_SEGMENT_SIZE, bar_channel, barSlotOffset } from '../../shared/hw/bar_channel.js';
import { IOREQ_STATE_WORD, STATE_IOREQ_READY } from '../../shared/abi/hvm/ioreq.js';

const { segment, busy } = workerData as { segment: string; busy: SharedArrayBuffer };
const seg = shmOpen(segment, BAR_SEGMENT_SIZE);
const i32 = new Int32Array(seg);
const flag = new Int32Array(busy);
const door = bar_channel.doorbell >> 2;
const sleeping = bar_channel.dev_sleeping >> 2;

function anyReady(): boolean {
  for (let s = 0; s < BAR_MAX_SLOTS; s++) {
    if (((Atomics.load(i32, (barSlotOffset(s) + IOREQ_STATE_WORD) >> 2) >>> 16) & 0xf) === STATE_IOREQ_READY) return true;
  }
  return false;
}

for (;;) {
  if (Atomics.load(flag, 1)) break; // the loop is closing
  const seen = Atomics.load(i32, door);
  Atomics.store(i32, sleeping, 1);
  if (!anyReady()) futexWait(seg, bar_channel.doorbell, seen, 500);
  Atomics.store(i32, sleeping, 0);
  if (!anyReady()) continue;
  Atomics.store(flag, 0, 1);
  parentPort!.postMessage(0);
  while (Atomics.load(flag, 0) === 1 && !Atomics.load(flag, 1)) Atomics.wait(flag, 0, 1, 500);
}
