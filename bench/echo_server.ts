// `node dist/bench/echo_server.js --socket PATH`: the baseline of the
// xenstored benchmark. It sends every byte it receives straight back on a
// Unix socket and does nothing else, so a request/response through it costs
// one Node.js round trip (event loop wake-up, read, write) and no xenstore
// work: the floor under any xs_wire request that one Node process answers.
import { createServer } from 'node:net';
import { unlinkSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { watchParent } from '../shared/runtime/lifeline.js';

const { values } = parseArgs({ options: { socket: { type: 'string' } } });
const path = values.socket;
if (!path) {
  process.stderr.write('usage: node dist/bench/echo_server.js --socket PATH\n');
  process.exit(2);
}

const server = createServer((sock) => {
  sock.on('data', (chunk: Buffer) => sock.write(chunk));
  sock.on('error', () => undefined);
});
server.listen(path, () => process.stdout.write(`echo: listening on ${path}\n`));

const stop = (): void => {
  server.close();
  try { unlinkSync(path); } catch { /* already gone */ }
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
watchParent(stop);
