// Ordered sends on one ZeroMQ socket from many callers.
//
// zeromq.js allows only one send() in flight per socket (EBUSY otherwise), yet
// a hypervisor emits replies and upcalls from many handlers and a domain fires
// notifications without waiting. The outbox serialises them: messages go out
// in call order, and a muted peer (paused domain, full queue) only delays its
// own socket.
//
// The queue is an array with a moving head, compacted now and then:
// Array.shift() is O(n) on a long array, which made a burst of 200,000
// fire-and-forget notifications quadratic (11,000/s instead of 50,000+).
import type * as zmq from 'zeromq';

export class ZmqOutbox {
  private queue: Buffer[] = [];
  private head = 0;
  private pumping = false;
  private closed = false;

  constructor(private readonly sock: zmq.Socket & { send(msg: Buffer): Promise<void> },
              private readonly onError: (err: unknown) => void = () => {}) {}

  send(msg: Buffer): void {
    if (this.closed) return;
    this.queue.push(msg);
    if (!this.pumping) void this.pump();
  }

  get pending(): number { return this.queue.length - this.head; }

  close(): void { this.closed = true; this.queue = []; this.head = 0; }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.head < this.queue.length && !this.closed) {
        const msg = this.queue[this.head]!;
        this.queue[this.head++] = undefined as unknown as Buffer; // let it be collected
        if (this.head === this.queue.length) { this.queue.length = 0; this.head = 0; }
        else if (this.head >= 1024 && this.head * 2 >= this.queue.length) { this.queue = this.queue.slice(this.head); this.head = 0; }
        try {
          await this.sock.send(msg);
        } catch (err) {
          if (this.closed) return;
          this.onError(err);
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
