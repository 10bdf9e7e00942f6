// xenconsoled: every domain's console ring to one real PTY, a log file and a
// bounded backlog (docs/design.md §7). The transport to the guest is kept out: a
// console is a ring page plus a notify() to raise the guest's event channel,
// and whoever receives the guest's notifications calls kick(domid).
//
//   guest                 xenconsoled                          client (xm console, screen)
//     | out ring + notify ->| kick: read out once, validate      |
//     |                     |-- backlog (64 KiB), log file       |
//     |                     |-- PTY master ---------------------->| reads slave
//     |<- in ring + notify -|<- PTY master <-- typed bytes -------| writes slave
//
// Attaching (attach(domid)): xm asks xend, xend asks here; the bytes queued in
// the PTY that nobody read are discarded and the backlog is returned in the
// same turn of the event loop, so the client shows the backlog and then reads
// the PTY without losing or repeating a byte.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XenconsInterface, XENCONS_OUT_SIZE } from '../../../shared/abi/io/console.js';
import { Backlog } from './backlog.js';
import { ConsolePty } from '../../../shared/runtime/pty.js';
import { consoleLogFile } from '../../../shared/host.js';

export interface XenconsoledOptions {
  /** Logs go to `<logDir>/console/<name-or-domid>.log`. */
  logDir: string;
  /** Bytes of recent output kept per console (default 64 KiB). */
  backlogBytes?: number;
  /** Keystrokes held while the guest's `in` ring is full (default 4 KiB). */
  inputQueueBytes?: number;
}

export interface ConsoleInfo {
  domid: number;
  name: string;
  ptyPath: string;
  logPath: string;
  /** Output bytes taken from the ring since the console was added. */
  outBytes: number;
  /** Output bytes a full PTY could not take (still in log and backlog). */
  ptyDropped: number;
  /** Set once the guest left its ring indices inconsistent. */
  ringError: boolean;
}

// A guest may refill its ring while we drain it; stop after this many rounds
// and continue on its next kick, so one guest cannot hold the daemon.
const MAX_ROUNDS = 8;

class Console {
  readonly ring: XenconsInterface;
  readonly pty: ConsolePty;
  readonly backlog: Backlog;
  readonly logPath: string;
  private logFd: number;
  private loggedBytes = 0;
  private pendingIn: Buffer[] = [];
  private pendingInBytes = 0;
  outBytes = 0;
  ptyDropped = 0;
  ringError = false;

  constructor(readonly domid: number, readonly name: string, page: Uint8Array, private readonly notify: () => void,
              logDir: string, backlogBytes: number, private readonly inputQueueBytes: number) {
    this.ring = new XenconsInterface(page);
    this.backlog = new Backlog(backlogBytes);
    this.logPath = consoleLogFile(logDir, name, domid);
    fs.mkdirSync(path.dirname(this.logPath), { recursive: true });
    this.logFd = fs.openSync(this.logPath, 'a');
    try {
      this.pty = new ConsolePty((d) => this.onInput(d));
    } catch (e) {
      fs.closeSync(this.logFd);
      throw e;
    }
  }

  /** The guest notified: take its output, push queued input. */
  kick(): void {
    let consumed = false;
    for (let round = 0; round < MAX_ROUNDS && !this.ringError; round++) {
      const r = this.ring.readOut(XENCONS_OUT_SIZE);
      if (!r.ok) { this.markRingError(); break; }
      if (r.data.byteLength === 0) break;
      consumed = true;
      this.output(r.data);
    }
    const wrote = this.pushInput();
    if (consumed || wrote) this.notify();
  }

  private output(data: Uint8Array): void {
    this.outBytes += data.byteLength;
    this.backlog.append(data);
    if (this.logFd >= 0) {
      // A guest writing without end must not fill the host's disk: the log
      // keeps its first LOG_MAX_BYTES; the backlog and the PTY keep going.
      const room = LOG_MAX_BYTES - this.loggedBytes;
      try {
        if (room > 0) fs.writeSync(this.logFd, data.byteLength <= room ? data : data.subarray(0, room));
        if (room > 0 && data.byteLength >= room) {
          fs.writeSync(this.logFd, `\n[xenconsoled: console log of domain ${this.domid} reached ${LOG_MAX_BYTES} bytes; not logging more]\n`);
        }
      } catch { /* a full disk must not stop the console */ }
      this.loggedBytes += data.byteLength;
    }
    this.ptyDropped += data.byteLength - this.pty.write(data);
  }

  private onInput(d: Buffer): void {
    if (this.pendingInBytes + d.length > this.inputQueueBytes) {
      d = d.subarray(0, Math.max(0, this.inputQueueBytes - this.pendingInBytes));
    }
    if (d.length > 0) {
      this.pendingIn.push(Buffer.from(d));
      this.pendingInBytes += d.length;
    }
    if (this.pushInput()) this.notify();
  }

  private pushInput(): boolean {
    let wrote = false;
    while (this.pendingIn.length > 0 && !this.ringError) {
      const head = this.pendingIn[0]!;
      const n = this.ring.writeIn(head);
      if (n < 0) { this.markRingError(); break; }
      if (n === 0) break;
      wrote = true;
      this.pendingInBytes -= n;
      if (n === head.length) this.pendingIn.shift();
      else this.pendingIn[0] = head.subarray(n);
    }
    return wrote;
  }

  private markRingError(): void {
    // Xen's xenconsoled ignores such a ring; we also say so once in the log.
    if (this.ringError) return;
    this.ringError = true;
    if (this.logFd >= 0) {
      try { fs.writeSync(this.logFd, `\n[xenconsoled: domain ${this.domid} console ring indices are inconsistent; console stopped]\n`); } catch { /* ignore */ }
    }
  }

  attach(): Uint8Array {
    this.pty.flushUnread();
    return this.backlog.snapshot();
  }

  async close(): Promise<void> {
    if (this.logFd >= 0) {
      try { fs.closeSync(this.logFd); } catch { /* ignore */ }
      this.logFd = -1;
    }
    await this.pty.close();
  }
}

/** Per-console log file cap (xenconsoled's log rotation is not emulated). */
export const LOG_MAX_BYTES = 4 << 20;

export class Xenconsoled {
  private readonly consoles = new Map<number, Console>();
  private readonly logDir: string;
  private readonly backlogBytes: number;
  private readonly inputQueueBytes: number;

  constructor(opts: XenconsoledOptions) {
    this.logDir = opts.logDir;
    this.backlogBytes = opts.backlogBytes ?? 64 * 1024;
    this.inputQueueBytes = opts.inputQueueBytes ?? 4096;
  }

  /**
   * Start serving a domain's console. `ring` is a Uint8Array over the shared
   * console page (struct xencons_interface), `notify` raises the guest's
   * console event channel. The caller records ptyPath at
   * /local/domain/<domid>/console/tty.
   */
  addConsole(domid: number, name: string, ring: Uint8Array, notify: () => void): { ptyPath: string } {
    if (this.consoles.has(domid)) throw new Error(`domain ${domid} already has a console`);
    const c = new Console(domid, name, ring, notify, this.logDir, this.backlogBytes, this.inputQueueBytes);
    this.consoles.set(domid, c);
    // Output written before we were told about the console is taken now.
    c.kick();
    return { ptyPath: c.pty.path };
  }

  /** The guest raised its console event channel. */
  kick(domid: number): void {
    this.consoles.get(domid)?.kick();
  }

  /** Discard unread PTY output and return the backlog, for a client about to open the PTY. */
  attach(domid: number): { ptyPath: string; backlog: Uint8Array } | undefined {
    const c = this.consoles.get(domid);
    if (!c) return undefined;
    return { ptyPath: c.pty.path, backlog: c.attach() };
  }

  info(domid: number): ConsoleInfo | undefined {
    const c = this.consoles.get(domid);
    if (!c) return undefined;
    return { domid, name: c.name, ptyPath: c.pty.path, logPath: c.logPath, outBytes: c.outBytes, ptyDropped: c.ptyDropped, ringError: c.ringError };
  }

  domains(): number[] {
    return [...this.consoles.keys()];
  }

  /** Stop serving a domain's console: closes its PTY and log. */
  async removeConsole(domid: number): Promise<void> {
    const c = this.consoles.get(domid);
    if (!c) return;
    this.consoles.delete(domid);
    await c.close();
  }

  async close(): Promise<void> {
    await Promise.all([...this.consoles.keys()].map((d) => this.removeConsole(d)));
  }
}
