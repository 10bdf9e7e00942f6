// The PV domain builder: what libxl's domain creation and libxc's xc_dom_*
// do for a PV guest, through xenemu's real hypercalls.
//
//   Dom0 (this module)                 hypervisor                 xenstored
//     createdomain, max_mem, max_vcpus ──►  paused domain, segments
//     alloc_unbound x2 (dom=guest, remote=0) ──► store port, console port
//     map guest memory (getsegments), write start_info + clear rings
//     seed grant refs 0 (console) and 1 (xenstore)
//     setvcpucontext rsi = &start_info ──►
//     xenstore nodes (one transaction) ──────────────────────────►
//     INTRODUCE(domid, store_mfn, store_port) ───────────────────►  maps ring, binds port
//     unpausedomain ──► spawns the guest process (processes/domu)
//
// Any failure after createdomain destroys the half-built domain again.
import { randomUUID } from 'node:crypto';
import {
  XEN_DOMCTL_createdomain, XEN_DOMCTL_destroydomain, XEN_DOMCTL_max_mem, XEN_DOMCTL_max_vcpus,
  XEN_DOMCTL_setvcpucontext, XEN_DOMCTL_unpausedomain,
} from '../../../shared/abi/domctl.js';
import { XEN_LEGACY_MAX_VCPUS } from '../../../shared/abi/xen.js';
import { XEN_ENOMEM } from '../../../shared/abi/errno.js';
import { check, mapForeignDomain, type XenDomain } from '../../../shared/xen/index.js';
import type { XsClient } from '../../../shared/xenstore/client.js';
import { DEFAULT_LAYOUT, SPECIAL_PFNS_END, startInfoAddress, writeStartInfo } from './start_info.js';
import { seedGrantTable } from './gnttab_seed.js';
import { removeDomainNodes, renameDomainNodes, writeDomainNodes } from './xenstore_layout.js';
import { Steps } from './steps.js';

export interface BuilderContext {
  /** Domain-0's own connection to its hypervisor. */
  dom0: XenDomain;
  /** A privileged xenstore connection (Dom0's socket to xenstored). */
  xs: XsClient;
  log: (msg: string) => void;
}

export interface PvBuildConfig {
  name: string;
  memoryMB: number;
  /** Ceiling for ballooning up (memory/static-max); defaults to memoryMB. */
  maxmemMB?: number;
  /** vCPUs online at boot. */
  vcpus: number;
  /** vCPUs the domain may ever have (cpu/<n>/availability entries); defaults to vcpus. */
  maxVcpus?: number;
  uuid?: string;
  cmdline?: string;
  /** The domain's program; defaults to the hypervisor's (processes/domu). */
  program?: string;
  args?: string[];
  /** Leave the domain paused after building it (xl create -p). */
  paused?: boolean;
  /** xl restore: the saved pages by pfn, copied in before start_info is written anew. */
  restorePages?: Map<number, Uint8Array>;
  /**
   * An incoming migration: the domain createPvShell made when the stream
   * began, its pages already written; the build goes on from there.
   */
  precreated?: number;
}

export interface PvDomain {
  domid: number;
  name: string;
  uuid: string;
  consolePort: number;
  consoleMfn: number;
  storePort: number;
  storeMfn: number;
  startInfoPfn: number;
  nrPages: number;
  maxPages: number;
  vcpus: number;
  maxVcpus: number;
  /** Milliseconds from createdomain to unpause. */
  buildMs: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function uuidBytes(uuid: string): number[] {
  return Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex'));
}

export class BuildError extends Error {
  constructor(readonly code: 'EINVAL' | 'ENOMEM' | 'EIO', message: string) {
    super(message);
    this.name = 'BuildError';
  }
}

function validate(cfg: PvBuildConfig): Required<Pick<PvBuildConfig, 'maxmemMB' | 'maxVcpus' | 'uuid' | 'cmdline'>> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(cfg.name)) throw new BuildError('EINVAL', `invalid domain name '${cfg.name}'`);
  const maxmemMB = cfg.maxmemMB ?? cfg.memoryMB;
  if (!Number.isInteger(cfg.memoryMB) || cfg.memoryMB < 1) throw new BuildError('EINVAL', `invalid memory ${cfg.memoryMB}`);
  if (!Number.isInteger(maxmemMB) || maxmemMB < cfg.memoryMB) throw new BuildError('EINVAL', `maxmem ${maxmemMB} below memory ${cfg.memoryMB}`);
  const maxVcpus = cfg.maxVcpus ?? cfg.vcpus;
  if (!Number.isInteger(cfg.vcpus) || cfg.vcpus < 1 || !Number.isInteger(maxVcpus) || maxVcpus < cfg.vcpus ||
      maxVcpus > XEN_LEGACY_MAX_VCPUS) {
    throw new BuildError('EINVAL', `invalid vcpus ${cfg.vcpus} (max ${maxVcpus})`);
  }
  const uuid = (cfg.uuid ?? randomUUID()).toLowerCase();
  if (!UUID_RE.test(uuid)) throw new BuildError('EINVAL', `invalid uuid '${cfg.uuid}'`);
  return { maxmemMB, maxVcpus, uuid, cmdline: cfg.cmdline ?? '' };
}

/**
 * The domain with its memory and limits, nothing in it yet (libxl's
 * domain create before the build): what an incoming migration writes its
 * pages into as they come. Destroyed again if a limit cannot be set.
 */
export async function createPvShell(ctx: BuilderContext, cfg: PvBuildConfig): Promise<number> {
  const v = validate(cfg);
  const { hv } = ctx.dom0;
  const memoryKb = cfg.memoryMB * 1024;
  const maxKb = v.maxmemMB * 1024;
  if (memoryKb / 4 <= SPECIAL_PFNS_END) throw new BuildError('EINVAL', `memory ${cfg.memoryMB} MB is too small`);
  const c = await hv.domctl<{ domain: number }>(XEN_DOMCTL_createdomain, {
    max_vcpus: v.maxVcpus, memory_kb: memoryKb, max_memkb: maxKb, handle: uuidBytes(v.uuid),
    xenemu: cfg.program || cfg.args ? { program: cfg.program, args: cfg.args } : undefined,
  });
  if (c.ret < 0) {
    throw new BuildError(c.ret === -XEN_ENOMEM ? 'ENOMEM' : 'EIO',
      `cannot create domain '${cfg.name}' (${cfg.memoryMB} MB): createdomain failed ${c.ret}`);
  }
  const domid = c.data!.domain;
  ctx.log(`builder: d${domid} '${cfg.name}' created, ${cfg.memoryMB} MB (max ${v.maxmemMB} MB), ${cfg.vcpus}/${v.maxVcpus} vCPUs`);
  try {
    check('max_mem', await hv.domctl(XEN_DOMCTL_max_mem, { domain: domid, max_memkb: maxKb }));
    check('max_vcpus', await hv.domctl(XEN_DOMCTL_max_vcpus, { domain: domid, max: v.maxVcpus }));
  } catch (err) {
    await hv.domctl(XEN_DOMCTL_destroydomain, { domain: domid });
    throw err;
  }
  return domid;
}

/**
 * What the build did before the guest's pages are final: the domain, its
 * event channels, grant table seed, vCPU context and xenstore nodes.
 */
export interface PreparedPvDomain {
  domid: number;
  cfg: PvBuildConfig;
  uuid: string;
  cmdline: string;
  storePort: number;
  consolePort: number;
  nrPages: number;
  maxKb: number;
  maxVcpus: number;
  /** When the build began (performance.now()). */
  t0: number;
}

/**
 * The part of a PV build that does not depend on the guest's pages: the
 * domain (unless cfg.precreated), the store and console ports, the grant
 * table's reserved entries, vCPU 0's context (rsi = start_info's address)
 * and the xenstore nodes under `nodesName` (an incoming migration's
 * `NAME--incoming`, as xl migrate-receive names it until the end). A failure
 * destroys the domain. `steps` gets each step's milliseconds.
 */
export async function preparePvDomain(ctx: BuilderContext, cfg: PvBuildConfig, steps?: Steps,
                                      nodesName = cfg.name): Promise<PreparedPvDomain> {
  const v = validate(cfg);
  const { hv } = ctx.dom0;
  const t0 = performance.now();
  const memoryKb = cfg.memoryMB * 1024;
  const maxKb = v.maxmemMB * 1024;
  const nrPages = memoryKb / 4;
  if (nrPages <= SPECIAL_PFNS_END) throw new BuildError('EINVAL', `memory ${cfg.memoryMB} MB is too small`);
  const step = steps ?? new Steps();

  const domid = cfg.precreated ?? await step.run('createdomain', () => createPvShell(ctx, { ...cfg, uuid: v.uuid }));
  try {
    // Both ports are the guest's, waiting for Dom0's backends to bind them.
    const [storePort, consolePort] = await step.run('evtchn', async () =>
      [await ctx.dom0.evtchn.allocUnbound(0, domid), await ctx.dom0.evtchn.allocUnbound(0, domid)]);
    const layout = DEFAULT_LAYOUT;
    await step.run('gnttab', () => seedGrantTable(hv, domid, { consolePfn: layout.consolePfn, consoleDomid: 0, storePfn: layout.storePfn, storeDomid: 0 }));
    await step.run('vcpucontext', async () => check('setvcpucontext', await hv.domctl(XEN_DOMCTL_setvcpucontext, {
      domain: domid, vcpu: 0, user_regs: { rsi: startInfoAddress(layout) } })));
    await step.run('xenstore', () => writeDomainNodes(ctx.xs, {
      domid, name: nodesName, uuid: v.uuid, targetKb: memoryKb, maxKb, vcpus: cfg.vcpus, maxVcpus: v.maxVcpus,
      storePort, storeMfn: layout.storePfn, consolePort, consoleMfn: layout.consolePfn, consoleBackend: 0,
    }));
    return { domid, cfg, uuid: v.uuid, cmdline: v.cmdline, storePort, consolePort, nrPages, maxKb, maxVcpus: v.maxVcpus, t0 };
  } catch (err) {
    await abandonPvDomain(ctx, domid, err);
    throw err instanceof BuildError ? err : new BuildError('EIO', `building d${domid}: ${(err as Error).message}`);
  }
}

/**
 * The rest of the build, on the guest's final pages: a save file's pages
 * copied in (cfg.restorePages), start_info written and the rings cleared
 * (after the pages, which would overwrite them), the name the nodes take
 * at last (`name`, when prepare used another), XS_INTRODUCE and
 * `alongside` (work of the caller's on the finished pages) at once, and the
 * unpause unless cfg.paused. A failure destroys the domain.
 */
export async function finishPvDomain(ctx: BuilderContext, p: PreparedPvDomain, steps?: Steps, name?: string,
                                     alongside?: () => Promise<unknown>): Promise<PvDomain> {
  const { hv } = ctx.dom0;
  const { cfg, domid } = p;
  const step = steps ?? new Steps();
  const layout = DEFAULT_LAYOUT;
  try {
    const mem = await mapForeignDomain(hv, domid);
    if (cfg.restorePages) {
      for (const [pfn, page] of cfg.restorePages) {
        if (pfn >= mem.nrFrames) throw new BuildError('EINVAL', `saved page ${pfn} beyond the domain's ${mem.nrFrames} frames`);
        mem.page(pfn).set(page);
      }
    }
    step.run('start_info', () => writeStartInfo(mem, layout, { nrPages: p.nrPages, storePort: p.storePort, consolePort: p.consolePort, cmdline: p.cmdline }));
    // Independent of each other: xenstored's and the caller's daemons work at once
    // (all settled before a failure undoes them).
    const done = await Promise.allSettled([
      name !== undefined ? step.run('rename', () => renameDomainNodes(ctx.xs, domid, p.uuid, name)) : undefined,
      step.run('introduce', () => ctx.xs.introduce(domid, layout.storePfn, p.storePort)),
      alongside?.(),
    ]);
    for (const d of done) if (d.status === 'rejected') throw d.reason;
    if (!cfg.paused) check('unpausedomain', await hv.domctl(XEN_DOMCTL_unpausedomain, { domain: domid }));
    const buildMs = performance.now() - p.t0;
    ctx.log(`builder: d${domid} built in ${buildMs.toFixed(1)} ms (store port ${p.storePort}, console port ${p.consolePort})`);
    return {
      domid, name: name ?? cfg.name, uuid: p.uuid, consolePort: p.consolePort, consoleMfn: layout.consolePfn, storePort: p.storePort,
      storeMfn: layout.storePfn, startInfoPfn: layout.startInfoPfn, nrPages: p.nrPages, maxPages: p.maxKb / 4,
      vcpus: cfg.vcpus, maxVcpus: p.maxVcpus, buildMs,
    };
  } catch (err) {
    await abandonPvDomain(ctx, domid, err);
    throw err instanceof BuildError ? err : new BuildError('EIO', `building d${domid}: ${(err as Error).message}`);
  }
}

async function abandonPvDomain(ctx: BuilderContext, domid: number, err: unknown): Promise<void> {
  ctx.log(`builder: d${domid} failed, destroying it: ${(err as Error).message}`);
  await ctx.xs.release(domid).catch(() => undefined);
  await removeDomainNodes(ctx.xs, domid).catch(() => undefined);
  await ctx.dom0.hv.domctl(XEN_DOMCTL_destroydomain, { domain: domid });
}

/** Creates, builds and (unless cfg.paused) unpauses a PV domain. */
export async function buildPvDomain(ctx: BuilderContext, cfg: PvBuildConfig, steps?: Steps): Promise<PvDomain> {
  return finishPvDomain(ctx, await preparePvDomain(ctx, cfg, steps), steps);
}
