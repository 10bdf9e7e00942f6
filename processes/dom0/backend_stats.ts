// Counters of Domain-0's back ends (blkback, netback) and the log of the
// guest input they reject.
//
// Where users and tests read them. Linux shows a back-end device's counters
// in sysfs, /sys/bus/xen-backend/devices/vbd-<domid>-<devid>/statistics/
// (rd_req, wr_req, f_req, ...). xenemu writes the same names into the host's
// run directory:
//
//   <rundir>/xen-backend/devices/<type>-<domid>-<devid>/statistics   one device (vbd-5-51712, vif-5-0)
//   <rundir>/xen-backend/drivers/<type>/statistics                   every device of that type since Domain-0 started
//
// One file of `name value` lines (not sysfs's file per counter: one read is
// one consistent snapshot), replaced whole by a rename, so a reader never sees
// half a file. A device's file goes when its back-end directory does.
//
// Rejections. A back end refuses bad guest input with a named reason from its
// table (BlkifReject, NetifReject), as Firecracker's VirtioBlockError names
// each check: `rejected.<reason>` counts it for the device and for the driver,
// `rejected` is the sum. Each rejection is logged once, with its name, through
// a per-device limit of LOG_BURST lines per LOG_INTERVAL_MS (Linux's printk
// ratelimit defaults, 10 per 5 s); what the limit held back is counted and
// said in one line when the window ends. A hostile guest can make its own
// counters climb, not Domain-0's log.
//
// When the files are written: sync() writes them if a rejection happened
// since they were last written. Back ends call it before they push responses
// (and before they disconnect a device), so a front end that sees the error
// response, and a test behind it, finds the rejection already counted in the
// file. The other counters (requests, bytes, packets) are written once a
// second when they changed.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOG_BURST = 10;
export const LOG_INTERVAL_MS = 5_000;
const REFRESH_MS = 1_000;

export type BackendType = 'vbd' | 'vif' | 'pci';
export type Counters = Record<string, number>;

/** A table of reasons: name -> what the check refuses. The names are what is counted and logged. */
export type RejectTable = Readonly<Record<string, string>>;

/** `{ bad_gref: 'bad_gref', ... }` from a table, so code names a reason as `BlkifReject.bad_gref`. */
export function reasonNames<T extends RejectTable>(table: T): { readonly [K in keyof T]: K } {
  return Object.fromEntries(Object.keys(table).map((k) => [k, k])) as { readonly [K in keyof T]: K };
}

export function backendRoot(rundir: string): string { return join(rundir, 'xen-backend'); }

/** <rundir>/xen-backend/devices/<type>-<domid>-<devid>/statistics */
export function deviceStatisticsPath(rundir: string, type: BackendType, domid: number, devid: number): string {
  return join(backendRoot(rundir), 'devices', `${type}-${domid}-${devid}`, 'statistics');
}

/** <rundir>/xen-backend/drivers/<type>/statistics */
export function driverStatisticsPath(rundir: string, type: BackendType): string {
  return join(backendRoot(rundir), 'drivers', type, 'statistics');
}

/** Parses a statistics file (`name value` lines). */
export function parseStatistics(text: string): Counters {
  const out: Counters = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+) (\d+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Reads a statistics file; {} when it does not exist (yet). */
export function readStatistics(path: string): Counters {
  try { return parseStatistics(readFileSync(path, 'utf8')); } catch { return {}; }
}

function format(c: Counters): string {
  return Object.entries(c).map(([k, v]) => `${k} ${v}\n`).join('');
}

/** Writes `text` to `path` whole (a temporary file renamed over it). */
function replaceFile(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export interface DriverOptions<R extends string> {
  rundir: string;
  type: BackendType;
  reasons: readonly R[];
  log(msg: string): void;
  /** The clock of the log limit (tests). */
  now?: () => number;
}

/** One back-end driver's devices and totals. */
export class BackendDriver<R extends string> {
  readonly rejects: Record<R, number>;
  rejected = 0;
  private readonly devices = new Set<BackendDevice<R>>();
  private readonly path: string;
  private written = '';
  private failed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(readonly o: DriverOptions<R>) {
    this.rejects = Object.fromEntries(o.reasons.map((r) => [r, 0])) as Record<R, number>;
    this.path = driverStatisticsPath(o.rundir, o.type);
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    this.timer.unref();
    this.write(true);
  }

  now(): number { return (this.o.now ?? Date.now)(); }

  /**
   * A device's counters: `counters()` gives its own (requests, bytes, ...),
   * read whenever the file is written; `log` is the device's log (with its
   * name in front).
   */
  device(domid: number, devid: number, counters: () => Counters, log: (msg: string) => void): BackendDevice<R> {
    const d = new BackendDevice<R>(this, deviceStatisticsPath(this.o.rundir, this.o.type, domid, devid), counters, log);
    this.devices.add(d);
    return d;
  }

  /** @internal */
  forget(d: BackendDevice<R>): void { this.devices.delete(d); }

  /** @internal */
  write(force = false): void {
    const text = format({ devices: this.devices.size, rejected: this.rejected, ...prefixed(this.rejects) });
    if (!force && text === this.written) return;
    this.written = text;
    this.failed = writeSafely(this.path, text, this.failed, this.o.log);
  }

  /** Writes what changed (the once-a-second refresh); the total first, as sync() does. */
  refresh(): void {
    this.write();
    for (const d of this.devices) d.refresh();
  }

  close(): void {
    clearInterval(this.timer);
    this.refresh();
  }
}

function prefixed(r: Record<string, number>): Counters {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [`rejected.${k}`, v]));
}

/** Writes a statistics file; logs the first failure only (a run directory going away at shutdown). */
function writeSafely(path: string, text: string, failedBefore: boolean, log: (m: string) => void): boolean {
  try {
    mkdirSync(join(path, '..'), { recursive: true });
    replaceFile(path, text);
    return false;
  } catch (e) {
    if (!failedBefore) log(`cannot write ${path}: ${(e as Error).message}`);
    return true;
  }
}

/** One device's rejections, its log limit and its statistics file. */
export class BackendDevice<R extends string> {
  readonly rejects: Record<R, number>;
  rejected = 0;
  private dirty = false;
  private written = '';
  private failed = false;
  private removed = false;
  private windowStart = -Infinity;
  private logged = 0;
  private held = 0;

  constructor(private readonly driver: BackendDriver<R>, readonly path: string, private readonly counters: () => Counters,
              private readonly log: (msg: string) => void) {
    this.rejects = Object.fromEntries(driver.o.reasons.map((r) => [r, 0])) as Record<R, number>;
    this.write();
  }

  /** Counts a rejection of guest input under `reason` and logs it (within the limit). */
  reject(reason: R, detail: string): void {
    this.rejects[reason]++;
    this.rejected++;
    this.driver.rejects[reason]++;
    this.driver.rejected++;
    this.dirty = true;
    this.limitedLog(`rejected (${reason}): ${detail}`);
  }

  /** A line for the log through the device's limit (rejections, and errors a guest can provoke). */
  limitedLog(msg: string): void {
    this.endWindow();
    if (this.logged < LOG_BURST) {
      if (this.logged++ === 0) this.windowStart = this.driver.now();
      this.log(msg);
    } else this.held++;
  }

  /** A window that has ended lets LOG_BURST lines through again, after saying what it held back. */
  private endWindow(): void {
    if (this.logged === 0 || this.driver.now() - this.windowStart < LOG_INTERVAL_MS) return;
    if (this.held > 0) this.log(`${this.held} more rejection${this.held === 1 ? '' : 's'} not logged (at most ${LOG_BURST} lines per ${LOG_INTERVAL_MS / 1000} s)`);
    this.logged = 0;
    this.held = 0;
  }

  /**
   * Writes the driver's and the device's files now if a rejection came since
   * they were written. The driver's first: whoever sees the device's count
   * finds the total already holding it.
   */
  sync(): void {
    if (!this.dirty) return;
    this.driver.write();
    this.write();
  }

  /** @internal The once-a-second refresh. */
  refresh(): void {
    this.endWindow();
    this.write();
  }

  private write(): void {
    if (this.removed) return;
    this.dirty = false;
    const text = format({ ...this.counters(), rejected: this.rejected, ...prefixed(this.rejects) });
    if (text === this.written) return;
    this.written = text;
    this.failed = writeSafely(this.path, text, this.failed, this.log);
  }

  /** The device is gone (its back-end directory removed): its file goes, its rejections stay in the totals. */
  remove(): void {
    if (this.removed) return;
    this.endWindow();
    if (this.held > 0) this.log(`${this.held} more rejection${this.held === 1 ? '' : 's'} not logged`);
    this.removed = true;
    this.driver.forget(this);
    this.driver.write();
    rmSync(join(this.path, '..'), { recursive: true, force: true });
  }
}
