// The hypervisor's console: a ring of recent lines (Xen's conring, 16 KiB)
// mirrored to the hypervisor's log. Guests write with CONSOLEIO_write
// (prefixed "(d<id>) " as Xen does for guest output); Dom0 reads it back with
// CONSOLEIO_read / XEN_SYSCTL_readconsole, which is what `xm dmesg` shows.

export const CONRING_SIZE = 16 * 1024;

/** Guests' console_io: a sustained rate and a burst, in bytes. */
const GUEST_BYTES_PER_SEC = 16 * 1024;
const GUEST_BURST_BYTES = 64 * 1024;

export class ConsoleRing {
  private text = '';
  /** Characters ever appended: the ring's producer index (Xen's conringp); `text` ends there. */
  private produced = 0;
  private readonly buckets = new Map<number, { tokens: number; at: number; dropped: number }>();

  constructor(private readonly sink: (line: string) => void = (l) => process.stdout.write(l)) {}

  /** Logs a hypervisor line: "(XEN) ..." as Xen prints its own messages. */
  log(msg: string): void {
    this.append(`(XEN) ${msg}\n`);
  }

  /**
   * Guest output; each line is prefixed with the domain as Xen does, and
   * rate-limited per domain as Xen's printk_ratelimit does for guests, so a
   * guest in a loop cannot fill the hypervisor's log.
   */
  guestWrite(domid: number, data: string): void {
    const now = Date.now();
    let b = this.buckets.get(domid);
    if (!b) this.buckets.set(domid, (b = { tokens: GUEST_BURST_BYTES, at: now, dropped: 0 }));
    b.tokens = Math.min(GUEST_BURST_BYTES, b.tokens + ((now - b.at) * GUEST_BYTES_PER_SEC) / 1000);
    b.at = now;
    if (data.length > b.tokens) { b.dropped += data.length; return; }
    b.tokens -= data.length;
    if (b.dropped) {
      this.append(`(XEN) d${domid}: ${b.dropped} bytes of console output suppressed (rate limit)\n`);
      b.dropped = 0;
    }
    const lines = data.replace(/\r/g, '').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    for (const l of lines) this.append(`(d${domid}) ${l}\n`);
  }

  /** Returns up to `count` bytes starting at `index` of what the ring holds. */
  read(index = 0, count = CONRING_SIZE): string {
    return this.text.slice(index, index + count);
  }

  /**
   * read_console_ring (xen/drivers/char/console.c): up to `count` characters
   * from the oldest the ring holds, or, `incremental`, from ring position
   * `index` when that is still in the ring; and the position after them,
   * which the next incremental read passes back (libxl's `xl dmesg` reads
   * that way until it gets nothing).
   */
  readRing(index: number, count: number, incremental: boolean): { text: string; index: number } {
    const oldest = this.produced - this.text.length;
    const from = incremental && index > oldest && index <= this.produced ? index : oldest;
    const text = this.text.slice(from - oldest, from - oldest + Math.max(0, count));
    return { text, index: from + text.length };
  }

  clear(): void { this.text = ''; }

  private append(line: string): void {
    const stamped = `[${new Date().toISOString()}] ${line}`;
    this.sink(stamped);
    this.text += line;
    this.produced += line.length;
    if (this.text.length > CONRING_SIZE) this.text = this.text.slice(this.text.length - CONRING_SIZE);
  }
}

// --- the console_io hypercall (xen/drivers/char/console.c) ---
import { XEN_EINVAL } from '../../shared/abi/errno.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

const MAX_WRITE = 16 * 1024;

export function consoleWrite(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { text?: unknown }): HcResult {
  const raw = arg.text;
  const text = typeof raw === 'string' ? raw : raw instanceof Uint8Array ? Buffer.from(raw).toString('utf8') : null;
  if (text === null || text.length > MAX_WRITE) return -XEN_EINVAL;
  hv.console.guestWrite(caller.domid, text);
  return text.length;
}

export function consoleRead(hv: Hypervisor, _caller: Domain, _t: Domain | null, arg: { index?: number; count?: number }): HcResult {
  const text = hv.console.read(Number(arg.index ?? 0), Number(arg.count ?? CONRING_SIZE));
  return { ret: text.length, data: { text } };
}
