// Spare guest processes: the first unpause of a domain running the default
// guest kernel takes a process started ahead of need instead of starting one
// (shared/wire/spare.ts has the protocol).
//
// Starting Node and loading the guest kernel's modules is most of a guest's
// create-to-prompt time (about 150 of 250 ms, docs/benchmarks.md "boot");
// a spare has done both before anyone asked. It is still one process per
// domain, spawned by the hypervisor with its lifeline: it only learns its
// domid later.
//
//   Dom0 ready / a spare taken ──> spawn `node --title=... domu/main.js --host H --spare`
//                                  titled `xenemu-domU spare host=H`
//                                  (stdout/stderr -> logs/spare-<n>.log)
//   unpausedomain(d) ──> take(): logs/spare-<n>.log renamed dom<id>.log,
//                        assignment written on its stdin ──> it titles itself
//                        `xenemu-domU domid=<id> host=H`, startDomain() ...
//
// At most one spare per host: it costs one idle process. host.json lists it
// (pids.spares), so `xenemu down` waits for it as for any process of the
// host. Domains with another program or with arguments start as before
// (spawn.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { lifelineEnv } from '../../shared/runtime/lifeline.js';
import { hostFiles } from '../../shared/host.js';
import { DOMU_ENV, DOMU_NODE_FLAGS, domainExtraNodeFlags } from '../../shared/runtime/node_flags.js';
import { SPARE_FLAG, encodeAssign } from '../../shared/wire/spare.js';
import { nodeTitleArgs, spareTitle } from '../../shared/runtime/title.js';
import type { SpawnSpec } from './spawn.js';

interface Spare { proc: ChildProcess; log: string }

export class SpareDomains {
  private spare: Spare | null = null;
  private seq = 0;
  private closed = false;

  /** `changed` runs when the spare processes change (one started or gone): host.json lists them. */
  constructor(private readonly host: string, private readonly rundir: string, readonly program: string,
              private readonly log: (m: string) => void, private readonly changed: () => void = () => undefined) {}

  /** The pids of the spare processes alive now. */
  pids(): number[] {
    const p = this.spare?.proc;
    return p?.pid && p.exitCode === null && p.signalCode === null ? [p.pid] : [];
  }

  /** Starts a spare unless one is there. */
  refill(): void {
    if (this.closed || this.spare) return;
    const logPath = join(this.rundir, hostFiles.logs, `spare-${++this.seq}.log`);
    const fd = openSync(logPath, 'a');
    try {
      const env = lifelineEnv({ ...process.env, XENEMU_HOST: this.host, XENEMU_HOST_DIR: this.rundir, ...DOMU_ENV });
      delete env.XENEMU_READY_FD;
      delete env.XENEMU_DOMID;
      delete env.XENEMU_HYPERCALL;
      const title = spareTitle(this.host);
      const proc = spawn(process.execPath, [...nodeTitleArgs(title), ...DOMU_NODE_FLAGS, ...domainExtraNodeFlags(), this.program, '--host', this.host, SPARE_FLAG], {
        stdio: ['pipe', fd, fd, 'pipe'], env, cwd: this.rundir, argv0: title,
      });
      const s: Spare = { proc, log: logPath };
      this.spare = s;
      proc.stdin!.on('error', () => { /* it died: exit below */ });
      proc.on('error', (err) => this.log(`spare guest process: spawn failed: ${err.message}`));
      // A spare that dies unused is not replaced until one is taken: no respawn loop.
      proc.on('exit', () => {
        if (this.spare !== s) return;
        this.spare = null;
        this.changed();
      });
    } finally {
      closeSync(fd);
    }
    this.changed();
  }

  /**
   * The spare, now domain `s.domid`, or null when the domain needs its own
   * start (another program, arguments, or no spare ready).
   */
  take(s: SpawnSpec): ChildProcess | null {
    const spare = this.spare;
    if (!spare || s.program !== this.program || s.args.length > 0 || s.domid === 0) return null;
    if (spare.proc.exitCode !== null || spare.proc.signalCode !== null || !spare.proc.pid) return null;
    this.spare = null;
    try {
      renameSync(spare.log, join(this.rundir, hostFiles.logs, `dom${s.domid}.log`));
    } catch { /* run dir gone: the domain still starts */ }
    spare.proc.stdin!.end(encodeAssign({ domid: s.domid, hypercall: s.endpoint }));
    return spare.proc;
  }

  close(): void {
    this.closed = true;
    const s = this.spare;
    this.spare = null;
    if (s && s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
  }
}
