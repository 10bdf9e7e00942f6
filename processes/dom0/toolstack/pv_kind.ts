// PV guests (libxl__build_pv and what libxl's domain create adds around it):
// the PV builder (builder.ts), then the guest's vbds and vifs before it runs
// (its front ends find them at boot), then its console wired to
// xenconsoled (pv_console.ts). The guest's program is xenemu's PV kernel
// (processes/domu), or a JavaScript file named by kernel=.
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { PvDomainConfig } from '../../../shared/toolstack/xlcfg.js';
import { XEN_LEGACY_MAX_VCPUS } from '../../../shared/abi/xen.js';
import { BuildError, buildPvDomain, createPvShell, finishPvDomain, preparePvDomain, type BuilderContext } from './builder.js';
import { Steps } from './steps.js';
import { DEFAULT_LAYOUT } from './start_info.js';
import { destroyDomain } from './lifecycle.js';
import { removeDomainBackends } from './device.js';
import { addVbd, statDisk } from './vbd.js';
import { addVif } from './vif.js';
import { addPciDevice, releaseDomainPciDevices } from './pci.js';
import { connectConsole, disconnectConsole, type WiredConsole } from './pv_console.js';
import type { ConsoleType, Guest, GuestConsole, GuestContext, GuestKind } from './guest_kind.js';

class PvGuest implements Guest {
  console_: WiredConsole | undefined;
  private released: Promise<void> | undefined;

  constructor(private readonly ctx: GuestContext, readonly domid: number) {}

  async console(type: ConsoleType | undefined, num: number): Promise<GuestConsole> {
    if (type === 'serial' || num !== 0) {
      throw new BuildError('EINVAL', `Domain ${this.domid}:Unable to read console tty path \`/local/domain/${this.domid}/${type === 'serial' ? `serial/${num}/tty` : `device/console/${num}/tty`}'`);
    }
    const a = this.ctx.consoled.attach(this.domid);
    if (!a) throw new BuildError('EINVAL', `Domain ${this.domid} has no console`);
    return a;
  }

  /**
   * The console (its PTY closes) and the vif back ends, so netback lets go
   * of the rings before the memory goes; passed-through PCI devices.
   */
  release(): Promise<void> {
    this.released ??= (async () => {
      if (this.console_) await disconnectConsole(this.ctx.dom0, this.ctx.consoled, this.console_).catch(() => undefined);
      else await this.ctx.consoled.removeConsole(this.domid).catch(() => undefined);
      await removeDomainBackends(this.ctx, this.domid, ['vif']);
      // Passed-through devices go back to quarantine (libxl__destroy_pcidevs).
      await releaseDomainPciDevices(this.ctx, this.domid);
    })();
    return this.released;
  }
}

export const PV_GUEST: GuestKind<PvDomainConfig> = {
  type: 'pv',

  refuse(config) {
    if (config.maxvcpus > XEN_LEGACY_MAX_VCPUS) {
      return `domain "${config.name}": ${config.maxvcpus} vCPUs asked, a PV guest has at most ${XEN_LEGACY_MAX_VCPUS}`;
    }
    return undefined;
  },

  async create(ctx, config, name, restore) {
    const built = await buildPvDomain(ctx, {
      name, memoryMB: config.memory, maxmemMB: config.maxmem, vcpus: config.vcpus, maxVcpus: config.maxvcpus,
      uuid: config.uuid, cmdline: config.cmdline ?? '', program: guestProgram(config), paused: true,
      ...(restore && 'pages' in restore ? { restorePages: restore.pages } : {}),
    });
    const guest = new PvGuest(ctx, built.domid);
    try {
      for (const disk of config.disk) await addVbd(ctx, built.domid, disk);
      // A generated MAC is kept in the config so a restart keeps it.
      for (const vif of config.vif) vif.mac = (await addVif(ctx, built.domid, vif)).mac;
      for (const pci of config.pci) await addPciDevice(ctx, built.domid, pci, true);
      guest.console_ = await connectConsole(ctx.dom0, ctx.consoled, ctx.xs, {
        domid: built.domid, name, consoleMfn: built.consoleMfn, consolePort: built.consolePort,
      });
      return guest;
    } catch (e) {
      ctx.log(`pv: d${built.domid} '${name}' failed after the build, destroying it: ${(e as Error).message}`);
      await guest.release();
      await destroyDomain(ctx, built.domid).catch(() => undefined);
      throw e instanceof BuildError ? e : new BuildError('EIO', (e as Error).message);
    }
  },
};

/** An incoming migration's guest built but for what depends on its final pages (preparePvIncoming). */
export interface PreparedPvGuest {
  readonly domid: number;
  /**
   * At the commit, its pages final: the disks stat'ed again (the image may
   * have gone meanwhile), start_info and the rings, the name, XS_INTRODUCE
   * and the console; the guest, paused. A failure destroys the domain and
   * its back ends.
   */
  finish(steps: Steps): Promise<Guest>;
  /** The migration failed before the commit: the domain and its back ends go. */
  abandon(): Promise<void>;
}

/**
 * An incoming migration's guest prepared while its pages still come (as
 * libxl's restore holds the domain, paused, before the stream ends): on the
 * domain createPvShellFor made, the builder's part that needs no page
 * (ports, grant table, vCPU context, xenstore nodes under NAME--incoming)
 * and the vbd and vif back ends (blkback opens the image, netback its
 * bridge port; both wait in InitWait for the front ends of the resumed
 * guest). A failure destroys it all.
 */
export async function preparePvIncoming(ctx: GuestContext, config: PvDomainConfig, name: string, domid: number,
                                        steps = new Steps()): Promise<PreparedPvGuest> {
  const p = await preparePvDomain(ctx, {
    name, memoryMB: config.memory, maxmemMB: config.maxmem, vcpus: config.vcpus, maxVcpus: config.maxvcpus,
    uuid: config.uuid, cmdline: config.cmdline ?? '', program: guestProgram(config), paused: true, precreated: domid,
  }, steps, `${name}--incoming`);
  const guest = new PvGuest(ctx, domid);
  const undo = async (e: unknown) => {
    ctx.log(`pv: d${domid} '${name}' failed, destroying it: ${(e as Error).message}`);
    await guest.release();
    await destroyDomain(ctx, domid).catch(() => undefined);
  };
  try {
    await steps.run('vbd', async () => { for (const disk of config.disk) await addVbd(ctx, domid, disk); });
    await steps.run('vif', async () => { for (const vif of config.vif) vif.mac = (await addVif(ctx, domid, vif)).mac; });
    for (const pci of config.pci) await addPciDevice(ctx, domid, pci, true);
  } catch (e) {
    await undo(e);
    throw e instanceof BuildError ? e : new BuildError('EIO', (e as Error).message);
  }
  return {
    domid,
    async finish(steps) {
      try {
        steps.run('disks', () => { for (const disk of config.disk) statDisk(disk); });
        // The console's ring is cleared with start_info: it is wired after, alongside the introduce.
        await finishPvDomain(ctx, p, steps, name, async () => {
          guest.console_ = await steps.run('console', () => connectConsole(ctx.dom0, ctx.consoled, ctx.xs, {
            domid, name, consoleMfn: DEFAULT_LAYOUT.consolePfn, consolePort: p.consolePort,
          }));
        });
        return guest;
      } catch (e) {
        await undo(e);
        throw e instanceof BuildError ? e : new BuildError('EIO', (e as Error).message);
      }
    },
    abandon: () => undo(new Error('the migration did not complete')),
  };
}

/** An incoming migration's domain, empty and paused, made as PV_GUEST.create's build would make it. */
export function createPvShellFor(ctx: BuilderContext, config: PvDomainConfig, name: string): Promise<number> {
  return createPvShell(ctx, {
    name, memoryMB: config.memory, maxmemMB: config.maxmem, vcpus: config.vcpus, maxVcpus: config.maxvcpus,
    uuid: config.uuid, cmdline: config.cmdline ?? '', program: guestProgram(config), paused: true,
  });
}

/**
 * The domain's program: in xenemu a guest kernel is a program run in the
 * domain process. `kernel` names one when it is a JavaScript file that
 * exists; any other kernel (a vmlinuz from a real xl.cfg) gives the default
 * PV kernel (processes/domu).
 */
function guestProgram(config: PvDomainConfig): string | undefined {
  const k = config.kernel;
  if (k && isAbsolute(k) && /\.m?js$/.test(k) && existsSync(k)) return k;
  return undefined;
}
