// HVM guests: the HVM builder (builder.ts), then the device model
// (device_model.ts, with libxl's arguments from dm_args.ts), and the guest
// is ready to be unpaused. Its vCPU runs in its domain process (the
// hypervisor starts processes/domu at the first unpause); its devices are
// qemu-dm's, a Domain-0 process of its own.
//
// Lifecycle of the device model with its guest:
//   destroy, restart, on_poweroff...   release(): the device model is stopped
//                                      and waited for before the domain goes
//   the device model dies by itself    the guest is crashed at once
//                                      (SCHEDOP_remote_shutdown, SHUTDOWN_crash),
//                                      and the toolstack applies on_crash
//   Domain-0 dies                      its lifeline closes: the device model exits
//
// Consoles: the primary one is serial port 0 (libxl__primary_console_find);
// `xl console` gets the PTY qemu-dm wrote at /local/domain/<id>/serial/<n>/tty,
// and, for port 0, the tail of the serial log qemu-dm writes at
// <rundir>/logs/console/<name>.log (docs/toolstack.md has the contract).
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { HvmDomainConfig } from '../../../../shared/toolstack/xlcfg.js';
import { SCHEDOP_remote_shutdown, SHUTDOWN_crash } from '../../../../shared/abi/sched.js';
import { __HYPERVISOR_hvm_op } from '../../../../shared/abi/xen.js';
import { XEN_DOMCTL_sethvmcontext } from '../../../../shared/abi/domctl.js';
import { errnoName } from '../../../../shared/abi/errno.js';
import { HVMOP_get_param, HVM_PARAM_CALLBACK_IRQ } from '../../../../shared/abi/hvm/params.js';
import { consoleLogFile, hostFiles } from '../../../../shared/host.js';
import { QmpError, qmpCommand, qmpSocketPath } from '../../../../shared/wire/qmp.js';
import type { ScreenshotRecord } from '../../../../shared/toolstack/xend_api.js';
import { BuildError } from '../builder.js';
import { destroyDomain } from '../lifecycle.js';
import { generateMac } from '../vif.js';
import { tapName } from '../../../../shared/wire/tap.js';
import type { ConsoleType, Guest, GuestConsole, GuestContext, GuestKind } from '../guest_kind.js';
import { buildHvmDomain } from './builder.js';
import { DeviceModel, type DeviceModelExit } from './device_model.js';
import { deviceModelArgs, xenPtDeviceArg, type DmNic } from './dm_args.js';
import { addPciDevice, releasePciDevice } from '../pci.js';
import type { PciAddress } from '../pci_assign.js';
import { deviceModelPath } from './xenstore.js';
import { StubDomain } from './stubdom.js';

/** The serial backlog replayed on attach, as xenconsoled's. */
const SERIAL_BACKLOG_BYTES = 64 * 1024;

class HvmGuest implements Guest {
  dm: DeviceModel | undefined;
  /** device_model_stubdomain_override: the device model's own domain (stubdom.ts) instead of `dm`. */
  stub: StubDomain | undefined;
  private stubLost = false;
  /** The serial log's size when this guest's device model started: older bytes are another guest's. */
  serialLogStart = 0;
  private released: Promise<void> | undefined;
  /** Host devices passed through (qemu-dm's xen_pt), given back at release. */
  readonly pci: PciAddress[] = [];

  constructor(private readonly ctx: GuestContext, readonly domid: number, readonly name: string) {}

  get serialLog(): string { return consoleLogFile(join(this.ctx.rundir, hostFiles.logs), this.name, this.domid); }

  async console(type: ConsoleType | undefined, num: number): Promise<GuestConsole> {
    // libxl__primary_console_find: with a stub domain, COM1 is the stub's console.
    if (this.stub && type !== 'pv' && num === 0) {
      const c = this.stub.attachConsole();
      if (!c) throw new BuildError('EINVAL', `Domain ${this.domid}:stub domain ${this.stub.domid} has no console`);
      return c;
    }
    const ttyPath = type === 'pv' ? `/local/domain/${this.domid}/console/tty` : `/local/domain/${this.domid}/serial/${num}/tty`;
    const tty = type === 'pv' ? null : await this.ctx.xs.tryRead(ttyPath).catch(() => null);
    if (!tty) throw new BuildError('EINVAL', `Domain ${this.domid}:Unable to read console tty path \`${ttyPath}'`);
    // What the PTY holds unread is older than the log's tail: drop it, so
    // the client shows the backlog and then reads the PTY, each byte once.
    flushUnread(tty);
    return { ptyPath: tty, backlog: num === 0 ? this.serialBacklog() : new Uint8Array(0) };
  }

  private serialBacklog(): Uint8Array {
    let fd: number;
    try { fd = fs.openSync(this.serialLog, 'r'); } catch { return new Uint8Array(0); }
    try {
      const size = fs.fstatSync(fd).size;
      const from = Math.max(Math.min(this.serialLogStart, size), size - SERIAL_BACKLOG_BYTES);
      const buf = Buffer.alloc(size - from);
      const n = buf.length > 0 ? fs.readSync(fd, buf, 0, buf.length, from) : 0;
      return new Uint8Array(buf.buffer, buf.byteOffset, n);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The device model went without being asked: the guest cannot go on (its devices are gone). */
  crash(e: DeviceModelExit | string): void {
    const how = typeof e === 'string' ? e : `device model [${this.dm?.pid}] died (${e.signal ? `signal ${e.signal}` : `exit status ${e.code}`})`;
    this.ctx.log(`hvm: d${this.domid} '${this.name}': ${how}: crashing the guest`);
    void this.ctx.dom0.hv.sched_op(SCHEDOP_remote_shutdown, { domain_id: this.domid, reason: SHUTDOWN_crash })
      .catch((err: Error) => this.ctx.log(`hvm: d${this.domid}: SCHEDOP_remote_shutdown failed: ${err.message}`));
  }

  /**
   * libxl__domain_pvcontrol_available: an HVM guest hears control/shutdown
   * only through PV drivers, which set HVM_PARAM_CALLBACK_IRQ.
   */
  async refuseShutdown(what: 'shutdown' | 'reboot'): Promise<string | undefined> {
    const r = await this.ctx.dom0.hv.hypercall<{ value: bigint }>(__HYPERVISOR_hvm_op, HVMOP_get_param,
      { domid: this.domid, index: HVM_PARAM_CALLBACK_IRQ });
    if (r.ret < 0 || (r.data?.value ?? 0n) !== 0n) return undefined;
    return `PV control interface not available: external graceful ${what} not possible.\n` +
      `Use "-F" to fallback to ACPI ${what === 'reboot' ? 'reset' : 'power'} event.`;
  }

  /**
   * xl screenshot: the device model's display through its QMP socket, as
   * libxl talks to qemu-xen (x-xenemu-text-screen, and screendump as PNG).
   */
  async screenshot(png: string): Promise<ScreenshotRecord> {
    const path = qmpSocketPath(this.ctx.rundir, this.domid);
    const qmp = <T>(cmd: string, args?: Record<string, unknown>) => qmpCommand<T>(path, cmd, args).catch((e: Error) => {
      throw new BuildError('EIO', `domain ${this.domid}: device model: ${e.message}`);
    });
    type Text = { cols: number; rows: number; lines: string[]; cursor: { row: number; col: number } };
    const text = await qmpCommand<Text>(path, 'x-xenemu-text-screen').catch((e: Error) => {
      if (e instanceof QmpError && e.errorClass === 'GenericError') return null; // a graphics mode
      throw new BuildError('EIO', `domain ${this.domid}: device model: ${e.message}`);
    });
    const st = await qmp<{ mode: string; width: number; height: number }>('x-xenemu-display');
    if (png) await qmp('screendump', { filename: png, format: 'png' });
    return {
      mode: st.mode, width: st.width, height: st.height, png,
      text: text ? { cols: text.cols, rows: text.rows, lines: text.lines, cursorRow: text.cursor.row, cursorCol: text.cursor.col } : null,
    };
  }

  /** VIRQ_DOM_EXC: a stub domain that crashed, shut down or was destroyed takes the guest's devices with it. */
  domainsChanged(domains: ReadonlyMap<number, { flags: number }>): void {
    if (!this.stub || this.stubLost || this.released) return;
    if (StubDomain.running(domains.get(this.stub.domid)?.flags)) return;
    this.stubLost = true;
    this.crash(`stub domain d${this.stub.domid} is gone`);
  }

  async saveDeviceModel(): Promise<Uint8Array> {
    if (this.stub) throw new BuildError('EINVAL', `Domain ${this.domid}: saving a guest whose device model is a stub domain is not supported`);
    const path = qmpSocketPath(this.ctx.rundir, this.domid);
    const file = join(this.ctx.rundir, `qemu-save.${this.domid}`);
    try {
      await qmpCommand(path, 'stop');
      await qmpCommand(path, 'xen-save-devices-state', { filename: file, live: false });
      return new Uint8Array(fs.readFileSync(file));
    } catch (e) {
      throw e instanceof BuildError ? e : new BuildError('EIO', `domain ${this.domid}: device model: ${(e as Error).message}`);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  async resumeDeviceModel(): Promise<void> {
    if (this.stub) return;
    await qmpCommand(qmpSocketPath(this.ctx.rundir, this.domid), 'cont').catch((e: Error) => {
      this.ctx.log(`hvm: d${this.domid}: QMP cont failed: ${e.message}`);
    });
  }

  async close(): Promise<void> {
    await this.dm?.stop();
    // The host is going down: the stub domain goes with every other domain.
  }

  /** libxl__destroy_device_model: stop it, wait for it, remove its directory. */
  release(): Promise<void> {
    this.released ??= (async () => {
      await this.dm?.stop();
      await this.stub?.release();
      // Passed-through devices back to quarantine (libxl__destroy_pcidevs), once qemu-dm let go of them.
      for (const p of this.pci.splice(0)) await releasePciDevice(this.ctx, this.domid, p).catch(() => undefined);
      this.ctx.hotplug?.removeTaps(this.domid);
      await this.ctx.xs.rm(deviceModelPath(this.domid)).catch(() => undefined);
    })();
    return this.released;
  }
}

/** Reads and drops what a PTY slave holds (the device model keeps it raw and holds it open). */
function flushUnread(ptyPath: string): void {
  let fd: number;
  try { fd = fs.openSync(ptyPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY); } catch { return; }
  try {
    const buf = Buffer.allocUnsafe(65536);
    for (let i = 0; i < 64; i++) {
      let got: number;
      try { got = fs.readSync(fd, buf, 0, buf.length, null); } catch { break; }
      if (got <= 0) break;
    }
  } finally {
    fs.closeSync(fd);
  }
}

export const HVM_GUEST: GuestKind<HvmDomainConfig> = {
  type: 'hvm',

  async create(ctx, config, name, restore) {
    if (restore && !restore.hvm) throw new BuildError('EINVAL', `domain "${name}": an HVM guest is restored with its vCPU context and device model state`);
    if (restore && config.device_model_stubdomain_override) throw new BuildError('EINVAL', `domain "${name}": restoring a guest whose device model is a stub domain is not supported`);
    const built = await buildHvmDomain(ctx, {
      name, memoryMB: config.memory, videoramMB: config.videoram, uuid: config.uuid, biosPath: config.bios_path_override,
      apic: config.apic, hap: config.hap, timerMode: config.timer_mode, vptAlign: config.vpt_align,
      acpi: config.acpi, acpiS3: config.acpi_s3, acpiS4: config.acpi_s4,
      ...(restore && 'pages' in restore ? { restorePages: restore.pages } : {}),
      ...(restore && 'precreated' in restore ? { precreated: restore.precreated } : {}),
    });
    const guest = new HvmGuest(ctx, built.domid, name);
    const dmState = join(ctx.rundir, `qemu-resume.${built.domid}`);
    try {
      if (restore?.hvm) {
        // xc_domain_restore's HVM_CONTEXT, then the device model started with
        // its state (libxl: -incoming), before the vCPU runs.
        const r = await ctx.dom0.hv.domctl(XEN_DOMCTL_sethvmcontext, { domain: built.domid, size: restore.hvm.context.byteLength, buffer: restore.hvm.context });
        if (r.ret < 0) throw new BuildError('EIO', `sethvmcontext: ${errnoName(r.ret)}`);
        fs.writeFileSync(dmState, restore.hvm.dm, { mode: 0o600 });
      }
      // Emulated NICs (libxl's nictype VIF_IOEMU): devid by position, a
      // generated MAC kept in the config so that a restart keeps it.
      const nics: DmNic[] = config.vif.map((v, i) => {
        v.mac ??= generateMac();
        return { devid: v.devid ?? i, model: v.model ?? 'e1000', mac: v.mac, bridge: v.bridge ?? 'xenbr0' };
      });
      // libxl__device_pci_add for an HVM guest: assigned before the device
      // model starts, which shows each on the guest's bus (xen-pci-passthrough).
      if (config.pci.length && config.device_model_stubdomain_override) {
        throw new BuildError('EINVAL', `Domain ${built.domid}:PCI passthrough to an HVM guest needs its device model in Domain-0`);
      }
      const pt: string[] = [];
      for (const spec of config.pci) {
        for (const p of await addPciDevice(ctx, built.domid, spec, true, true)) {
          guest.pci.push(p);
          pt.push('-device', xenPtDeviceArg(p, spec.vslot, spec.permissive ?? false));
        }
      }
      if (config.device_model_stubdomain_override) {
        // The NICs are the stub domain's vifs on netback: no taps in Domain-0.
        guest.stub = await StubDomain.spawn(ctx, {
          guestDomid: built.domid, guestName: name, config, nics, args: deviceModelArgs(config, built.domid, name, nics, true),
        });
        return guest;
      }
      // vif-bridge's part: each NIC's port on its bridge, before the device model connects.
      for (const n of nics) await ctx.hotplug?.addTap(tapName(built.domid, n.devid), n.bridge);
      try { guest.serialLogStart = fs.statSync(guest.serialLog).size; } catch { guest.serialLogStart = 0; }
      guest.dm = await DeviceModel.start(ctx, {
        domid: built.domid, name, host: ctx.host, rundir: ctx.rundir, program: config.device_model_override,
        args: [...deviceModelArgs(config, built.domid, name, nics), ...pt, ...(restore?.hvm ? ['-incoming', `file:${dmState}`] : [])],
      });
      fs.rmSync(dmState, { force: true });
      guest.dm.onUnexpectedExit((e) => guest.crash(e));
      return guest;
    } catch (e) {
      fs.rmSync(dmState, { force: true });
      ctx.log(`hvm: d${built.domid} '${name}' failed after the build, destroying it: ${(e as Error).message}`);
      await guest.release();
      await destroyDomain(ctx, built.domid).catch(() => undefined);
      throw e instanceof BuildError ? e : new BuildError('EIO', (e as Error).message);
    }
  },
};
