// Ordered sends on one ZeroMQ socket from many callers.
//
// zeromq.js allows only one send() in flight per socket (EBUSY otherwise), yet
// a hypervisor emits replies and upcalls from many handlers and a domain fires
// notifications without waiting. The outbox serialises them: messages go out
// in call order, and a muted peer (paused domain, full queue) only delays its
// own socket.
import type * as zmq from 'zeromq';

export class ZmqOutbox {
  private readonly queue: Buffer[] = [];
  private pumping = false;
  private closed = false;

  constructor(private readonly sock: zmq.Socket & { send(msg: Buffer): Promise<void> },
              private readonly onError: (err: unknown) => void = () => {}) {}

  send(msg: Buffer): void {
    if (this.closed) return;
    this.queue.push(msg);
    if (!this.pumping) void this.pump();
  }

  get pending(): number { return this.queue.length; }

  close(): void { this.closed = true; this.queue.length = 0; }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const msg = this.queue.shift()!;
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
