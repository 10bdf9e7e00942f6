// Tests drive a guest's shell as the benchmarks do, with launcher/pty_client.ts.
export { PtyClient } from '../../launcher/pty_client.js';
