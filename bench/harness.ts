// What a benchmark starts, it stops. Every process and temporary directory
// comes from a Scope; a suite's scope is disposed of when the suite ends
// (success or failure), and every live scope when the runner is interrupted
// (SIGINT, SIGTERM, SIGHUP) or exits. Node children also get a lifeline
// (shared/runtime/lifeline.ts) and the C client asks the kernel to kill it
// with its parent, for the one death no handler sees: SIGKILL of the runner.
// The directories such a death leaves are removed by the next run
// (sweepStaleDirs): each one names the runner that made it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lifelineStdio, lifelineEnv } from '../shared/runtime/lifeline.js';

/** How much of a child's output is kept for error messages. */
const KEEP_OUTPUT = 64 * 1024;
/** How long a child gets between SIGTERM and SIGKILL. */
const STOP_GRACE_MS = 5000;

export interface ChildOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Give the child a parent-death pipe on fd 3 (XENEMU_LIFELINE=1). */
  lifeline?: boolean;
  /** Run the child on this CPU only (taskset); default: the scope's CPU, if any. */
  cpu?: number;
  /** A pipe to the child's stdin (Child.write) instead of none. */
  input?: boolean;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

function keepTail(s: string): string {
  return s.length > KEEP_OUTPUT ? s.slice(s.length - KEEP_OUTPUT) : s;
}

export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<Exit>;
  private out = '';
  private err = '';
  private exit: Exit | undefined;

  constructor(name: string, cmd: string, args: string[], opts: ChildOptions) {
    this.name = name;
    const stdio = (opts.lifeline ? lifelineStdio('pipe') : ['ignore', 'pipe', 'pipe']) as Array<'pipe' | 'ignore'>;
    if (opts.input) stdio[0] = 'pipe';
    this.proc = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.lifeline ? lifelineEnv(opts.env ?? process.env) : (opts.env ?? process.env),
      stdio,
    });
    this.proc.stdin?.on('error', () => undefined); // a child that exits while we type
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => { this.out = keepTail(this.out + d); });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => { this.err = keepTail(this.err + d); });
    this.exited = new Promise((resolve) => {
      // 'close' rather than 'exit': all output has been read by then.
      this.proc.once('close', (code, signal) => { this.exit = { code, signal }; resolve(this.exit); });
      this.proc.once('error', (e) => {
        this.err += `${e.message}\n`;
        this.exit ??= { code: null, signal: null };
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get running(): boolean {
    return this.exit === undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  stdout(): string {
    return this.out;
  }

  /** Writes to the child's stdin (spawned with `input`). */
  write(s: string | Uint8Array): void {
    if (!this.proc.stdin) throw new Error(`${this.name}: spawned without input`);
    this.proc.stdin.write(s);
  }

  stderr(): string {
    return this.err;
  }

  describeExit(e: Exit): string {
    const how = e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
    const tail = this.err.trim().split('\n').slice(-15).join('\n');
    return `${this.name} ${how}${tail ? `:\n${tail}` : ''}`;
  }

  /** Resolves once stdout contains `text`; rejects if the child exits first or after timeoutMs. */
  waitForOutput(text: string, timeoutMs: number): Promise<void> {
    if (this.out.includes(text)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onData = (): void => {
        if (this.out.includes(text)) { done(); resolve(); }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no "${text}" within ${timeoutMs} ms; stderr:\n${this.err}`));
      }, timeoutMs);
      const done = (): void => { clearTimeout(timer); this.proc.stdout!.off('data', onData); };
      this.proc.stdout!.on('data', onData);
      void this.exited.then((e) => { done(); reject(new Error(this.describeExit(e))); });
    });
  }

  /** SIGTERM, then SIGKILL if it is still there after graceMs. */
  async stop(graceMs = STOP_GRACE_MS): Promise<Exit> {
    if (!this.running) return this.exited;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    const e = await this.exited;
    clearTimeout(timer);
    return e;
  }

  killNow(): void {
    if (this.running) this.proc.kill('SIGKILL');
  }
}

const liveScopes = new Set<Scope>();
const DIR_PREFIX = 'xenemu-bench-';
const OWNER_FILE = '.bench-owner';
/** A directory without an owner file older than this is a leftover too. */
const UNOWNED_AGE_MS = 3600_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp dirs of runs that were killed (SIGKILL) before they could
 * clean up; leaves those of runs still going. Returns how many went.
 */
export function sweepStaleDirs(): number {
  let removed = 0;
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const d = join(tmpdir(), name);
    try {
      const owner = Number(readFileSync(join(d, OWNER_FILE), 'utf8'));
      if (owner > 0 && alive(owner)) continue;
    } catch {
      // No owner file: being created right now, or very old.
      if (Date.now() - statSync(d).mtimeMs < UNOWNED_AGE_MS) continue;
    }
    rmSync(d, { recursive: true, force: true });
    removed++;
  }
  return removed;
}

export interface ScopeOptions {
  /**
   * Run every process of the scope on this one CPU (taskset), so that a
   * request/response costs CPU time only, not a cross-CPU wake-up.
   * A spawn may name another CPU.
   */
  cpu?: number;
}

export class Scope {
  readonly name: string;
  private readonly children = new Set<Child>();
  private readonly dirs = new Set<string>();
  private readonly deferred: Array<() => void> = [];
  private readonly cpu: number | undefined;
  private disposed = false;

  constructor(name: string, opts: ScopeOptions = {}) {
    this.name = name;
    this.cpu = opts.cpu;
    liveScopes.add(this);
  }

  private check(): void {
    if (this.disposed) throw new Error(`bench: scope ${this.name} already released`);
  }

  /** A fresh private directory under the system temp dir, removed at dispose. */
  tmpdir(): string {
    this.check();
    const d = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${this.name}-`));
    this.dirs.add(d);
    writeFileSync(join(d, OWNER_FILE), `${process.pid}\n`);
    return d;
  }

  /** Starts a long-running child (a daemon); stopped at dispose if still running. */
  spawn(name: string, cmd: string, args: string[], opts: ChildOptions = {}): Child {
    this.check();
    // taskset execs the command: the pid stays the command's own.
    const cpu = opts.cpu ?? this.cpu;
    const c = cpu === undefined
      ? new Child(name, cmd, args, opts)
      : new Child(name, 'taskset', ['-c', String(cpu), cmd, ...args], opts);
    this.children.add(c);
    void c.exited.then(() => this.children.delete(c));
    return c;
  }

  /**
   * Undoes, at dispose and after the children are stopped, what is neither
   * a process nor a directory (a network namespace, a link). Synchronous: it
   * runs from the 'exit' handler too. Last deferred, first run.
   */
  defer(fn: () => void): void {
    this.check();
    this.deferred.push(fn);
  }

  /** Runs a child to completion; resolves its stdout, rejects on a non-zero exit. */
  async run(name: string, cmd: string, args: string[], opts: ChildOptions = {}): Promise<string> {
    const c = this.spawn(name, cmd, args, opts);
    const e = await c.exited;
    if (e.code !== 0) throw new Error(c.describeExit(e));
    return c.stdout();
  }

  /** Stops every child (gracefully, then not) and removes every directory. */
  async dispose(graceMs = STOP_GRACE_MS): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([...this.children].map((c) => c.stop(graceMs)));
    this.runDeferred();
    this.removeDirs();
    liveScopes.delete(this);
  }

  /** Last resort from the 'exit' handler: no waiting possible. */
  disposeSync(): void {
    this.disposed = true;
    for (const c of this.children) c.killNow();
    this.runDeferred();
    this.removeDirs();
    liveScopes.delete(this);
  }

  private runDeferred(): void {
    for (const fn of this.deferred.splice(0).reverse()) {
      try { fn(); } catch { /* best effort: the others still run */ }
    }
  }

  private removeDirs(): void {
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    this.dirs.clear();
  }
}

/**
 * Releases every live scope on SIGINT/SIGTERM/SIGHUP (then exits 128+signo)
 * and on exit. A second signal skips the grace period.
 */
export function installCleanup(log: (msg: string) => void): void {
  const signals: Array<[NodeJS.Signals, number]> = [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]];
  let interrupted = false;
  for (const [sig, no] of signals) {
    process.on(sig, () => {
      if (interrupted) {
        for (const s of [...liveScopes]) s.disposeSync();
        process.exit(128 + no);
      }
      interrupted = true;
      log(`bench: ${sig}: stopping what was started`);
      void Promise.all([...liveScopes].map((s) => s.dispose(1000))).finally(() => process.exit(128 + no));
    });
  }
  process.on('exit', () => {
    for (const s of [...liveScopes]) s.disposeSync();
  });
}

// ---- /proc readings of a child ----------------------------------------------

/** A line of /proc/<pid>/status in kB (VmRSS, VmHWM, ...). */
export function procStatusKb(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`bench: no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** utime and stime of a process, all its threads, in clock ticks (/proc/<pid>/stat, fields 14 and 15). */
function procStatTimes(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(fields[11]), Number(fields[12])];
}

/** User and system CPU seconds a process has used. */
export function procCpuTimes(pid: number): { user: number; sys: number } {
  const [user, sys] = procStatTimes(pid);
  return { user: user / CLOCK_TICKS, sys: sys / CLOCK_TICKS };
}

/** utime + stime of a process in clock ticks (CLOCK_TICKS a second): for differences over a run. */
export function procCpuTicks(pid: number): number {
  const [user, sys] = procStatTimes(pid);
  return user + sys;
}

/** sysconf(_SC_CLK_TCK): 100 on every Linux that Node supports. */
export const CLOCK_TICKS = 100;
