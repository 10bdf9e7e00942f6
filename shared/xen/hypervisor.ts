// A domain's connection to its hypervisor: hypercalls, fire-and-forget
// EVTCHNOP_send, and upcalls (shared/wire/hypercall.ts has the messages).
import * as zmq from 'zeromq';
import {
  __HYPERVISOR_console_io, __HYPERVISOR_domctl, __HYPERVISOR_event_channel_op, __HYPERVISOR_grant_table_op,
  __HYPERVISOR_memory_op, __HYPERVISOR_sched_op, __HYPERVISOR_sysctl,
} from '../abi/xen.js';
import { decodeToDomain, encodeMessage, type DomainHello, type DomainToHypervisor, type SchedRequest } from '../wire/hypercall.js';
import { ZmqOutbox } from '../runtime/zmq_outbox.js';
import { errnoName } from '../abi/errno.js';

/** Ports whose encoded `notify` is kept (a domain uses a few; the cap bounds a misbehaving one). */
const NOTIFY_CACHE_PORTS = 1024;

export interface HypercallResult<T = unknown> { ret: number; data?: T }

/** A negative Xen errno turned into an exception, for callers that prefer throwing. */
export class XenError extends Error {
  constructor(readonly op: string, readonly errno: number) {
    super(`${op}: ${errnoName(errno)} (${errno})`);
    this.name = 'XenError';
  }
}

/** Returns ret when >= 0, throws XenError otherwise. */
export function check<T>(op: string, r: HypercallResult<T>): HypercallResult<T> {
  if (r.ret < 0) throw new XenError(op, r.ret);
  return r;
}

export class HypervisorClient {
  private readonly sock: zmq.Pair | zmq.Dealer;
  private readonly outbox: ZmqOutbox;
  private readonly pending = new Map<number, (r: HypercallResult) => void>();
  private nextId = 1;
  private upcall: (vcpu: number) => void = () => {};
  private slice: (vcpu: number, gen: number) => void = () => {};
  private closed = false;
  private readonly notifyMsgs = new Map<number, Buffer>();

  private constructor(readonly endpoint: string, privcmd = false) {
    const opts = { linger: 0, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 };
    this.sock = privcmd ? new zmq.Dealer(opts) : new zmq.Pair(opts);
    this.outbox = new ZmqOutbox(this.sock);
  }

  /**
   * A privcmd handle: hypercalls as Domain-0 from a program of Domain-0's
   * (qemu-dm), through the host's privcmd endpoint (privcmdEndpoint()).
   * No upcalls or slices arrive on it.
   */
  static privcmd(endpoint: string): HypervisorClient {
    const c = new HypervisorClient(endpoint, true);
    c.sock.connect(endpoint);
    void c.receive();
    return c;
  }

  /** Connects to the domain's hypercall endpoint (env XENEMU_HYPERCALL by default). */
  static connect(endpoint = process.env.XENEMU_HYPERCALL ?? ''): HypervisorClient {
    if (!endpoint.startsWith('ipc://')) throw new Error('XENEMU_HYPERCALL is not set: not started by a hypervisor');
    const c = new HypervisorClient(endpoint);
    c.sock.connect(endpoint);
    void c.receive();
    return c;
  }

  private async receive(): Promise<void> {
    try {
      for await (const frames of this.sock) {
        const m = decodeToDomain(frames[0] as Buffer);
        if (!m) continue;
        if (m.type === 'upcall') { this.upcall(m.vcpu); continue; }
        if (m.type === 'slice') { this.slice(m.vcpu, m.gen); continue; }
        const done = this.pending.get(m.id);
        if (done) { this.pending.delete(m.id); done({ ret: m.ret, data: m.data }); }
      }
    } catch { /* closed */ }
  }

  private request<T>(msg: (id: number) => DomainToHypervisor): Promise<HypercallResult<T>> {
    if (this.closed) return Promise.reject(new Error('hypervisor connection closed'));
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve as (r: HypercallResult) => void);
      this.outbox.send(encodeMessage(msg(id)));
    });
  }

  /** Who am I: domid, segments, start_info address. */
  async hello(): Promise<DomainHello> {
    const r = await this.request<DomainHello>((id) => ({ type: 'hello', id }));
    return r.data!;
  }

  /** Dom0 only: the host is up (the hypervisor writes its ready marker). */
  async ready(): Promise<number> {
    return (await this.request((id) => ({ type: 'ready', id }))).ret;
  }

  hypercall<T = unknown>(op: number, cmd: number, arg: object = {}): Promise<HypercallResult<T>> {
    return this.request<T>((id) => ({ type: 'hypercall', id, op, cmd, arg }));
  }

  domctl<T = unknown>(cmd: number, arg: object): Promise<HypercallResult<T>> { return this.hypercall<T>(__HYPERVISOR_domctl, cmd, arg); }
  sysctl<T = unknown>(cmd: number, arg: object = {}): Promise<HypercallResult<T>> { return this.hypercall<T>(__HYPERVISOR_sysctl, cmd, arg); }
  memory_op<T = unknown>(cmd: number, arg: object): Promise<HypercallResult<T>> { return this.hypercall<T>(__HYPERVISOR_memory_op, cmd, arg); }
  event_channel_op<T = unknown>(cmd: number, arg: object): Promise<HypercallResult<T>> { return this.hypercall<T>(__HYPERVISOR_event_channel_op, cmd, arg); }
  grant_table_op<T = unknown>(cmd: number, arg: object): Promise<HypercallResult<T>> { return this.hypercall<T>(__HYPERVISOR_grant_table_op, cmd, arg); }
  sched_op<T = unknown>(cmd: number, arg: object = {}): Promise<HypercallResult<T>> { return this.hypercall<T>(__HYPERVISOR_sched_op, cmd, arg); }
  console_io<T = unknown>(cmd: number, arg: object): Promise<HypercallResult<T>> { return this.hypercall<T>(__HYPERVISOR_console_io, cmd, arg); }

  /**
   * EVTCHNOP_send without waiting for a reply: the notification hot path.
   * A port's message never changes, so it is encoded once (the socket
   * does not keep or modify what it sends).
   */
  notify(port: number): void {
    if (this.closed) return;
    let msg = this.notifyMsgs.get(port);
    if (msg === undefined) {
      msg = encodeMessage({ type: 'notify', port });
      if (this.notifyMsgs.size < NOTIFY_CACHE_PORTS) this.notifyMsgs.set(port, msg);
    }
    this.outbox.send(msg);
  }

  /** A vCPU scheduling event without a reply (shared/xen/vcpu uses it). */
  sched(op: SchedRequest['op'], vcpu: number, gen = 0): void {
    if (!this.closed) this.outbox.send(encodeMessage({ type: 'sched', op, vcpu, gen }));
  }

  /** Called for every slice grant (VcpuPool installs itself here). */
  onSlice(fn: (vcpu: number, gen: number) => void): void { this.slice = fn; }

  /** Called for every upcall message (EventChannels installs itself here). */
  onUpcall(fn: (vcpu: number) => void): void { this.upcall = fn; }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.outbox.close();
    this.sock.close();
    for (const done of this.pending.values()) done({ ret: -5 /* EIO */ });
    this.pending.clear();
  }
}
