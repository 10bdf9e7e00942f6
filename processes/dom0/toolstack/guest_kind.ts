// The seam between the toolstack and the kinds of guest, as libxl's
// libxl__domain_build() switches to libxl__build_pv or libxl__build_hvm and
// libxl__spawn_local_dm: a kind knows how to make its guest up to the point
// where it may run, what its consoles are, and what it started that must go
// when the guest goes. Everything else (names, memory checks, scheduler
// parameters, unpause, on_poweroff/on_reboot/on_crash, restarts, destroy)
// is the toolstack's, the same for every kind (processes/dom0/xend/xen_toolstack.ts).
//
//   toolstack.create(config)
//     kind = GUEST_KINDS[config.type]           kinds.ts: one entry per kind
//     guest = kind.create(ctx, config, name)    domain built, paused, devices,
//                                               console or device model running
//     sched params, unpause
//   toolstack.teardown(domid)
//     guest.release()                           console, device model, back ends
//     destroyDomain()                           lifecycle.ts, every kind alike
import type { ScreenshotRecord } from '../../../shared/toolstack/xend_api.js';
import type { DomainConfig } from '../../../shared/toolstack/xlcfg.js';
import type { Xenconsoled } from '../xenconsoled/xenconsoled.js';
import type { BuilderContext } from './builder.js';
import type { HvmSaved } from './save_image.js';

/** What a kind's builder works with: Domain-0's hypervisor and xenstore connections, its consoles, the host. */
/**
 * What libxl's hotplug scripts do for a device model's NIC (vif-bridge on
 * the tap vif<domid>.<devid>-emu): netback's bridges, in Domain-0's process.
 */
export interface NicHotplug {
  /** A port on `bridge` for the emulated NIC `name`: the endpoint the device model connects to. */
  addTap(name: string, bridge: string): Promise<string>;
  /** Takes away every such port of domain `domid`. */
  removeTaps(domid: number): void;
}

export interface GuestContext extends BuilderContext {
  consoled: Xenconsoled;
  /** Absent where Domain-0 runs no netback (test toolstacks): emulated NICs then have no bridge. */
  hotplug?: NicHotplug;
  /** The host's run directory (logs, sockets). */
  rundir: string;
  host: string;
}

/** `xl console -t`: which console. */
export type ConsoleType = 'pv' | 'serial';

/** Where a console is and its recent output, replayed before a client reads the PTY. */
export interface GuestConsole {
  ptyPath: string;
  backlog: Uint8Array;
}

/** One built guest, as its kind keeps it. */
export interface Guest {
  readonly domid: number;
  /**
   * The console `xl console` attaches to: `type` undefined is the kind's
   * primary console (PV: its PV console; HVM: serial port 0, as libxl's
   * libxl__primary_console_find). Throws BuildError when there is none.
   */
  console(type: ConsoleType | undefined, num: number): Promise<GuestConsole>;
  /**
   * Lets go of what the kind started for the domain (its console, its device
   * model, its back ends), before the domain itself is destroyed. Idempotent.
   */
  release(): Promise<void>;
  /**
   * Why xl shutdown / reboot cannot ask this guest (libxl's ERROR_NOPARAVIRT:
   * no PV control interface), or undefined when control/shutdown will be heard.
   */
  refuseShutdown?(what: 'shutdown' | 'reboot'): Promise<string | undefined>;
  /**
   * The emulated display (xl screenshot): its text screen, and a PNG written
   * to `png` unless ''. Absent for kinds without one (PV). Throws BuildError.
   */
  screenshot?(png: string): Promise<ScreenshotRecord>;
  /**
   * A domain changed state (VIRQ_DOM_EXC): a kind whose guest depends on
   * another domain (an HVM guest's stub domain) looks at it here, in the
   * scan's getdomaininfo of every domain (by domid; absent: gone).
   */
  domainsChanged?(domains: ReadonlyMap<number, { flags: number }>): void;
  /**
   * A save of an HVM guest whose vCPU has suspended: QMP stop and
   * xen-save-devices-state (libxl__qmp_suspend_save); its state. Absent
   * for kinds whose state is all in the guest's pages (PV).
   */
  saveDeviceModel?(): Promise<Uint8Array>;
  /** The guest runs on after a save (xl save -c, a migration that failed): QMP cont. */
  resumeDeviceModel?(): Promise<void>;
  /**
   * Domain-0's toolstack is stopping (the host goes down): end the processes
   * it started for the guest, and nothing else.
   */
  close?(): Promise<void>;
}

/**
 * What a restored guest's pages come from: a save file's pages, or a
 * domain an incoming migration already created and wrote them into.
 */
export type RestoreFrom = ({ pages: Map<number, Uint8Array> } | { precreated: number }) & {
  /** An HVM guest's vCPU context and device model state (save_image.ts). */
  hvm?: HvmSaved;
};

export interface GuestKind<C extends DomainConfig = DomainConfig> {
  readonly type: C['type'];
  /** xl's refusals that need no hypercall; the message xl would print, or undefined. */
  refuse?(config: C): string | undefined;
  /**
   * Creates the domain and everything it needs before it may run (devices,
   * console, device model), leaving it paused. A failure undoes all of it and
   * throws BuildError. What the build chose (a generated MAC) is written back
   * into `config`, so that a restart builds the same guest.
   */
  create(ctx: GuestContext, config: C, name: string, restore?: RestoreFrom): Promise<Guest>;
}
