// The console frontend (Mini-OS console/xencons_ring.c, Linux hvc_xen.c):
// output goes into the `out` ring of the console page the builder put at
// start_info.console.domU.mfn, input comes from `in`; both sides kick each
// other through start_info.console.domU.evtchn.
//
// Output that does not fit waits in a queue and goes out when the backend
// signals it consumed some: the guest never spins on a full ring. The queue
// is bounded (the oldest bytes go first), so a guest without a console
// backend cannot grow without end.
import { XenconsInterface } from '../abi/io/console.js';
import type { EventChannels } from '../xen/index.js';

const MAX_QUEUED = 256 * 1024;

export class ConsoleFrontend {
  private readonly ring: XenconsInterface;
  private queue: Buffer[] = [];
  private queued = 0;
  private inputCb: (data: Uint8Array) => void = () => {};
  private drainWaiters: (() => void)[] = [];
  /** Bytes dropped because the queue was full. */
  dropped = 0;
  broken = false;

  constructor(page: Uint8Array, private readonly evtchn: EventChannels, readonly port: number) {
    this.ring = new XenconsInterface(page);
    evtchn.on(port, () => this.onEvent());
  }

  onInput(cb: (data: Uint8Array) => void): void { this.inputCb = cb; }

  /** Writes text as a tty with ONLCR would: every \n becomes \r\n. */
  write(text: string): void {
    this.writeBytes(Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'utf8'));
  }

  writeBytes(b: Buffer): void {
    if (b.length === 0) return;
    this.queue.push(b);
    this.queued += b.length;
    while (this.queued > MAX_QUEUED && this.queue.length > 1) {
      const old = this.queue.shift()!;
      this.queued -= old.length;
      this.dropped += old.length;
    }
    this.flush();
  }

  /** Bytes still waiting for room in the ring. */
  get pending(): number { return this.queued; }

  /** Resolves once everything queued is in the ring (or after timeoutMs). */
  drain(timeoutMs = 1000): Promise<void> {
    if (this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.drainWaiters.push(() => { clearTimeout(timer); resolve(); });
    });
  }

  private flush(): void {
    let wrote = false;
    while (this.queue.length && !this.broken) {
      const head = this.queue[0]!;
      const n = this.ring.writeOut(head);
      if (n < 0) { this.broken = true; break; } // the backend broke the indices
      if (n > 0) wrote = true;
      this.queued -= n;
      if (n === head.length) this.queue.shift();
      else { this.queue[0] = head.subarray(n); break; }
    }
    if (wrote) this.evtchn.notify(this.port);
    if (this.queued === 0 && this.drainWaiters.length) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  private onEvent(): void {
    const r = this.ring.readIn();
    if (r.ok && r.data.length > 0) {
      this.evtchn.notify(this.port); // room in `in` again: the backend may write more
      this.inputCb(r.data);
    }
    this.flush();
  }
}
