// privcmd: hypercalls from Domain-0's programs other than the Domain-0
// process itself (qemu-dm, Xen's C tools through xenemu's LD_PRELOAD shim),
// as Linux's /dev/xen/privcmd gives any root process of Dom0 the right to
// make hypercalls as Dom0.
//
// One ZeroMQ ROUTER socket per host, `ipc://<rundir>/privcmd`, reachable by
// root only (the run directory's mode): each DEALER that connects is one open
// privcmd file. Messages are a domain's (shared/wire/hypercall.ts), `hello`
// and `hypercall` only; the caller is Domain-0, so the hypercall table checks
// privilege exactly as for the Domain-0 process.
import * as zmq from 'zeromq';
import { chmodSync, unlinkSync } from 'node:fs';
import { decodeToHypervisor, encodeMessage, privcmdEndpoint, type DomainHello } from '../../shared/wire/hypercall.js';
import { XEN_EINVAL } from '../../shared/abi/errno.js';
import type { Hypervisor } from './hypervisor.js';
import { dispatch } from './hypercall.js';

export class Privcmd {
  readonly endpoint: string;
  private readonly sock = new zmq.Router({ linger: 0, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
  private sending: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly hv: Hypervisor, private readonly hello: () => DomainHello | null) {
    this.endpoint = privcmdEndpoint(hv.rundir);
  }

  get path(): string { return this.endpoint.slice('ipc://'.length); }

  async start(): Promise<void> {
    try { unlinkSync(this.path); } catch { /* not there */ }
    await this.sock.bind(this.endpoint);
    chmodSync(this.path, 0o600);
    void this.serve();
  }

  private async serve(): Promise<void> {
    try {
      for await (const [who, payload] of this.sock) {
        const m = payload ? decodeToHypervisor(payload) : null;
        const d0 = this.hv.domains.get(0);
        if (!m || !who || !d0) continue;
        if (m.type === 'hypercall') {
          const r = dispatch(this.hv, d0, m.op, m.cmd, m.arg);
          this.reply(who, encodeMessage({ type: 'reply', id: m.id, ret: r.ret, data: r.data }));
        } else if (m.type === 'hello') {
          const h = this.hello();
          this.reply(who, encodeMessage(h ? { type: 'reply', id: m.id, ret: 0, data: h } : { type: 'reply', id: m.id, ret: -XEN_EINVAL }));
        }
      }
    } catch (err) {
      if (!this.closed) this.hv.console.log(`privcmd: receive failed: ${(err as Error).message}`);
    }
  }

  /** Replies go out in order; a client that went away only loses its own. */
  private reply(who: Buffer, msg: Buffer): void {
    this.sending = this.sending.then(() => this.sock.send([who, msg])).catch(() => { /* peer gone */ });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
    try { unlinkSync(this.path); } catch { /* gone */ }
  }
}
