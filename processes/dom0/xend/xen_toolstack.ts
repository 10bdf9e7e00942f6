// The Toolstack xend drives, done for real: hypercalls through Domain-0's
// connection (shared/xen), xenstore through a privileged socket connection
// to xenstored, consoles through xenconsoled, guests built by their kind's
// builder in processes/dom0/toolstack (kinds.ts: PV, HVM). libxl's jobs, in
// libxl's order.
//
//   create:  checks (name, memory, the kind's refusals) -> createGuest: the
//            kind builds the domain paused, with its devices and its console
//            or device model -> scheduler parameters -> unpause
//            any failure: teardown(), nothing half-created is left
//   list:    XEN_SYSCTL_getdomaininfolist + names from xenstore (dominfo.ts)
//   death:   VIRQ_DOM_EXC -> scan (lifecycle below) -> on_poweroff /
//            on_reboot / on_crash of the domain's config
//   teardown: the kind's release (PV: console + its event channel, vif back
//            ends; HVM: the device model, stopped and waited for), then
//            destroydomain (the hypervisor frees ports, grants, segments,
//            kills the process), XS_RELEASE (fires @releaseDomain), the
//            domain's xenstore nodes
//
// Lifecycle: Xen raises VIRQ_DOM_EXC to Dom0 when a domain shuts down (its
// SCHEDOP_shutdown, or the hypervisor marking it crashed when its process
// died) and when one is destroyed. We then read every domain's info once,
// act on each domain that newly shut down, and forget domains that vanished.
// Scans never overlap: an event during a scan asks for one more scan.
// VIRQ_DOM_EXC is bound once, by processes/dom0/toolstack's
// DomainExceptions, which also serves waitForShutdown.
import {
  XEN_DOMCTL_SENDTRIGGER_POWER, XEN_DOMCTL_SENDTRIGGER_SLEEP, XEN_DOMCTL_pausedomain, XEN_DOMCTL_sendtrigger,
  XEN_DOMCTL_unpausedomain, type xen_domctl_getdomaininfo,
} from '../../../shared/abi/domctl.js';
import {
  XEN_SYSCTL_getdomaininfolist, XEN_SYSCTL_physinfo, XEN_SYSCTL_readconsole,
  type xen_sysctl_physinfo,
} from '../../../shared/abi/sysctl.js';
import { XEN_ESRCH, errnoName } from '../../../shared/abi/errno.js';
import type { XenDomain } from '../../../shared/xen/index.js';
import type { XsClient } from '../../../shared/xenstore/client.js';
import type { ActionOnShutdown, DomainConfig } from '../../../shared/toolstack/xlcfg.js';
import type { DomainTrigger, NodeInfo, ScreenshotRecord } from '../../../shared/toolstack/xend_api.js';
import type { Xenconsoled } from '../xenconsoled/xenconsoled.js';
import type { NicHotplug } from '../toolstack/guest_kind.js';
import {
  BuildError, createGuest, destroyDomain, DomainExceptions, refuseGuest, setMemoryTarget, setVcpus, shutdownDomain,
  type ConsoleType, type Guest, type GuestContext,
} from '../toolstack/index.js';
import type { RestoreFrom } from '../toolstack/guest_kind.js';
import { createPvShellFor, preparePvIncoming, type PreparedPvGuest } from '../toolstack/pv_kind.js';
import { Steps } from '../toolstack/steps.js';
import { ToolstackError, type ConsoleAttach, type DomainInfo, type Toolstack } from './toolstack.js';
import { shutdownReasonName, toDomainInfo, type DomainMeta } from './dominfo.js';
import { nodeInfo, type XenVersionInfo } from './nodeinfo.js';
import { __HYPERVISOR_xen_version } from '../../../shared/abi/xen.js';
import {
  XENVER_capabilities, XENVER_changeset, XENVER_commandline, XENVER_compile_info, XENVER_extraversion, XENVER_pagesize,
  XENVER_platform_parameters, XENVER_version,
} from '../../../shared/abi/version.js';
import { libxlDomainConfig, removeUserdata, storeLibxlJson } from '../toolstack/libxl_json.js';
import { XenSchedControl } from './sched_control.js';
import { XenPciControl } from './pci_control.js';
import { addVif, findVif, listVifs, removeVif } from '../toolstack/vif.js';
import { removeDomainBackends } from '../toolstack/device.js';
import { parseVifSpec } from '../../../shared/toolstack/xlcfg.js';
import type { NetworkDeviceRecord } from './toolstack.js';
import { addVbd, findVbd, listVbds, removeVbd } from '../toolstack/vbd.js';
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync, fsyncSync } from 'node:fs';
import { domainSegments, mapForeignDomain } from '../../../shared/xen/index.js';
import { populatedRuns, WriteLog } from '../../../shared/dirty.js';
import { MigrationThrottle } from './migration_throttle.js';
import { DomainLogDirty } from './log_dirty.js';
import { SCHEDOP_remote_shutdown, SHUTDOWN_suspend } from '../../../shared/abi/sched.js';
import {
  XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_gethvmcontext, XEN_DOMCTL_resumedomain, XEN_DOMINF_shutdown, XEN_DOMINF_shutdownshift,
} from '../../../shared/abi/domctl.js';
import { createHvmShell } from '../toolstack/hvm/builder.js';
import { hvmLayout } from '../toolstack/hvm/layout.js';
import type { HvmSaved } from '../toolstack/save_image.js';
import { SaveImageError, decodeSaveImage, encodeSaveImage } from '../toolstack/save_image.js';
import { MigrationReceiver, MigrationRefused, MigrationSender, STATUS_WAIT_MS, type MigrationProgress, type MigrationSummary } from './migration.js';
import { askPeers, nameInPool, ownPool } from './pool.js';
import { stateString, type PoolGuest, type PoolView } from '../../../shared/toolstack/xend_api.js';
import { parseDiskSpec, XlCfgError } from '../../../shared/toolstack/xlcfg.js';
import type { BlockDeviceRecord, PciDeviceRecord } from './toolstack.js';
import { addPciDevice, listPciDevices, removePciDevice } from '../toolstack/pci.js';
import { parsePciSpec, type PciSpec } from '../../../shared/toolstack/xlcfg.js';

export interface XenToolstackOptions {
  dom0: XenDomain;
  xs: XsClient;
  consoled: Xenconsoled;
  log: (msg: string) => void;
  /** Emulated NICs' bridge ports (netback). */
  hotplug?: NicHotplug;
}

/** A domain this toolstack created: its config and what its kind keeps of it. */
interface Managed extends DomainMeta {
  domid: number;
  config: DomainConfig;
  guest: Guest;
  /** Its shutdown has been acted upon (preserve keeps it, handled). */
  handled: boolean;
}

// xl restarts a domain that keeps dying; a guest that dies at once would
// loop forever, so more than this many restarts within the window destroy it.
const RESTART_LIMIT = 5;
/** How long a guest has to suspend (libxl's suspend timeout is 60 s for a PV guest; xenemu's kernel takes milliseconds). */
const SUSPEND_TIMEOUT_MS = 10_000;
/** How long the target may take to unpause the guest after `go` before the source asks it what happened. */
const MIGRATION_GO_TIMEOUT_MS = 5_000;
const RESTART_WINDOW_MS = 10_000;

const nowS = () => Math.floor(Date.now() / 1000);

/** The frames of a guest's memory segment: maxmem (PV), or memory and libxl's slack (HVM: LIBXL_MAXMEM_CONSTANT). */
function framesOf(config: DomainConfig): number {
  if (config.type === 'hvm') return (hvmLayout(config.memory, config.videoram)?.maxKb ?? 0) / 4;
  return Math.ceil((config.maxmem ?? config.memory) * 256);
}

export class XenToolstack implements Toolstack {
  private readonly dom0: XenDomain;
  private readonly xs: XsClient;
  private readonly consoled: Xenconsoled;
  private readonly log: (msg: string) => void;
  private readonly managed = new Map<number, Managed>();
  /** Names of domains being created, so two creates cannot take one name. */
  private readonly creating = new Set<string>();
  /** Incoming migrations' domains before their commit: domid -> the name they reserve and the guest prepared. */
  private readonly incoming = new Map<number, { name: string; prepared?: PreparedPvGuest }>();
  /** Migrations under way, by the source domain's id. */
  private readonly migrations = new Map<number, MigrationSender>();
  /** Domains being torn down: one teardown each, others wait for it. */
  private readonly tearing = new Map<number, Promise<void>>();
  /** Restart times per domain name (the restart guard). */
  private readonly restarts = new Map<string, number[]>();
  private readonly dom0Start = nowS() - Math.floor(process.uptime());
  private readonly ctx: GuestContext;
  /** sched-credit, vcpu-list, vcpu-pin; cpu_weight, cap and cpus at create. */
  readonly sched: XenSchedControl;
  readonly pci: XenPciControl;
  private exc: DomainExceptions | undefined;
  private receiver: MigrationReceiver | undefined;
  private scanning: Promise<void> | null = null;
  private rescan = false;
  private closed = false;

  private constructor(o: XenToolstackOptions) {
    this.dom0 = o.dom0;
    this.xs = o.xs;
    this.consoled = o.consoled;
    this.log = o.log;
    this.ctx = { dom0: o.dom0, xs: o.xs, log: o.log, consoled: o.consoled, rundir: o.dom0.rundir, host: o.dom0.host, hotplug: o.hotplug };
    this.sched = new XenSchedControl(o.dom0);
    this.pci = new XenPciControl(o.dom0);
  }

  /** Binds VIRQ_DOM_EXC: from then on, dying domains are acted upon. */
  static async start(o: XenToolstackOptions): Promise<XenToolstack> {
    const ts = new XenToolstack(o);
    ts.exc = await DomainExceptions.bind(o.dom0);
    ts.exc.onEvent(() => ts.onDomExc());
    return ts;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.exc?.close();
    this.receiver?.close();
    await this.scanning?.catch(() => undefined);
    // The device models are Domain-0's processes: they go before it does.
    await Promise.all([...this.managed.values()].map((m) => m.guest.close?.().catch(() => undefined)));
  }

  /** processes/dom0/toolstack's errors, as xl would print them. */
  private async lib<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof BuildError) throw new ToolstackError(e.code, `libxl: error: ${e.message}`);
      throw e;
    }
  }

  // --- queries ---------------------------------------------------------

  private async rawList(): Promise<xen_domctl_getdomaininfo[]> {
    const r = await this.dom0.hv.sysctl<{ buffer: xen_domctl_getdomaininfo[] }>(XEN_SYSCTL_getdomaininfolist,
      { first_domain: 0, max_domains: 1024 });
    if (r.ret < 0) throw new ToolstackError('EIO', `getdomaininfolist failed: ${errnoName(r.ret)}`);
    return r.data?.buffer ?? [];
  }

  /** Name and start time: ours when we made it, else from xenstore (libxl reads them there). */
  private async meta(raw: xen_domctl_getdomaininfo): Promise<DomainMeta> {
    if (raw.domain === 0) return { name: 'Domain-0', startTime: this.dom0Start };
    const m = this.managed.get(raw.domain);
    if (m) return m;
    const dom = `/local/domain/${raw.domain}`;
    const name = await this.xs.tryRead(`${dom}/name`).catch(() => null);
    const vm = await this.xs.tryRead(`${dom}/vm`).catch(() => null);
    const st = vm ? await this.xs.tryRead(`${vm}/start_time`).catch(() => null) : null;
    return { name: name ?? '(null)', startTime: st ? Math.floor(Number(st)) : nowS() };
  }

  async list(): Promise<DomainInfo[]> {
    const raws = await this.rawList();
    return Promise.all(raws.map(async (r) => toDomainInfo(r, await this.meta(r))));
  }

  async get(domid: number): Promise<DomainInfo> {
    const d = (await this.list()).find((x) => x.domid === domid);
    if (!d) throw new ToolstackError('ESRCH', `Domain ${domid} does not exist.`);
    return d;
  }

  private async physinfo(): Promise<xen_sysctl_physinfo> {
    const r = await this.dom0.hv.sysctl<xen_sysctl_physinfo>(XEN_SYSCTL_physinfo);
    if (r.ret < 0 || !r.data) throw new ToolstackError('EIO', `physinfo failed: ${errnoName(r.ret)}`);
    return r.data;
  }

  /** libxl_get_version_info: the hypervisor's HYPERVISOR_xen_version answers. */
  private async version(): Promise<XenVersionInfo> {
    const ask = async (cmd: number) => {
      const r = await this.dom0.hv.hypercall<Record<string, unknown>>(__HYPERVISOR_xen_version, cmd);
      return { ret: r.ret, data: r.data ?? {} };
    };
    const [ver, extra, compile, caps, chg, plat, page, cmdline] = await Promise.all([
      XENVER_version, XENVER_extraversion, XENVER_compile_info, XENVER_capabilities, XENVER_changeset,
      XENVER_platform_parameters, XENVER_pagesize, XENVER_commandline].map(ask));
    const str = (r: { data: Record<string, unknown> }, k: string) => String(r.data[k] ?? '');
    return {
      major: ver!.ret >> 16, minor: ver!.ret & 0xffff, extra: str(extra!, 'extraversion'),
      capabilities: str(caps!, 'capabilities'), changeset: str(chg!, 'changeset'),
      virtStart: BigInt((plat!.data.virt_start as bigint | number | undefined) ?? 0), pagesize: page!.ret,
      commandline: str(cmdline!, 'commandline'), compiler: str(compile!, 'compiler'), compileBy: str(compile!, 'compile_by'),
      compileDomain: str(compile!, 'compile_domain'), compileDate: str(compile!, 'compile_date'), buildId: '',
    };
  }

  async info(): Promise<NodeInfo> {
    return nodeInfo(await this.physinfo(), await this.version(), await this.dmesg(false));
  }

  async dmesg(clear: boolean): Promise<string> {
    const r = await this.dom0.hv.sysctl<{ text: string }>(XEN_SYSCTL_readconsole, { index: 0, count: 1 << 20, clear: clear ? 1 : 0 });
    if (r.ret < 0) throw new ToolstackError('EIO', `readconsole failed: ${errnoName(r.ret)}`);
    return r.data?.text ?? '';
  }

  async console(domid: number, type?: ConsoleType, num = 0): Promise<ConsoleAttach> {
    if (domid === 0) throw new ToolstackError('EINVAL', "Domain-0's console is the hypervisor's: see `xl dmesg`");
    const m = this.managed.get(domid);
    if (m) return this.lib(() => m.guest.console(type, num));
    const a = this.consoled.attach(domid);
    if (!a) throw new ToolstackError('EINVAL', `Domain ${domid} has no console`);
    return a;
  }

  // --- create ----------------------------------------------------------

  async create(config: DomainConfig, paused = false): Promise<DomainInfo> {
    if (this.closed) throw new ToolstackError('EIO', 'xend is shutting down');
    const refused = refuseGuest(config);
    if (refused) throw new ToolstackError('EINVAL', refused);
    const names = (await this.list()).map((d) => d.name);
    if (names.includes(config.name) || this.creating.has(config.name)) {
      throw new ToolstackError('EEXIST', `domain with name "${config.name}" already exists.`);
    }
    this.creating.add(config.name);
    try {
      await this.refusePoolName(config.name);
      const phys = await this.physinfo();
      const freeMiB = Math.floor(phys.free_pages / 256);
      if (config.memory > freeMiB) throw enomem(config, freeMiB);
      return await this.build(config, config.name, paused);
    } finally {
      this.creating.delete(config.name);
    }
  }

  private async build(config: DomainConfig, name = config.name, paused = false, restore?: RestoreFrom): Promise<DomainInfo> {
    let guest: Guest;
    try {
      guest = await createGuest(this.ctx, config, name, restore);
    } catch (e) {
      if (e instanceof BuildError && e.code === 'ENOMEM') {
        const phys = await this.physinfo().catch(() => undefined);
        throw enomem(config, phys ? Math.floor(phys.free_pages / 256) : undefined);
      }
      if (e instanceof BuildError) throw new ToolstackError(e.code, `libxl: error: domain "${name}": ${e.message}`);
      throw e;
    }
    const m: Managed = { domid: guest.domid, name, startTime: nowS(), config, guest, handled: false };
    this.managed.set(guest.domid, m);
    try {
      // libxl's record of the config, for Xen's own tools (xl list -l, mem-set).
      const uuid = (await this.get(guest.domid)).uuid;
      storeLibxlJson(this.ctx.rundir, guest.domid, uuid, libxlDomainConfig({ ...config, name }, uuid));
      await this.sched.applyConfig(guest.domid, config);
      if (!paused) {
        const r = await this.dom0.hv.domctl(XEN_DOMCTL_unpausedomain, { domain: guest.domid });
        if (r.ret < 0) throw new ToolstackError('EIO', `unpausing domain ${guest.domid} failed: ${errnoName(r.ret)}`);
      }
    } catch (e) {
      this.log(`xend: d${guest.domid} '${name}' failed after the build, destroying it: ${(e as Error).message}`);
      await this.teardown(guest.domid);
      throw e instanceof ToolstackError ? e : new ToolstackError('EIO', `libxl: error: domain "${name}": ${(e as Error).message}`);
    }
    this.log(`xend: d${guest.domid} '${name}' created (${config.type}, ${config.memory} MiB, ${config.vcpus} vCPUs${paused ? ', paused' : ''})`);
    return this.get(guest.domid);
  }

  // --- control ---------------------------------------------------------

  private async mustExist(domid: number): Promise<DomainInfo> {
    return this.get(domid);
  }

  async destroy(domid: number): Promise<void> {
    if (domid === 0) throw new ToolstackError('EPERM', 'Cannot destroy privileged domain 0');
    await this.mustExist(domid);
    await this.teardown(domid);
  }

  async pause(domid: number): Promise<void> {
    if (domid === 0) throw new ToolstackError('EPERM', 'Cannot pause Domain-0');
    await this.domctl(XEN_DOMCTL_pausedomain, domid, 'pause');
  }

  async unpause(domid: number): Promise<void> {
    if (domid === 0) return;
    await this.domctl(XEN_DOMCTL_unpausedomain, domid, 'unpause');
  }

  /** libxl_send_trigger: XEN_DOMCTL_sendtrigger on vCPU 0. */
  async trigger(domid: number, trigger: DomainTrigger): Promise<void> {
    const code = trigger === 'power' ? XEN_DOMCTL_SENDTRIGGER_POWER : XEN_DOMCTL_SENDTRIGGER_SLEEP;
    const r = await this.dom0.hv.domctl(XEN_DOMCTL_sendtrigger, { domain: domid, trigger: code, vcpu: 0 });
    if (r.ret === -XEN_ESRCH) throw new ToolstackError('ESRCH', `Domain ${domid} does not exist.`);
    if (r.ret < 0) throw new ToolstackError('EINVAL', `libxl: error: Send trigger '${trigger}' failed: ${errnoName(r.ret)}`);
  }

  async screenshot(domid: number, png: string): Promise<ScreenshotRecord> {
    await this.mustExist(domid);
    const g = this.managed.get(domid)?.guest;
    if (!g?.screenshot) throw new ToolstackError('EINVAL', `Domain ${domid} has no emulated display: it is not an HVM guest`);
    return this.lib(() => g.screenshot!(png));
  }

  /**
   * xl save (libxl_domain_suspend): the guest suspends itself (control/shutdown
   * = suspend, SCHEDOP_shutdown(suspend)); its configuration and pages go to
   * `file` (save_image.ts); then it is destroyed, or resumed in place
   * (`keep`: xl save -c; `paused`: -p, resumed but paused).
   */
  async save(domid: number, file: string, opts: { keep: boolean; paused: boolean }): Promise<void> {
    if (domid === 0) throw new ToolstackError('EPERM', 'Cannot save Domain-0');
    const d = await this.mustExist(domid);
    const m = this.managed.get(domid);
    if (!m) throw new ToolstackError('EINVAL', `Domain ${domid} was not created by this toolstack: no configuration to save`);
    this.refuseKind(m, d, 'save');
    await this.refusePassthrough(domid, 'save');
    if (d.shutdown || d.dying) throw new ToolstackError('EINVAL', `Domain ${domid} is shut down: nothing to save`);
    const t0 = performance.now();
    await this.suspendGuest(domid, m);
    const tSuspended = performance.now();
    try {
      const hvm = await this.hvmSaved(domid, m);
      const mem = await mapForeignDomain(this.dom0.hv, domid);
      const config = { ...m.config, name: m.name, uuid: d.uuid };
      const tmp = `${file}.tmp-${process.pid}`;
      const fd = openSync(tmp, 'w', 0o600);
      try {
        for (const part of encodeSaveImage(config, mem.bytes, { major: 4, minor: 17 }, hvm)) writeSync(fd, part);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, file);
    } catch (e) {
      // The guest is not lost: it runs on as if the save had not been asked.
      await this.resumeGuest(domid, m);
      rmSync(`${file}.tmp-${process.pid}`, { force: true });
      throw new ToolstackError('EIO', `libxl: error: saving domain ${domid} to ${file}: ${(e as Error).message}`);
    }
    this.log(`xend: d${domid} '${m.name}' saved to ${file} (suspend ${(tSuspended - t0).toFixed(0)} ms, write ${(performance.now() - tSuspended).toFixed(0)} ms)`);
    if (opts.keep || opts.paused) {
      if (opts.paused) await this.dom0.hv.domctl(XEN_DOMCTL_pausedomain, { domain: domid });
      const r = await this.resumeGuest(domid, m);
      if (r < 0) throw new ToolstackError('EIO', `libxl: error: resuming domain ${domid}: ${errnoName(r)}`);
      return;
    }
    await this.teardown(domid);
  }

  /** libxl__domain_suspend for a PV guest: control/shutdown = suspend, and the wait for SHUTDOWN_suspend. */
  /**
   * Asks the guest to suspend and waits until it did. Returns when the
   * guest acknowledged the request (cleared control/shutdown, as Linux's
   * shutdown_handler does before it quiesces): from then on it serves
   * nothing, so a migration's downtime starts there, not while a busy guest
   * still works before it looks at the request.
   */
  private async suspendGuest(domid: number, m: Managed, onAck?: () => void): Promise<number> {
    if (m.config.type === 'hvm') return this.suspendHvm(domid, onAck);
    const path = `/local/domain/${domid}/control/shutdown`;
    const token = `suspend-ack-${domid}-${Date.now()}`;
    let ackAt = 0;
    let asked = false;
    await this.xs.watch(path, token, () => {
      if (!asked || ackAt) return;
      void this.xs.tryRead(path).then((v) => { if (v === '' && !ackAt) { ackAt = performance.now(); onAck?.(); } }).catch(() => undefined);
    });
    try {
      const t0 = performance.now();
      asked = true;
      await this.xs.write(path, 'suspend');
      if (!(await this.waitSuspended(domid, SUSPEND_TIMEOUT_MS))) {
        await this.xs.write(path, '').catch(() => undefined);
        throw new ToolstackError('EIO', `libxl: error: guest ${domid} did not suspend within ${SUSPEND_TIMEOUT_MS / 1000} s (has it a PV control interface?)`);
      }
      return ackAt || t0;
    } finally {
      await this.xs.unwatch(path, token).catch(() => undefined);
    }
  }

  /**
   * libxl__domain_suspend for an HVM guest without PV drivers
   * (xc_domain_shutdown(SHUTDOWN_suspend)): the hypervisor asks its vCPU,
   * which stops between two runs, keeps its context for gethvmcontext and
   * suspends the domain.
   */
  private async suspendHvm(domid: number, onAck?: () => void): Promise<number> {
    const t0 = performance.now();
    const r = await this.dom0.hv.sched_op(SCHEDOP_remote_shutdown, { domain_id: domid, reason: SHUTDOWN_suspend });
    if (r.ret < 0) throw new ToolstackError('EIO', `libxl: error: suspending domain ${domid}: ${errnoName(r.ret)}`);
    // The vCPU takes the request at its next turn, without the guest's say:
    // asked is acknowledged.
    onAck?.();
    if (!(await this.waitSuspended(domid, SUSPEND_TIMEOUT_MS))) {
      throw new ToolstackError('EIO', `libxl: error: guest ${domid} did not suspend within ${SUSPEND_TIMEOUT_MS / 1000} s`);
    }
    return t0;
  }

  /** An HVM guest's vCPU context and device model state, once it suspended; undefined for PV. */
  private async hvmSaved(domid: number, m: Managed): Promise<HvmSaved | undefined> {
    if (m.config.type !== 'hvm') return undefined;
    const r = await this.dom0.hv.domctl<{ buffer: Uint8Array }>(XEN_DOMCTL_gethvmcontext, { domain: domid });
    if (r.ret < 0 || !r.data?.buffer) throw new ToolstackError('EIO', `libxl: error: gethvmcontext of domain ${domid}: ${errnoName(r.ret)}`);
    const dm = await this.lib(() => m.guest.saveDeviceModel!());
    return { context: new Uint8Array(r.data.buffer), dm };
  }

  /** A suspended guest runs on in place (XEN_DOMCTL_resumedomain; an HVM guest's device model first: QMP cont). */
  private async resumeGuest(domid: number, m: Managed): Promise<number> {
    await m.guest.resumeDeviceModel?.();
    return (await this.dom0.hv.domctl(XEN_DOMCTL_resumedomain, { domain: domid })).ret;
  }

  /** Kinds that can be saved and moved: PV, and HVM with its device model in Domain-0, running. */
  private refuseKind(m: Managed, d: DomainInfo, what: 'save' | 'migrate'): void {
    const t = m.config.type;
    if (t !== 'pv' && t !== 'hvm') throw new ToolstackError('EINVAL', `libxl: error: ${what === 'save' ? 'saving' : 'migrating'} ${t} guests is not supported yet (PV and HVM guests only)`);
    if (t === 'hvm' && m.config.device_model_stubdomain_override) {
      throw new ToolstackError('EINVAL', `libxl: error: Domain ${m.domid}: cannot ${what} an HVM guest whose device model is a stub domain`);
    }
    if (t === 'hvm' && d.paused) {
      throw new ToolstackError('EINVAL', `libxl: error: Domain ${m.domid}: an HVM guest's vCPU saves its state itself: unpause it first (xl unpause)`);
    }
  }

  /**
   * xl migrate: the guest to the host whose xend listens at `target`
   * (migration.ts). `live`: pre-copy rounds while it runs, then the dirty
   * rest after the suspend; else all of it after the suspend. The guest is
   * destroyed here only once the target runs it; if anything fails, it runs
   * on here.
   */
  async migrate(domid: number, target: string, live: boolean): Promise<MigrationSummary> {
    if (domid === 0) throw new ToolstackError('EPERM', 'Cannot migrate Domain-0');
    const d = await this.mustExist(domid);
    const m = this.managed.get(domid);
    if (!m) throw new ToolstackError('EINVAL', `Domain ${domid} was not created by this toolstack: no configuration to send`);
    this.refuseKind(m, d, 'migrate');
    await this.refusePassthrough(domid, 'migrate');
    if (d.shutdown || d.dying) throw new ToolstackError('EINVAL', `Domain ${domid} is shut down: nothing to migrate`);
    if (!/^[^\s:/]+:\d{1,5}$/.test(target)) throw new ToolstackError('EINVAL', `migration target must be HOST:PORT, not '${target}'`);
    const t0 = performance.now();
    const mem = await mapForeignDomain(this.dom0.hv, domid);
    const log = live ? await this.logDirty(domid, mem.nrFrames) : null;
    const segment = (await domainSegments(this.dom0.hv, domid)).mem;
    const before = { mapMs: performance.now() - t0, beginMs: 0, precopyMs: 0, ackMs: 0 };
    const tx = new MigrationSender(target, mem.bytes, {
      populated: () => populatedRuns(segment),
      clean: log ? (final) => log.clean(final) : null,
      complete: log instanceof DomainLogDirty,
    });
    const throttle = new MigrationThrottle(this.sched, domid, this.log);
    this.migrations.set(domid, tx);
    let suspended = false;
    let targetDomid = -1;
    let tStop = 0;
    let commitSteps: Record<string, number> = {};
    const parts = { suspendMs: 0, lastRoundMs: 0, commitMs: 0, goMs: 0 };
    try {
      try {
        const tBegin = performance.now();
        await tx.begin({ ...m.config, name: m.name, uuid: d.uuid }, this.dom0.host);
        before.beginMs = performance.now() - tBegin;
        if (live) await tx.precopy(() => throttle.step());
        before.precopyMs = performance.now() - tBegin - before.beginMs;
        tx.phase = 'stopcopy';
        // Its full speed back once it has seen the request: the suspend
        // (freezing, writing its record) is downtime and must not crawl,
        // but until then, a capped guest dirties little.
        const tAsk = performance.now();
        let acked = false;
        const suspending = this.suspendGuest(domid, m, () => { acked = true; void throttle.release().catch(() => undefined); });
        // Until the guest acknowledges the request it runs, and what it
        // writes meanwhile is sent now rather than while it is stopped: with
        // write-protection a round costs only the pages it wrote.
        let failed = false;
        suspending.catch(() => { failed = true; });
        while (live && log && !acked && !failed) {
          await tx.round(tx.rounds.length, 'dirty');
          await new Promise((r) => setTimeout(r, 1));
        }
        tStop = await suspending;
        before.ackMs = tStop - tAsk;
        await throttle.release();
        suspended = true;
        const hvm = await this.hvmSaved(domid, m);
        parts.suspendMs = performance.now() - tStop;
        await tx.round(tx.rounds.length, 'final');
        parts.lastRoundMs = tx.rounds.at(-1)!.ms;
        tx.phase = 'commit';
        const tCommit = performance.now();
        const c = await tx.commit({ ...m.config, name: m.name, uuid: d.uuid }, hvm);
        targetDomid = c.domid;
        commitSteps = c.steps;
        parts.commitMs = performance.now() - tCommit;
      } catch (e) {
        // The target holds at most a paused copy, which it destroys on abort or without a go.
        tx.abort();
        await throttle.release().catch(() => undefined);
        if (suspended) await this.resumeGuest(domid, m);
        this.log(`xend: migrating d${domid} to ${target} failed, it runs on here: ${(e as Error).message}`);
        throw e instanceof ToolstackError ? e : new ToolstackError('EIO', `libxl: error: migration of domain ${domid} to ${target} failed: ${(e as Error).message}`);
      }
      // As xl does before its "go": the name passes to the target's copy.
      const away = `${m.name}--migratedaway`;
      await this.renameManaged(domid, m, away);
      let outcome: Awaited<ReturnType<MigrationSender['settle']>> = 'running';
      tx.phase = 'go';
      const tGo = performance.now();
      try {
        await tx.go(MIGRATION_GO_TIMEOUT_MS);
        parts.goMs = performance.now() - tGo;
      } catch (e) {
        if (e instanceof MigrationRefused) outcome = 'gone';
        else {
          this.log(`xend: no answer from ${target} to go for d${domid}: ${(e as Error).message}; asking what became of it`);
          outcome = await tx.settle(STATUS_WAIT_MS);
        }
      }
      if (outcome === 'running') {
        const downtimeMs = performance.now() - tStop;
        this.log(`xend: d${domid} '${m.name}' migrated to ${target} as d${targetDomid}: ${tx.rounds.length} rounds, ` +
          `${(tx.sentBytes / 1048576).toFixed(1)} MiB, downtime ${downtimeMs.toFixed(0)} ms`);
        await this.teardown(domid);
        return { domid, target, live, logDirty: log ? 'write-protect' : 'compare', rounds: tx.rounds, sentBytes: tx.sentBytes, downtimeMs, totalMs: performance.now() - t0, targetDomid, downtimeParts: parts, beforeParts: before, commitSteps,
                 stopPages: log instanceof DomainLogDirty ? 'log-dirty' : 'compare' };
      }
      if (outcome === 'gone' || outcome === 'refused') {
        await this.renameManaged(domid, m, m.name.replace(/--migratedaway$/, ''));
        await this.resumeGuest(domid, m);
        const why = outcome === 'gone' ? 'the target did not start it' : `nothing listens at ${target} any more (its host is down)`;
        this.log(`xend: migrating d${domid} to ${target} failed after the commit: ${why}; it runs on here`);
        throw new ToolstackError('EIO', `libxl: error: migration of domain ${domid} to ${target} failed: ${why}; the domain runs on here`);
      }
      this.log(`xend: d${domid} left suspended as '${away}': ${target} did not say whether it runs the guest`);
      throw new ToolstackError('EIO', `libxl: error: migration of domain ${domid} to ${target}: the target did not confirm the guest's start ` +
        `and could not be asked: domain state unknown. It is left suspended here as '${away}' so that it never runs twice; ` +
        `once the target is reachable, \`xl list\` there tells whether it runs, and \`xl destroy ${away}\` here frees this copy.`);
    } finally {
      this.migrations.delete(domid);
      tx.close();
      if (log instanceof DomainLogDirty) await log.off();
    }
  }

  /**
   * Log-dirty for a live migration of `domid`: write-protection of its
   * domain process's mapping (shared/dirty.ts), or null, and a log line
   * saying why, when pages are compared instead. XENEMU_LOGDIRTY=compare
   * asks for the comparison.
   */
  private async logDirty(domid: number, maxPfns: number): Promise<{ clean(final?: boolean): Promise<ArrayLike<number>> } | null> {
    if (process.env.XENEMU_LOGDIRTY === 'compare') {
      this.log(`xend: d${domid}: log-dirty by comparing pages (XENEMU_LOGDIRTY=compare)`);
      return null;
    }
    const info = (await this.dom0.hv.domctl<xen_domctl_getdomaininfo>(XEN_DOMCTL_getdomaininfo, { domain: domid })).data;
    const seg = await domainSegments(this.dom0.hv, domid);
    const wp = info?.pid ? WriteLog.open(info.pid, seg.mem, seg.mem_bytes) : 'the domain has no process';
    if (typeof wp === 'string') {
      this.log(`xend: d${domid}: log-dirty by comparing pages: no write-protection (${wp})`);
      return null;
    }
    // The ring frames xenstored and xenconsoled write through their own mappings.
    const dom = `/local/domain/${domid}`;
    const rings = (await Promise.all([`${dom}/store/ring-ref`, `${dom}/console/ring-ref`].map((p) => this.xs.tryRead(p).catch(() => null))))
      .map(Number).filter((n) => Number.isInteger(n) && n >= 0);
    const log = process.env.XENEMU_LOGDIRTY === 'guest' ? 'XENEMU_LOGDIRTY=guest' : await DomainLogDirty.enable(this.dom0.hv, domid, wp, rings, maxPfns);
    if (typeof log === 'string') {
      this.log(`xend: d${domid}: log-dirty by write-protection (userfaultfd) of its process's mapping; the stop compares every page (${log})`);
      return { clean: async () => wp.clean() };
    }
    this.log(`xend: d${domid}: log-dirty by write-protection (userfaultfd) of its process's mapping and the hypervisor's log of grant writes`);
    return log;
  }

  migrateProgress(domid: number): MigrationProgress | null {
    return this.migrations.get(domid)?.progress() ?? null;
  }

  /** A managed guest's name, in xenstore and in xend's records. */
  private async renameManaged(domid: number, m: { name: string }, name: string): Promise<void> {
    await this.xs.write(`/local/domain/${domid}/name`, name).catch(() => undefined);
    m.name = name;
  }

  // --- pool (pool.ts) ----------------------------------------------------

  /** This host's guests (Domain-0 left out), as a pool peer is told them. */
  private async poolGuests(): Promise<PoolGuest[]> {
    return (await this.list()).filter((d) => d.domid !== 0).sort((a, b) => a.domid - b.domid)
      .map((d) => ({ name: d.name, domid: d.domid, state: stateString(d) }));
  }

  /** A guest name a pool peer runs is refused as one in use here is. */
  private async refusePoolName(name: string): Promise<void> {
    const peer = await nameInPool(this.dom0.rundir, name, this.log);
    if (peer) throw new ToolstackError('EEXIST', poolNameMessage(name, peer));
  }

  /** xenemu pool: this host, its guests and what its peers answer over the pool's network. */
  async poolView(): Promise<PoolView> {
    const own = ownPool(this.dom0.rundir);
    return { host: this.dom0.host, pool: own?.pool ?? '', listen: own?.listen ?? '', guests: await this.poolGuests(),
             peers: await askPeers(this.dom0.rundir) };
  }

  /** xenemu up --listen: take migrations (migration.ts's receiver). */
  async listen(addr: string): Promise<void> {
    this.receiver = await MigrationReceiver.listen(addr, {
      prepare: (config, maxPfns, from) => this.prepareIncoming(config, maxPfns, from),
      restore: (config, domid, hvm) => this.commitIncoming(config, domid, hvm),
      unpause: (domid) => this.unpause(domid),
      destroy: (domid) => this.discardIncoming(domid),
      pool: async () => ({ host: this.dom0.host, guests: await this.poolGuests() }),
      log: this.log,
    });
  }

  /**
   * An incoming migration's domain, made when its stream begins (as libxl
   * creates the domain before reading the stream): the name is reserved and
   * the memory taken from then on, and the pages go straight into it.
   * Everything of the build that does not depend on those pages is done
   * here too, before the source stops the guest (preparePvIncoming: ports,
   * grant table, vCPU context, xenstore nodes under NAME--incoming, the
   * disks' and interfaces' back ends; scheduler parameters and libxl's
   * record), so that the commit, in the downtime, does only the rest.
   */
  private async prepareIncoming(config: DomainConfig, maxPfns: number, from?: string): Promise<{ domid: number; memory: Uint8Array }> {
    if (this.closed) throw new Error('xend is shutting down');
    if (!config || (config.type !== 'pv' && config.type !== 'hvm') || typeof config.name !== 'string') throw new Error(`a ${config?.type} guest cannot be migrated here (PV and HVM guests only)`);
    const name = config.name;
    if ((await this.list()).some((x) => x.name === name) || this.creating.has(name)) throw new Error(`domain with name "${name}" already exists.`);
    // The source (`from`) runs the guest until the commit: its name is left out of the pool's.
    const peer = await nameInPool(this.dom0.rundir, name, this.log, from);
    if (peer) throw new Error(poolNameMessage(name, peer));
    if (maxPfns !== framesOf(config)) throw new Error(`${maxPfns} frames for a ${config.maxmem ?? config.memory} MiB domain`);
    const free = Math.floor((await this.physinfo()).free_pages / 256);
    if (config.memory > free) throw new Error(`${config.memory} MiB of memory requested, ${free} MiB free: Out of memory (-ENOMEM)`);
    this.creating.add(name);
    const steps = new Steps();
    const t0 = performance.now();
    let domid = -1;
    let prepared: PreparedPvGuest | undefined;
    try {
      if (config.type === 'hvm') {
        // An HVM guest's is the empty domain: its build waits for the
        // device model's state, which comes with the commit.
        domid = await steps.run('createdomain', () =>
          createHvmShell(this.ctx, { name, memoryMB: config.memory, videoramMB: config.videoram, uuid: config.uuid ?? '', hap: config.hap }));
        const mem = await mapForeignDomain(this.dom0.hv, domid);
        this.incoming.set(domid, { name });
        this.log(`xend: d${domid} '${name}--incoming' created in ${(performance.now() - t0).toFixed(1)} ms (${steps})`);
        return { domid, memory: mem.bytes };
      }
      domid = await steps.run('createdomain', () => createPvShellFor(this.ctx, config, name));
      const mem = await mapForeignDomain(this.dom0.hv, domid);
      prepared = await preparePvIncoming(this.ctx, config, name, domid, steps);
      await steps.run('sched', () => this.sched.applyConfig(domid, config));
      const uuid = config.uuid ?? (await this.get(domid)).uuid;
      steps.run('libxl-json', () => storeLibxlJson(this.ctx.rundir, domid, uuid, libxlDomainConfig({ ...config, name }, uuid)));
      this.incoming.set(domid, { name, prepared });
      this.log(`xend: d${domid} '${name}--incoming' prepared in ${(performance.now() - t0).toFixed(1)} ms (${steps})`);
      return { domid, memory: mem.bytes };
    } catch (e) {
      // preparePvIncoming destroys what it made when it fails itself.
      if (prepared) await prepared.abandon();
      else if (domid >= 0) await destroyDomain(this.ctx, domid).catch(() => undefined);
      if (domid >= 0) removeUserdata(this.ctx.rundir, domid);
      this.creating.delete(name);
      throw e;
    }
  }

  /**
   * The commit of an incoming migration, its pages final: the prepared
   * guest finished (disks stat'ed, start_info and rings, its name,
   * XS_INTRODUCE, console), paused; an HVM guest built on its pages with
   * its vCPU context and device model state. Each step's time is logged. A
   * failure destroys it.
   */
  private async commitIncoming(config: DomainConfig, domid: number, hvm?: HvmSaved): Promise<{ domid: number; steps: Record<string, number> }> {
    const inc = this.incoming.get(domid);
    if (inc === undefined) throw new ToolstackError('EINVAL', `d${domid} is not an incoming migration's domain`);
    this.incoming.delete(domid);
    const { name, prepared } = inc;
    const steps = new Steps();
    const t0 = performance.now();
    try {
      if (!prepared) {
        const built = await steps.run('build', () => this.build({ ...config, name }, name, true, { precreated: domid, ...(hvm ? { hvm } : {}) }));
        return { domid: built.domid, steps: steps.record() };
      }
      let guest: Guest;
      try {
        guest = await prepared.finish(steps);
      } catch (e) {
        removeUserdata(this.ctx.rundir, domid);
        if (e instanceof BuildError) throw new ToolstackError(e.code, `libxl: error: domain "${name}": ${e.message}`);
        throw e;
      }
      this.managed.set(domid, { domid, name, startTime: nowS(), config: { ...config, name }, guest, handled: false });
      this.log(`xend: d${domid} '${name}' committed in ${(performance.now() - t0).toFixed(1)} ms (${steps}), paused`);
      return { domid, steps: steps.record() };
    } finally {
      this.creating.delete(name);
    }
  }

  /** An incoming domain before its commit (never managed), or a restored one nobody said go for. */
  private async discardIncoming(domid: number): Promise<void> {
    const inc = this.incoming.get(domid);
    if (inc === undefined) { await this.destroy(domid); return; }
    this.incoming.delete(domid);
    try {
      if (inc.prepared) await inc.prepared.abandon();
      else await destroyDomain(this.ctx, domid).catch(() => undefined);
      removeUserdata(this.ctx.rundir, domid);
    } finally {
      this.creating.delete(inc.name);
    }
  }

  private async waitSuspended(domid: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.dom0.hv.domctl<xen_domctl_getdomaininfo>(XEN_DOMCTL_getdomaininfo, { domain: domid });
      if (r.ret < 0 || r.data?.domain !== domid) throw new ToolstackError('ESRCH', `Domain ${domid} went away while suspending`);
      const f = r.data.flags;
      if (f & XEN_DOMINF_shutdown) {
        if (((f >>> XEN_DOMINF_shutdownshift) & 0xff) === SHUTDOWN_suspend) return true;
        throw new ToolstackError('EIO', `Domain ${domid} shut down (${shutdownReasonName(f)}) instead of suspending`);
      }
      if (Date.now() > deadline) return false;
      await new Promise((res) => setTimeout(res, 1));
    }
  }

  /** xl restore: a saved guest back, same name and configuration, a new domid, its pages as they were. */
  async restore(file: string, paused: boolean): Promise<DomainInfo> {
    if (this.closed) throw new ToolstackError('EIO', 'xend is shutting down');
    let img;
    try {
      img = decodeSaveImage(file, readFileSync(file));
    } catch (e) {
      if (e instanceof SaveImageError) throw new ToolstackError('EINVAL', `libxl: error: ${e.message}`);
      throw new ToolstackError('EINVAL', `libxl: error: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return this.restoreFrom(file, img.config, img.maxPfns, img.pages, paused, img.hvm);
  }

  /** A saved guest built again from its configuration and pages (a migrated one: prepareIncoming, commitIncoming). */
  private async restoreFrom(what: string, config: DomainConfig, maxPfns: number, pages: Map<number, Uint8Array>, paused: boolean,
                            hvm?: HvmSaved): Promise<DomainInfo> {
    if (this.closed) throw new ToolstackError('EIO', 'xend is shutting down');
    if (!config || (config.type !== 'pv' && config.type !== 'hvm') || typeof config.name !== 'string') {
      throw new ToolstackError('EINVAL', `libxl: error: ${what}: a ${config?.type} guest cannot be restored (PV and HVM guests only)`);
    }
    const names = (await this.list()).map((x) => x.name);
    if (names.includes(config.name) || this.creating.has(config.name)) {
      throw new ToolstackError('EEXIST', `domain with name "${config.name}" already exists.`);
    }
    this.creating.add(config.name);
    try {
      await this.refusePoolName(config.name);
      const phys = await this.physinfo();
      const freeMiB = Math.floor(phys.free_pages / 256);
      if (config.memory > freeMiB) throw enomem(config, freeMiB);
      if (maxPfns !== framesOf(config)) {
        throw new ToolstackError('EINVAL', `libxl: error: ${what}: ${maxPfns} frames saved for a ${config.maxmem ?? config.memory} MiB domain`);
      }
      return await this.build(config, config.name, paused, { pages, ...(hvm ? { hvm } : {}) });
    } finally {
      this.creating.delete(config.name);
    }
  }

  private async domctl(cmd: number, domid: number, what: string): Promise<void> {
    const r = await this.dom0.hv.domctl(cmd, { domain: domid });
    if (r.ret === -XEN_ESRCH) throw new ToolstackError('ESRCH', `Domain ${domid} does not exist.`);
    if (r.ret < 0) throw new ToolstackError('EINVAL', `libxl: error: cannot ${what} domain ${domid}: ${errnoName(r.ret)}`);
  }

  /** libxl_domain_shutdown / _reboot: ask the guest through control/shutdown. */
  private async requestShutdown(domid: number, request: 'poweroff' | 'halt' | 'reboot'): Promise<void> {
    if (domid === 0) throw new ToolstackError('EPERM', 'Domain-0 cannot be shut down from xend: use `xenemu down`');
    const d = await this.mustExist(domid);
    if (d.shutdown || d.dying) throw new ToolstackError('EINVAL', `Domain ${domid} is already shut down`);
    const refused = await this.managed.get(domid)?.guest.refuseShutdown?.(request === 'reboot' ? 'reboot' : 'shutdown');
    if (refused) throw new ToolstackError('EINVAL', refused);
    await this.lib(() => shutdownDomain(this.ctx, domid, request));
  }

  shutdown(domid: number, reason: 'poweroff' | 'halt'): Promise<void> { return this.requestShutdown(domid, reason); }
  reboot(domid: number): Promise<void> { return this.requestShutdown(domid, 'reboot'); }

  async waitForShutdown(domid: number, timeoutMs: number): Promise<boolean> {
    if (!this.exc) return false;
    return (await this.exc.waitForShutdown(domid, timeoutMs)).state !== 'timeout';
  }

  /** libxl_set_memory_target: memory/target (KiB); the guest's balloon driver follows it. */
  async memSet(domid: number, mib: number): Promise<void> {
    if (domid === 0) throw new ToolstackError('ENOSYS', 'Domain-0 does not balloon in xenemu');
    await this.mustExist(domid);
    await this.lib(() => setMemoryTarget(this.ctx, domid, mib));
  }

  /** libxl_set_vcpuonline for PV: cpu/<n>/availability, which the guest follows. */
  async vcpuSet(domid: number, count: number): Promise<void> {
    if (domid === 0) throw new ToolstackError('ENOSYS', 'vcpu-set on Domain-0 is not supported in xenemu');
    await this.mustExist(domid);
    await this.lib(() => setVcpus(this.ctx, domid, count));
  }

  // --- block devices (xl block-attach / block-detach / block-list) -------

  async blockAttach(domid: number, spec: string): Promise<void> {
    if (domid === 0) throw new ToolstackError('EINVAL', 'block-attach to Domain-0 is not supported in xenemu');
    await this.mustExist(domid);
    let disk;
    try { disk = parseDiskSpec(spec); } catch (e) {
      if (e instanceof XlCfgError) throw new ToolstackError('EINVAL', e.message);
      throw e;
    }
    await this.lib(() => addVbd(this.ctx, domid, disk));
  }

  async blockDetach(domid: number, dev: string): Promise<void> {
    await this.mustExist(domid);
    const devid = await findVbd(this.ctx, domid, dev);
    if (devid < 0) throw new ToolstackError('EINVAL', `Error: Device ${dev} not connected.`);
    await removeVbd(this.ctx, domid, devid);
  }

  async blockList(domid: number): Promise<BlockDeviceRecord[]> {
    await this.mustExist(domid);
    return listVbds(this.ctx, domid);
  }

  // --- PCI passthrough (xl pci-attach / pci-detach / pci-list / pci-assignable-list)

  private pciSpec(spec: string): PciSpec {
    try { return parsePciSpec(spec); } catch (e) { throw new ToolstackError('EINVAL', (e as Error).message); }
  }

  async pciAttach(domid: number, spec: string): Promise<void> {
    if (domid === 0) throw new ToolstackError('EINVAL', 'pci-attach to Domain-0 is not supported in xenemu');
    await this.mustExist(domid);
    const m = this.managed.get(domid);
    if (m && m.config.type !== 'pv') throw new ToolstackError('EINVAL', `libxl: error: Domain ${domid}:PCI passthrough to ${m.config.type} guests is not supported yet (PV guests only)`);
    const p = this.pciSpec(spec);
    await this.lib(() => addPciDevice(this.ctx, domid, p, false));
    // As libxl's device_add_domain_config: a reboot keeps the device, and libxl's record has it.
    if (m) { m.config.pci.push(p); await this.storeConfig(domid, m); }
  }

  private async storeConfig(domid: number, m: Managed): Promise<void> {
    const uuid = (await this.get(domid)).uuid;
    storeLibxlJson(this.ctx.rundir, domid, uuid, libxlDomainConfig({ ...m.config, name: m.name }, uuid));
  }

  async pciDetach(domid: number, spec: string, force: boolean): Promise<void> {
    await this.mustExist(domid);
    const p = this.pciSpec(spec);
    await this.lib(() => removePciDevice(this.ctx, domid, p, force));
    const m = this.managed.get(domid);
    if (m) {
      m.config.pci = m.config.pci.filter((q) => !(q.domain === p.domain && q.bus === p.bus && q.dev === p.dev && (p.func === '*' || q.func === p.func)));
      await this.storeConfig(domid, m);
    }
  }

  async pciList(domid: number): Promise<PciDeviceRecord[]> {
    await this.mustExist(domid);
    return listPciDevices(this.ctx, domid);
  }

  /** A device's state is in the device, not in the guest's pages: such a guest is neither saved nor migrated. */
  private async refusePassthrough(domid: number, what: 'save' | 'migrate'): Promise<void> {
    if ((await listPciDevices(this.ctx, domid)).length) {
      throw new ToolstackError('EINVAL', `libxl: error: Domain ${domid}:cannot ${what} a domain with PCI devices passed through; detach them first (xl pci-detach)`);
    }
  }

  // --- network interfaces (xl network-attach / network-detach / network-list)

  async networkAttach(domid: number, spec: string): Promise<NetworkDeviceRecord> {
    if (domid === 0) throw new ToolstackError('EINVAL', 'network-attach to Domain-0 is not supported in xenemu');
    await this.mustExist(domid);
    let vif;
    try { vif = parseVifSpec(spec); } catch (e) { throw new ToolstackError('EINVAL', (e as Error).message); }
    const { devid } = await this.lib(() => addVif(this.ctx, domid, vif));
    return (await listVifs(this.ctx, domid)).find((v) => v.devid === devid)!;
  }

  async networkDetach(domid: number, dev: string): Promise<void> {
    await this.mustExist(domid);
    const devid = await findVif(this.ctx, domid, dev);
    if (devid < 0) throw new ToolstackError('EINVAL', `Error: Device ${dev} not connected.`);
    await removeVif(this.ctx, domid, devid);
  }

  async networkList(domid: number): Promise<NetworkDeviceRecord[]> {
    await this.mustExist(domid);
    return listVifs(this.ctx, domid);
  }

  // --- teardown and lifecycle --------------------------------------------

  /**
   * Everything a dead or destroyed domain held: console (PTY closed) and its
   * event channel, the domain itself (destroydomain: ports, grants,
   * segments, process), its xenstored connection (XS_RELEASE fires
   * @releaseDomain) and its xenstore nodes. Idempotent; concurrent callers
   * share one teardown.
   */
  private teardown(domid: number): Promise<void> {
    const running = this.tearing.get(domid);
    if (running) return running;
    const p = (async () => {
      const m = this.managed.get(domid);
      if (m) {
        await m.guest.release().catch((e: Error) => this.log(`xend: releasing d${domid}: ${e.message}`));
      } else {
        await this.consoled.removeConsole(domid).catch(() => undefined);
        // netback lets go of the rings before the domain's memory goes.
        await removeDomainBackends(this.ctx, domid, ['vif']);
      }
      // destroydomain (ESRCH is fine: it may be gone already), XS_RELEASE, nodes.
      await destroyDomain(this.ctx, domid).catch((e: Error) => this.log(`xend: destroying d${domid}: ${e.message}`));
      removeUserdata(this.ctx.rundir, domid);
      this.managed.delete(domid);
    })().finally(() => {
      this.tearing.delete(domid);
    });
    this.tearing.set(domid, p);
    return p;
  }

  private onDomExc(): void {
    if (this.closed) return;
    if (this.scanning) { this.rescan = true; return; }
    this.scanning = (async () => {
      do {
        this.rescan = false;
        try { await this.scan(); } catch (e) { this.log(`xend: VIRQ_DOM_EXC scan failed: ${(e as Error).message}`); }
      } while (this.rescan && !this.closed);
    })().finally(() => {
      this.scanning = null;
    });
  }

  private async scan(): Promise<void> {
    const raws = new Map((await this.rawList()).map((r) => [r.domain, r]));
    const work: Promise<void>[] = [];
    for (const m of [...this.managed.values()]) {
      if (this.tearing.has(m.domid)) continue;
      if (raws.has(m.domid)) m.guest.domainsChanged?.(raws);
      const raw = raws.get(m.domid);
      if (!raw) { work.push(this.teardown(m.domid)); continue; }
      const reason = shutdownReasonName(raw.flags);
      if (!reason || m.handled) continue;
      m.handled = true;
      work.push(this.onShutdown(m, reason));
    }
    await Promise.all(work);
  }

  /** xl's handle_domain_death: what the config says for this reason. */
  private async onShutdown(m: Managed, reason: string): Promise<void> {
    let action: ActionOnShutdown;
    switch (reason) {
      case 'poweroff': action = m.config.on_poweroff; break;
      case 'reboot': action = m.config.on_reboot; break;
      case 'crash': action = m.config.on_crash; break;
      case 'watchdog': action = 'destroy'; break;
      case 'soft_reset': action = 'restart'; break;
      default: m.handled = false; return; // suspend: a save would pick it up
    }
    this.log(`xend: d${m.domid} '${m.name}' shut down (${reason}): ${action}`);
    switch (action) {
      case 'preserve':
        return;
      case 'destroy': case 'coredump-destroy':
        await this.teardown(m.domid);
        return;
      case 'rename-restart': {
        const renamed = `${m.name}--${preserveSuffix()}`;
        await this.xs.write(`/local/domain/${m.domid}/name`, renamed).catch(() => undefined);
        const config = m.config;
        m.name = renamed;
        await this.restart(config, undefined);
        return;
      }
      case 'restart': case 'coredump-restart':
        await this.teardown(m.domid);
        await this.restart(m.config, m.domid);
        return;
    }
  }

  private async restart(config: DomainConfig, oldDomid: number | undefined): Promise<void> {
    if (this.closed) return;
    const now = Date.now();
    const times = (this.restarts.get(config.name) ?? []).filter((t) => now - t < RESTART_WINDOW_MS);
    times.push(now);
    this.restarts.set(config.name, times);
    if (times.length > RESTART_LIMIT) {
      this.log(`xend: '${config.name}' restarted ${RESTART_LIMIT} times in ${RESTART_WINDOW_MS / 1000} s: not restarting it again`);
      return;
    }
    try {
      const d = await this.build(config);
      this.log(`xend: '${config.name}' restarted as d${d.domid}${oldDomid !== undefined ? ` (was d${oldDomid})` : ''}`);
    } catch (e) {
      this.log(`xend: restarting '${config.name}' failed: ${(e as Error).message}`);
    }
  }
}

/** xl's message for a name in use, naming the pool peer that runs it. */
function poolNameMessage(name: string, host: string): string {
  return `domain with name "${name}" already exists (on host ${host} of the pool).`;
}

function enomem(config: DomainConfig, freeMiB: number | undefined): ToolstackError {
  const free = freeMiB === undefined ? '' : `, ${freeMiB} MiB free`;
  return new ToolstackError('ENOMEM',
    `libxl: error: cannot create domain "${config.name}": ${config.memory} MiB of memory requested${free}: Out of memory (-ENOMEM)`);
}

/** xl's preserve_domain suffix: the time, "%Y%m%dT%H%MZ". */
function preserveSuffix(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\d\d\.\d+Z$/, 'Z');
}
