// The HVM domain builder: what libxl__build_pre, libxl__build_hvm (with
// libxc's xc_dom_x86.c for HVM) and libxl__build_post do, plus what
// hvmloader would have left in memory, through xenemu's real hypercalls.
//
//   Dom0 (this module)                         hypervisor                  xenstored
//     read the BIOS image (before anything exists)
//     createdomain {CDF_hvm|CDF_hap, 1 vCPU} ──►  paused HVM domain, segments
//     max_mem (+ LIBXL_MAXMEM_CONSTANT), max_vcpus 1
//     alloc_unbound x2 (dom=guest, remote=0) ──► xenstore port, console port
//     populate_physmap of the 8 special pages ─►
//     map guest memory: BIOS image ending at 1 MiB, hvm_info_table at 0x9f800
//     seed grant refs 0 (console) and 1 (xenstore)
//     HVMOP_set_param: store/console pfns and ports, timer mode, HPET off,
//       vpt_align, altp2m off ─────────────────►
//     xenstore nodes (one transaction) ────────────────────────────────────►
//     INTRODUCE(domid, store pfn, store port) ─────────────────────────────► maps ring, binds port
//
// The guest is left paused: the device model starts next (device_model.ts),
// and the toolstack unpauses it once that runs. Any failure after
// createdomain destroys the half-built domain again.
import { randomUUID } from 'node:crypto';
import {
  XEN_DOMCTL_CDF_hap, XEN_DOMCTL_CDF_hvm, XEN_DOMCTL_createdomain, XEN_DOMCTL_destroydomain, XEN_DOMCTL_max_mem,
  XEN_DOMCTL_max_vcpus,
} from '../../../../shared/abi/domctl.js';
import { PAGE_SIZE, __HYPERVISOR_hvm_op } from '../../../../shared/abi/xen.js';
import { XEN_ENOMEM } from '../../../../shared/abi/errno.js';
import { XENMEM_populate_physmap } from '../../../../shared/abi/memory.js';
import * as P from '../../../../shared/abi/hvm/params.js';
import { HVM_INFO_PADDR, encodeHvmInfoTable } from '../../../../shared/abi/hvm/hvm_info_table.js';
import { TIMER_MODES, type TimerMode } from '../../../../shared/toolstack/xlcfg.js';
import { check, mapForeignDomain, type HypervisorClient } from '../../../../shared/xen/index.js';
import { BuildError, uuidBytes, type BuilderContext } from '../builder.js';
import { seedGrantTable } from '../gnttab_seed.js';
import { removeDomainNodes } from '../xenstore_layout.js';
import { biosAddress, loadBios } from './firmware.js';
import { HVM_MAX_RAM_MIB, X86_HVM_NR_SPECIAL_PAGES, hvmLayout, type HvmLayout } from './layout.js';
import { deviceModelPath, writeHvmDomainNodes } from './xenstore.js';

export interface HvmBuildConfig {
  name: string;
  memoryMB: number;
  videoramMB: number;
  uuid?: string;
  /** A BIOS image file; Debian's SeaBIOS when absent. */
  biosPath?: string;
  /** hvm_info_table.apic_mode (xl.cfg apic=). */
  apic: boolean;
  /** XEN_DOMCTL_CDF_hap (xl.cfg hap=). */
  hap: boolean;
  timerMode: TimerMode;
  vptAlign: boolean;
  acpi: boolean;
  acpiS3: boolean;
  acpiS4: boolean;
  /** xl restore: the saved pages by pfn (firmware and all), instead of a fresh BIOS and hvm_info_table. */
  restorePages?: Map<number, Uint8Array>;
  /** An incoming migration's domain (createHvmShell), its pages already written. */
  precreated?: number;
}

export interface HvmDomain {
  domid: number;
  name: string;
  uuid: string;
  layout: HvmLayout;
  storePort: number;
  consolePort: number;
  biosAddress: number;
  biosBytes: number;
  /** Milliseconds from createdomain to the end of the build. */
  buildMs: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** HVMOP_set_param, as xc_hvm_param_set. */
export async function setHvmParam(hv: HypervisorClient, domid: number, index: number, value: number | bigint): Promise<void> {
  check(`HVMOP_set_param ${index}`, await hv.hypercall(__HYPERVISOR_hvm_op, P.HVMOP_set_param, { domid, index, value }));
}

/**
 * libxl__domain_make for an HVM guest: the domain, empty and paused, with
 * its vCPU and memory limits (an incoming migration's pages go into it
 * before the build). Destroyed again if a limit cannot be set.
 */
export async function createHvmShell(ctx: BuilderContext, cfg: { name: string; memoryMB: number; videoramMB: number; uuid: string; hap: boolean }): Promise<number> {
  const layout = hvmLayout(cfg.memoryMB, cfg.videoramMB);
  if (!layout) throw new BuildError('EINVAL', `memory ${cfg.memoryMB} MB with ${cfg.videoramMB} MB of video memory`);
  const { hv } = ctx.dom0;
  const c = await hv.domctl<{ domain: number }>(XEN_DOMCTL_createdomain, {
    flags: XEN_DOMCTL_CDF_hvm | (cfg.hap ? XEN_DOMCTL_CDF_hap : 0),
    max_vcpus: 1, memory_kb: layout.memoryKb, max_memkb: layout.maxKb, handle: uuidBytes(cfg.uuid),
  });
  if (c.ret < 0) {
    throw new BuildError(c.ret === -XEN_ENOMEM ? 'ENOMEM' : 'EIO',
      `cannot create domain '${cfg.name}' (${cfg.memoryMB} MB): createdomain failed ${c.ret}`);
  }
  const domid = c.data!.domain;
  ctx.log(`hvm builder: d${domid} '${cfg.name}' created, ${cfg.memoryMB} MB (${cfg.memoryMB - cfg.videoramMB} MB RAM), 1 vCPU`);
  try {
    // libxl__build_pre
    check('max_vcpus', await hv.domctl(XEN_DOMCTL_max_vcpus, { domain: domid, max: 1 }));
    check('max_mem', await hv.domctl(XEN_DOMCTL_max_mem, { domain: domid, max_memkb: layout.maxKb }));
  } catch (err) {
    await destroyHalfBuilt(ctx, domid);
    throw err instanceof BuildError ? err : new BuildError('EIO', `creating d${domid}: ${(err as Error).message}`);
  }
  return domid;
}

/** Creates and builds an HVM domain, left paused. */
export async function buildHvmDomain(ctx: BuilderContext, cfg: HvmBuildConfig): Promise<HvmDomain> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(cfg.name)) throw new BuildError('EINVAL', `invalid domain name '${cfg.name}'`);
  const uuid = (cfg.uuid ?? randomUUID()).toLowerCase();
  if (!UUID_RE.test(uuid)) throw new BuildError('EINVAL', `invalid uuid '${cfg.uuid}'`);
  const layout = hvmLayout(cfg.memoryMB, cfg.videoramMB);
  if (!layout) {
    throw new BuildError('EINVAL', `memory ${cfg.memoryMB} MB with ${cfg.videoramMB} MB of video memory: ` +
      `an HVM guest's RAM must be between 1 and ${HVM_MAX_RAM_MIB} MB`);
  }
  // libxl__domain_firmware reads the images before the domain is made.
  const bios = loadBios(cfg.biosPath);

  const { hv } = ctx.dom0;
  const t0 = performance.now();
  const domid = cfg.precreated ?? await createHvmShell(ctx, { ...cfg, uuid });
  const restoring = cfg.restorePages !== undefined || cfg.precreated !== undefined;
  try {
    const storePort = await ctx.dom0.evtchn.allocUnbound(0, domid);
    const consolePort = await ctx.dom0.evtchn.allocUnbound(0, domid);

    // alloc_magic_pages_hvm: the special pages are populated and cleared.
    const special = Array.from({ length: X86_HVM_NR_SPECIAL_PAGES }, (_, i) => layout.specialPfn + i);
    const pop = await hv.memory_op<{ extent_start: number[] }>(XENMEM_populate_physmap,
      { domid, nr_extents: special.length, extent_order: 0, extent_start: special });
    if (pop.ret !== special.length) throw new BuildError('EIO', `populating the special pages of d${domid} failed: ${pop.ret}`);
    const mem = await mapForeignDomain(hv, domid);
    const biosAt = biosAddress(bios);
    if (!restoring) {
      // What hvmloader leaves: the BIOS image ending at 1 MiB, and the
      // hvm_info_table (build_hvm_info, then hvm_build_set_params).
      mem.bytes.set(bios, biosAt);
      const infoPage = mem.page(Math.floor(HVM_INFO_PADDR / PAGE_SIZE));
      infoPage.fill(0);
      infoPage.set(encodeHvmInfoTable({
        apicMode: cfg.apic ? 1 : 0, nrVcpus: 1, lowMemPgend: layout.ramPages,
        reservedMemPgstart: layout.specialPfn, highMemPgend: 0,
      }), HVM_INFO_PADDR % PAGE_SIZE);
    } else if (cfg.restorePages) {
      // A restore: the firmware, its tables and the guest are in the saved pages.
      for (const [pfn, page] of cfg.restorePages) mem.page(pfn).set(page);
    }
    // The console and xenstore rings start empty for the new domain's back ends.
    mem.range(layout.specialPfn, X86_HVM_NR_SPECIAL_PAGES).fill(0);

    await seedGrantTable(hv, domid, { consolePfn: layout.consolePfn, consoleDomid: 0, storePfn: layout.storePfn, storeDomid: 0 });

    // alloc_magic_pages_hvm and bootlate_hvm (libxc), hvm_set_conf_params (libxl).
    // The ioreq pages are XENMEM_acquire_resource's only: no IOREQ_PFN.
    await setHvmParam(hv, domid, P.HVM_PARAM_STORE_PFN, layout.storePfn);
    await setHvmParam(hv, domid, P.HVM_PARAM_CONSOLE_PFN, layout.consolePfn);
    await setHvmParam(hv, domid, P.HVM_PARAM_CONSOLE_EVTCHN, consolePort);
    await setHvmParam(hv, domid, P.HVM_PARAM_STORE_EVTCHN, storePort);
    await setHvmParam(hv, domid, P.HVM_PARAM_HPET_ENABLED, 0);
    await setHvmParam(hv, domid, P.HVM_PARAM_VPT_ALIGN, cfg.vptAlign ? 1 : 0);
    await setHvmParam(hv, domid, P.HVM_PARAM_TIMER_MODE, TIMER_MODES.indexOf(cfg.timerMode));
    await setHvmParam(hv, domid, P.HVM_PARAM_ALTP2M, 0);
    // hvmloader's part for qemu-xen (xenemu has no hvmloader): the ACPI PM
    // registers Xen answers sit where SeaBIOS puts QEMU's PIIX4 block, 0xb000.
    if (cfg.acpi) await setHvmParam(hv, domid, P.HVM_PARAM_ACPI_IOPORTS_LOCATION, 1);

    await writeHvmDomainNodes(ctx.xs, {
      domid, name: cfg.name, uuid, maxKb: cfg.memoryMB * 1024, targetKb: cfg.memoryMB * 1024,
      videoKb: cfg.videoramMB * 1024, storePort, storePfn: layout.storePfn,
      acpi: cfg.acpi, acpiS3: cfg.acpiS3, acpiS4: cfg.acpiS4,
    });
    await ctx.xs.introduce(domid, layout.storePfn, storePort);
    const buildMs = performance.now() - t0;
    ctx.log(`hvm builder: d${domid} built in ${buildMs.toFixed(1)} ms (BIOS ${bios.byteLength} bytes at 0x${biosAt.toString(16)}, ` +
      `${layout.ramPages} RAM pages, store port ${storePort})`);
    return { domid, name: cfg.name, uuid, layout, storePort, consolePort, biosAddress: biosAt, biosBytes: bios.byteLength, buildMs };
  } catch (err) {
    ctx.log(`hvm builder: d${domid} failed, destroying it: ${(err as Error).message}`);
    await destroyHalfBuilt(ctx, domid);
    throw err instanceof BuildError ? err : new BuildError('EIO', `building d${domid}: ${(err as Error).message}`);
  }
}

async function destroyHalfBuilt(ctx: BuilderContext, domid: number): Promise<void> {
  await ctx.xs.release(domid).catch(() => undefined);
  await removeDomainNodes(ctx.xs, domid).catch(() => undefined);
  await ctx.xs.rm(deviceModelPath(domid)).catch(() => undefined);
  await ctx.dom0.hv.domctl(XEN_DOMCTL_destroydomain, { domain: domid });
}
