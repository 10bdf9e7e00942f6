// Starting, watching and stopping an HVM guest's device model, as libxl's
// libxl__spawn_local_dm and libxl__destroy_device_model do for qemu-xen in
// Domain-0 (libxl_dm.c, libxl_exec.c):
//
//   toolstack                                   qemu-dm                        xenstored
//     rm device-model/<id>/state, watch it ──────────────────────────────────────►
//     rotate and open logs/qemu-dm-<name>.log
//     spawn (title, lifeline on fd 3, setsid) ──► starts, connects to xenstore,
//     image/device-model-pid = pid ─────────────────────────────────────────────►
//                                                 creates its ioreq server, ...
//                                                 state = running ──────────────► watch fires
//     confirmed: the guest may be unpaused
//
//   startup fails when the process exits first, or when `running` has not come
//   within the bound: the process is killed and the error names its log.
//   Later, an exit the toolstack did not ask for is reported (the guest is
//   crashed by its kind, hvm_kind.ts); stop() is SIGTERM, then SIGKILL after
//   a grace period, and resolves once the process is gone.
//
// The device model dies with Domain-0 too: it holds a lifeline to it
// (shared/runtime/lifeline.ts), its title names the host so reapHost finds
// it (shared/runtime/title.ts), and XENEMU_HOST_DIR is in its environment.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deviceModelLogFile } from '../../../../shared/host.js';
import { lifelineEnv, lifelineStdio } from '../../../../shared/runtime/lifeline.js';
import { nodeTitleArgs, qemuDmTitle } from '../../../../shared/runtime/title.js';
import { BuildError, type BuilderContext } from '../builder.js';
import { domainPath } from '../xenstore_layout.js';
import { deviceModelPath } from './xenstore.js';

/** xenemu's device model, next to Domain-0's code in dist/. */
export const QEMU_DM_PROGRAM = fileURLToPath(new URL('../../../qemu-dm/main.js', import.meta.url));
/** How long the device model has to say `running` (libxl's LIBXL_DEVICE_MODEL_START_TIMEOUT is 60 s). */
export const DEVICE_MODEL_START_TIMEOUT_MS = 10_000;
/** How long a device model asked to stop (SIGTERM) has before SIGKILL. */
export const DEVICE_MODEL_STOP_GRACE_MS = 2_000;
/** libxl_create_logfile keeps this many old logs (<name>.log.1 ...). */
const LOG_GENERATIONS = 10;

export interface DeviceModelSpec {
  domid: number;
  name: string;
  host: string;
  rundir: string;
  /** xl.cfg device_model_override: a program to run instead; a .js or .mjs file runs under node. */
  program?: string;
  args: string[];
  timeoutMs?: number;
}

export type DeviceModelExit = { code: number | null; signal: NodeJS.Signals | null };

/** libxl_create_logfile: <name>.log becomes <name>.log.1, and so on. */
function rotateLog(path: string): void {
  for (let i = LOG_GENERATIONS - 1; i >= 1; i--) {
    if (existsSync(`${path}.${i}`)) { try { renameSync(`${path}.${i}`, `${path}.${i + 1}`); } catch { /* raced */ } }
  }
  if (existsSync(path)) { try { renameSync(path, `${path}.1`); } catch { /* raced */ } }
}

/** The device model's environment: Domain-0's, less what makes a process a domain, plus qemu-xen's (libxl_dm.c). */
function deviceModelEnv(s: DeviceModelSpec): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = lifelineEnv({
    ...process.env,
    XENEMU_HOST: s.host,
    XENEMU_HOST_DIR: s.rundir,
    // libxenstore's way to the daemon: qemu-dm (and any Xen tool it runs) uses this socket.
    XENSTORED_PATH: `${s.rundir}/xenstored.sock`,
    // libxl__build_device_model_args_new, for an HVM guest
    XEN_DOMAIN_ID: String(s.domid),
    // libxl__set_qemu_env_for_xsa_180
    XEN_QEMU_CONSOLE_LIMIT: String(1024 * 1024),
  });
  // Domain-0's own channel to the hypervisor is not the device model's: it
  // makes hypercalls through privcmd (<rundir>/privcmd).
  delete env.XENEMU_HYPERCALL;
  delete env.XENEMU_DOMID;
  delete env.XENEMU_READY_FD;
  return env;
}

function describeExit(e: DeviceModelExit): string {
  return e.signal ? `died during startup due to fatal signal ${e.signal}` : e.code === 0
    ? 'unexpectedly exited with exit status 0, when we were waiting for it to confirm startup'
    : `failed startup with non-zero exit status ${e.code}`;
}

export class DeviceModel {
  private stopping = false;
  private readonly exitListeners: Array<(e: DeviceModelExit) => void> = [];
  /** Resolves with how the process ended. */
  readonly exited: Promise<DeviceModelExit>;
  private exit: DeviceModelExit | undefined;

  private constructor(readonly proc: ChildProcess, readonly program: string, readonly logPath: string) {
    this.exited = new Promise((resolve) => {
      const ended = (e: DeviceModelExit) => {
        if (this.exit) return;
        this.exit = e;
        resolve(e);
        if (!this.stopping) for (const l of this.exitListeners) l(e);
      };
      proc.once('exit', (code, signal) => ended({ code, signal }));
      // A process that could not be spawned at all never exits.
      proc.once('error', () => { if (proc.pid === undefined) ended({ code: null, signal: null }); });
    });
  }

  get pid(): number { return this.proc.pid ?? 0; }
  get running(): boolean { return this.exit === undefined; }

  /** Called once if the process ends without stop() (a crash, a SIGKILL), at once if it already did. */
  onUnexpectedExit(fn: (e: DeviceModelExit) => void): void {
    if (this.exit && !this.stopping) fn(this.exit);
    else this.exitListeners.push(fn);
  }

  /**
   * Spawns the device model and waits (a xenstore watch, bounded) for it to
   * write `running` to /local/domain/0/device-model/<id>/state. On failure
   * the process is gone when this throws.
   */
  static async start(ctx: BuilderContext, s: DeviceModelSpec): Promise<DeviceModel> {
    const program = s.program ?? QEMU_DM_PROGRAM;
    const underNode = /\.m?js$/.test(program);
    try {
      accessSync(program, underNode ? constants.R_OK : constants.X_OK);
    } catch {
      throw new BuildError('EINVAL', `device model ${program} is not ${underNode ? 'there' : 'executable'}`);
    }
    const what = `domain ${s.domid} device model`;
    const statePath = `${deviceModelPath(s.domid)}/state`;
    await ctx.xs.rm(statePath).catch(() => undefined);

    const logPath = deviceModelLogFile(s.rundir, s.name);
    mkdirSync(dirname(logPath), { recursive: true });
    rotateLog(logPath);
    const title = qemuDmTitle(s.host, s.domid, s.name);
    ctx.log(`${what}: spawning ${program} ${s.args.join(' ')}`);
    const log = openSync(logPath, 'w');
    let proc: ChildProcess;
    try {
      proc = spawn(underNode ? process.execPath : program, underNode ? [...nodeTitleArgs(title), program, ...s.args] : s.args, {
        stdio: lifelineStdio(log, log), env: deviceModelEnv(s), cwd: s.rundir, argv0: title, detached: true,
      });
    } finally {
      closeSync(log);
    }
    const dm = new DeviceModel(proc, program, logPath);
    const seeLog = `; see ${logPath}`;

    let spawnError: Error | undefined;
    proc.once('error', (e) => { spawnError = e; });
    try {
      if (proc.pid) await ctx.xs.write(`${domainPath(s.domid)}/image/device-model-pid`, String(proc.pid));
      await dm.confirm(ctx, statePath, s.timeoutMs ?? DEVICE_MODEL_START_TIMEOUT_MS, what, seeLog, () => spawnError);
    } catch (e) {
      await dm.kill();
      throw e;
    }
    ctx.log(`${what}: running as pid ${dm.pid} (log ${logPath})`);
    return dm;
  }

  /** libxl__spawn_spawn's watch: `running` confirms; an exit or the timeout fails. */
  private confirm(ctx: BuilderContext, statePath: string, timeoutMs: number, what: string, seeLog: string,
                  spawnError: () => Error | undefined): Promise<void> {
    const token = `xenemu-dm-spawn:${statePath}:${process.pid}`;
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        void ctx.xs.unwatch(statePath, token).catch(() => undefined);
        if (err) reject(err); else resolve();
      };
      const timer = setTimeout(() => finish(new BuildError('EIO', `${what}: startup timed out after ${timeoutMs / 1000} s${seeLog}`)), timeoutMs);
      void this.exited.then((e) => {
        const err = spawnError();
        finish(new BuildError('EIO', err ? `${what}: cannot start ${this.program}: ${err.message}${seeLog}`
          : `${what} [${this.pid}]: ${describeExit(e)}${seeLog}`));
      });
      ctx.xs.watch(statePath, token, () => {
        void ctx.xs.tryRead(statePath).then((v) => { if (v === 'running') finish(); }, () => undefined);
      }).catch((e: Error) => finish(new BuildError('EIO', `${what}: cannot watch ${statePath}: ${e.message}`)));
    });
  }

  private async kill(): Promise<void> {
    this.stopping = true;
    if (this.running) { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }
    await this.exited;
  }

  /** libxl__destroy_device_model: asks it to go (SIGTERM), SIGKILL after a grace period; resolves once it is gone. */
  async stop(graceMs = DEVICE_MODEL_STOP_GRACE_MS): Promise<void> {
    this.stopping = true;
    if (!this.running) return;
    try { this.proc.kill('SIGTERM'); } catch { /* gone */ }
    const timer = setTimeout(() => { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
