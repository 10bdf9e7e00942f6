// The owner's wake-up line for posted interrupts (docs/passthrough.md
// "Posted interrupts"): <rundir>/pci/<bdf>.irq, a unix stream socket of the
// device process. The owner's kernel connects and writes its BAR channel key
// (u32 LE, from XENEMU_PHYSDEVOP_pci_bar_channel); the device keeps the one
// connection whose key is its owner's and drops it at every change of owner.
// When a posted MSI moves the owner's upcall_pending from 0 to 1 the device
// writes one byte (the vCPU) on it, which the owner's event loop takes as the
// hypervisor's `upcall` message: the scan of its shared_info.
//
//   owner kernel                     device process
//   connect, key ──────────────────> the owner's key? keep : close
//                 <───── one byte ── MSI posted, upcall_pending 0 -> 1
//   scan shared_info (evtchn.ts)
//   BAR request, dev_sleeping:
//     one byte ────────────────────> the event loop serves the BAR channel (device.ts)
//
// The second direction is the BAR channel's doorbell for an owner on the
// line: the device's event loop, which libuv wakes for the byte, serves the
// request itself, where the futex doorbell wakes the doorbell thread, which
// then wakes the loop (two threads woken instead of one).
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, unlinkSync } from 'node:fs';
import { EAGAIN, sendNow, socketFd } from '../../shared/sockio.js';

/** Bytes of the hello: the key. */
const HELLO = 4;

export class IrqSocket {
  private readonly server: Server;
  private readonly conns = new Set<Socket>();
  private owner: { sock: Socket; fd: number } | null = null;
  private key = 0;
  private readonly one = Buffer.alloc(1);

  /** The owner rang: serve the BAR channel. */
  onDoorbell: () => void = () => {};

  constructor(private readonly path: string, private readonly log: (m: string) => void) {
    this.server = createServer((s) => this.serve(s));
  }

  async listen(): Promise<void> {
    try { unlinkSync(this.path); } catch { /* not there */ }
    await new Promise<void>((res, rej) => { this.server.once('error', rej); this.server.listen(this.path, () => res()); });
    chmodSync(this.path, 0o600);
  }

  /** A new owner's key (0: none): the former owner's line is cut. */
  setKey(key: number): void {
    this.key = key >>> 0;
    if (this.owner) { this.owner.sock.destroy(); this.owner = null; }
  }

  /** Whether the owner is listening. */
  get connected(): boolean { return this.owner !== null; }

  /** Wakes the owner's vCPU `vcpu`; false when the line is gone (the caller asks the hypervisor instead). */
  kick(vcpu: number): boolean {
    const o = this.owner;
    if (!o) return false;
    this.one[0] = vcpu;
    const r = sendNow(o.fd, this.one);
    if (r > 0 || r === EAGAIN) return true; // EAGAIN: bytes not read yet, so a wake-up is pending anyway
    o.sock.destroy();
    this.owner = null;
    return false;
  }

  private serve(s: Socket): void {
    this.conns.add(s);
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      if (got.length >= HELLO) { if (this.owner?.sock === s) this.onDoorbell(); return; }
      got = Buffer.concat([got, d]);
      if (got.length < HELLO) return;
      const fd = socketFd(s);
      if (this.key === 0 || got.readUInt32LE(0) !== this.key || fd < 0) { s.destroy(); return; }
      if (this.owner) this.owner.sock.destroy();
      this.owner = { sock: s, fd };
      this.log('posted interrupts: the owner is listening');
      if (got.length > HELLO) this.onDoorbell();
    });
    s.on('error', () => { /* the peer went */ });
    s.on('close', () => {
      this.conns.delete(s);
      if (this.owner?.sock === s) this.owner = null;
    });
  }

  close(): void {
    for (const s of this.conns) s.destroy();
    this.server.close();
    try { unlinkSync(this.path); } catch { /* gone */ }
  }
}
