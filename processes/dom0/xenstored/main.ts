// `xenemu xenstored --socket PATH [--state DIR] [--shm-prefix P]`: the
// daemon alone, in the foreground, until SIGTERM or SIGINT.
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { shmOpen } from '../../../shared/shm.js';
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import { watchParent } from '../../../shared/runtime/lifeline.js';
import { Xenstored } from './index.js';

const { values } = parseArgs({
  options: {
    socket: { type: 'string' },
    state: { type: 'string' },
    'shm-prefix': { type: 'string' },
    'compact-bytes': { type: 'string' },
    'trace-file': { type: 'string', short: 'T' },
  },
  allowPositionals: false,
});

const socketPath = values.socket ?? process.env.XENSTORED_PATH;
if (!socketPath) {
  process.stderr.write('usage: xenemu xenstored --socket PATH [--state DIR] [--shm-prefix PREFIX]\n');
  process.exit(2);
}
const stateDir = values.state ?? join(dirname(socketPath), 'xenstored-state');
const prefix = values['shm-prefix'];

const xs = await Xenstored.start({
  socketPath,
  stateDir,
  ...(values['trace-file'] ? { traceFile: values['trace-file'] } : {}),
  ...(values['compact-bytes'] ? { compactBytes: Number(values['compact-bytes']) } : {}),
  // A guest's memory is the segment <prefix>dom<id>.mem; its ring is one page of it.
  ...(prefix ? { mapRing: (domid: number, mfn: number) => new Uint8Array(shmOpen(`${prefix}dom${domid}.mem`, PAGE_SIZE, mfn * PAGE_SIZE)) } : {}),
});
process.stdout.write(`xenstored: listening on ${socketPath}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void xs.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
watchParent(stop); // started by a supervisor: go when it goes
