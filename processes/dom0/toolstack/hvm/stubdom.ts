// A device model in a stub domain (device_model_stubdomain_override = 1), as
// libxl__spawn_stub_dm builds one for Xen 4.17:
//
//   toolstack                                              hypervisor / xenstored
//     PV domain `<guest>-dm`, stubdomain_memory MiB,
//       program qemu-dm --stubdom (stubdomain_kernel) ──►  createdomain ...
//     XEN_DOMCTL_set_target(stub, guest) ─────────────────►  stub may dm_op, map, HVM params of guest only
//     XS_SET_TARGET(stub, guest) ─────────────────────────►  stub has the guest's xenstore rights
//     /local/domain/<stub>/target = guest
//     /local/domain/<guest>/image/device-model-domid = stub
//     <guest /vm>/image/dmargs and dm-argv (the device model's arguments)
//     the guest's disks as the stub's vbds (xvda.. by IDE index), its NICs as
//       the stub's vifs (same devid, MAC, bridge): Domain-0's blkback/netback
//     the stub's console (the guest's COM1) to xenconsoled
//     unpause the stub; wait for /local/domain/<stub>/device-model/<guest>/state
//       = running (bounded): the guest may be unpaused
//
// Domain-0 runs no qemu-dm process for the guest. The stub's arguments are
// libxl's for a stub domain: disks are `/dev/xvdX` (dm_args.ts).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DiskSpec, HvmDomainConfig } from '../../../../shared/toolstack/xlcfg.js';
import {
  XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_set_target, XEN_DOMCTL_unpausedomain, XEN_DOMINF_dying, XEN_DOMINF_shutdown,
} from '../../../../shared/abi/domctl.js';
import { errnoName } from '../../../../shared/abi/errno.js';
import { BuildError, buildPvDomain, type PvDomain } from '../builder.js';
import { destroyDomain } from '../lifecycle.js';
import { removeDomainBackends } from '../device.js';
import { addVbd } from '../vbd.js';
import { addVif } from '../vif.js';
import { connectConsole, disconnectConsole, type WiredConsole } from '../pv_console.js';
import type { GuestContext } from '../guest_kind.js';
import { domainPath } from '../xenstore_layout.js';
import type { DmNic } from './dm_args.js';
import { ideIndex } from './dm_args.js';
import { DEVICE_MODEL_START_TIMEOUT_MS } from './device_model.js';

/** xenemu's device model as a stub domain's program (its kernel, in Xen's words). */
export const STUBDOM_PROGRAM = fileURLToPath(new URL('../../../qemu-dm/main.js', import.meta.url));
export const STUBDOM_ARGS = ['--stubdom'];

/** The stub's vbd for the guest's disk: /dev/xvd<a + IDE index>, as libxl names it in the stub's arguments. */
export function stubDiskVdev(d: DiskSpec): string {
  return `xvd${String.fromCharCode(97 + ideIndex(d.vdev))}`;
}

export interface StubDomainSpec {
  guestDomid: number;
  guestName: string;
  config: HvmDomainConfig;
  nics: readonly DmNic[];
  args: string[];
}

export class StubDomain {
  private console_: WiredConsole | undefined;
  private released: Promise<void> | undefined;

  private constructor(private readonly ctx: GuestContext, readonly domid: number, readonly guestDomid: number) {}

  get statePath(): string { return `${domainPath(this.domid)}/device-model/${this.guestDomid}/state`; }

  static async spawn(ctx: GuestContext, s: StubDomainSpec): Promise<StubDomain> {
    const name = `${s.guestName}-dm`;
    const program = s.config.stubdomain_kernel ?? STUBDOM_PROGRAM;
    if (!/\.m?js$/.test(program) || !existsSync(program)) {
      throw new BuildError('EINVAL', `stub domain kernel ${program} is not there (xenemu runs a JavaScript program as the stub domain)`);
    }
    let built: PvDomain;
    try {
      built = await buildPvDomain(ctx, {
        name, memoryMB: s.config.stubdomain_memory, vcpus: 1, program, args: STUBDOM_ARGS, paused: true, cmdline: '',
      });
    } catch (e) {
      throw e instanceof BuildError ? new BuildError(e.code, `stub domain ${name}: ${e.message}`) : e;
    }
    const stub = new StubDomain(ctx, built.domid, s.guestDomid);
    try {
      await stub.setup(s, built, name);
      return stub;
    } catch (e) {
      ctx.log(`stubdom: d${built.domid} '${name}' failed: ${(e as Error).message}`);
      await stub.release();
      throw e instanceof BuildError ? e : new BuildError('EIO', (e as Error).message);
    }
  }

  private async setup(s: StubDomainSpec, built: PvDomain, name: string): Promise<void> {
    const { ctx } = this;
    const hv = ctx.dom0.hv;
    const r = await hv.domctl(XEN_DOMCTL_set_target, { domain: this.domid, target: s.guestDomid });
    if (r.ret < 0) throw new BuildError('EIO', `XEN_DOMCTL_set_target(d${this.domid}, d${s.guestDomid}): ${errnoName(r.ret)}`);
    await ctx.xs.setTarget(this.domid, s.guestDomid);

    const guestHome = domainPath(s.guestDomid);
    const vm = await ctx.xs.tryRead(`${guestHome}/vm`);
    if (!vm) throw new BuildError('EIO', `d${s.guestDomid} has no /vm path`);
    // xenstore permission strings: Domain-0 owns, the stub reads.
    const stubRead = ['n0', `r${this.domid}`];
    await ctx.xs.transaction(async (tx) => {
      await ctx.xs.write(`${domainPath(this.domid)}/target`, String(s.guestDomid), tx);
      await ctx.xs.write(`${guestHome}/image/device-model-domid`, String(this.domid), tx);
      // libxl__write_stub_dmargs (spaces) and libxl 4.17's dm-argv (ESC): the stub reads them.
      for (const [key, value] of [['dmargs', s.args.join(' ')], ['dm-argv', s.args.join('\x1b')]] as const) {
        await ctx.xs.write(`${vm}/image/${key}`, value, tx);
        await ctx.xs.setPerms(`${vm}/image/${key}`, stubRead, tx);
      }
      // The stub writes its device model's state here.
      const dmDir = `${domainPath(this.domid)}/device-model/${s.guestDomid}`;
      await ctx.xs.write(dmDir, '', tx);
      await ctx.xs.setPerms(dmDir, [`n${this.domid}`], tx);
    });

    for (const d of s.config.disk) {
      if (d.devtype === 'cdrom' && (d.format === 'empty' || !d.target)) continue;
      await addVbd(ctx, this.domid, { ...d, vdev: stubDiskVdev(d), access: d.devtype === 'cdrom' ? 'ro' : d.access });
    }
    for (const n of s.nics) await addVif(ctx, this.domid, { spec: '', devid: n.devid, mac: n.mac, bridge: n.bridge });
    this.console_ = await connectConsole(ctx.dom0, ctx.consoled, ctx.xs, {
      domid: this.domid, name, consoleMfn: built.consoleMfn, consolePort: built.consolePort,
    });

    await ctx.xs.rm(this.statePath).catch(() => undefined);
    const running = this.waitRunning(DEVICE_MODEL_START_TIMEOUT_MS);
    const u = await hv.domctl(XEN_DOMCTL_unpausedomain, { domain: this.domid });
    if (u.ret < 0) throw new BuildError('EIO', `unpausing stub domain d${this.domid}: ${errnoName(u.ret)}`);
    await running;
    ctx.log(`stubdom: d${this.domid} '${name}' runs the device model of d${s.guestDomid}`);
  }

  /** libxl__spawn_stub_dm's wait: `running`, or the stub dying or the bound failing it. */
  private waitRunning(timeoutMs: number): Promise<void> {
    const { ctx } = this;
    const token = `xenemu-stubdom:${this.domid}`;
    const what = `stub domain d${this.domid} device model`;
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poll);
        void ctx.xs.unwatch(this.statePath, token).catch(() => undefined);
        if (err) reject(err); else resolve();
      };
      const timer = setTimeout(() => finish(new BuildError('EIO', `${what}: startup timed out after ${timeoutMs / 1000} s; see logs/dom${this.domid}.log`)), timeoutMs);
      // A stub that crashed before `running` never writes it.
      const poll = setInterval(() => {
        void this.alive().then((ok) => { if (!ok) finish(new BuildError('EIO', `${what} died during startup; see logs/dom${this.domid}.log`)); });
      }, 200);
      ctx.xs.watch(this.statePath, token, () => {
        void ctx.xs.tryRead(this.statePath).then((v) => { if (v === 'running') finish(); }, () => undefined);
      }).catch((e: Error) => finish(new BuildError('EIO', `${what}: cannot watch ${this.statePath}: ${e.message}`)));
    });
  }

  /** The stub exists and has not shut down (crashed, powered off, destroyed). */
  async alive(): Promise<boolean> {
    const r = await this.ctx.dom0.hv.domctl<{ domain: number; flags: number }>(XEN_DOMCTL_getdomaininfo, { domain: this.domid });
    return r.ret >= 0 && r.data?.domain === this.domid && StubDomain.running(r.data.flags);
  }

  /** getdomaininfo's flags of a domain that exists and has not shut down (undefined: it does not exist). */
  static running(flags: number | undefined): boolean {
    return flags !== undefined && (flags & (XEN_DOMINF_dying | XEN_DOMINF_shutdown)) === 0;
  }

  /** The stub's console (the guest's COM1) for `xl console <guest>`. */
  attachConsole(): { ptyPath: string; backlog: Uint8Array } | null {
    return this.ctx.consoled.attach(this.domid) ?? null;
  }

  /** libxl__destroy_device_model for a stub: its console, its back ends, the domain. */
  release(): Promise<void> {
    this.released ??= (async () => {
      const { ctx } = this;
      if (this.console_) await disconnectConsole(ctx.dom0, ctx.consoled, this.console_).catch(() => undefined);
      else await ctx.consoled.removeConsole(this.domid).catch(() => undefined);
      await removeDomainBackends(ctx, this.domid, ['vif', 'vbd']);
      await destroyDomain(ctx, this.domid).catch((e: Error) => ctx.log(`stubdom: destroying d${this.domid}: ${e.message}`));
    })();
    return this.released;
  }
}
