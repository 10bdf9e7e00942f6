// One ZeroMQ PAIR socket per domain, bound by the hypervisor
// (shared/wire/hypercall.ts). The socket is the domain's identity: whatever
// arrives on dom<N>.hypercall is from domain N.
import * as zmq from 'zeromq';
import { unlinkSync } from 'node:fs';
import { decodeToHypervisor, encodeMessage, hypercallEndpoint,
         type DomainToHypervisor, type HypervisorToDomain } from '../../shared/wire/hypercall.js';
import { ZmqOutbox } from '../../shared/runtime/zmq_outbox.js';

const UPCALLS: Buffer[] = [];

export class DomainChannel {
  readonly endpoint: string;
  private readonly sock = new zmq.Pair({ linger: 0, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
  private readonly outbox: ZmqOutbox;
  private closed = false;

  constructor(rundir: string, readonly domid: number, private readonly log: (m: string) => void) {
    this.endpoint = hypercallEndpoint(rundir, domid);
    this.outbox = new ZmqOutbox(this.sock, (e) => this.log(`d${domid}: send failed: ${(e as Error).message}`));
  }

  async bind(): Promise<void> {
    try { unlinkSync(this.path); } catch { /* not there */ }
    await this.sock.bind(this.endpoint);
  }

  get path(): string { return this.endpoint.slice('ipc://'.length); }

  /** Runs `onMessage` for each well-formed message until close(). */
  async serve(onMessage: (m: DomainToHypervisor) => void): Promise<void> {
    try {
      for await (const frames of this.sock) {
        const m = decodeToHypervisor(frames[0] as Buffer);
        if (!m) { this.log(`d${this.domid}: dropped malformed message`); continue; }
        try {
          onMessage(m);
        } catch (err) {
          // One bad message must not end this domain's channel (or Dom0's, the host's).
          this.log(`d${this.domid}: message handler threw: ${(err as Error).stack ?? err}`);
        }
      }
    } catch (err) {
      if (!this.closed) this.log(`d${this.domid}: receive failed: ${(err as Error).message}`);
    }
  }

  send(m: HypervisorToDomain): void {
    this.outbox.send(encodeMessage(m));
  }

  /** `{type:'upcall', vcpu}`, the event path's only message: encoded once per vCPU. */
  upcall(vcpu: number): void {
    this.outbox.send(UPCALLS[vcpu] ??= encodeMessage({ type: 'upcall', vcpu }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.outbox.close();
    this.sock.close();
    try { unlinkSync(this.path); } catch { /* gone */ }
  }
}
