// Life after the build: asking a PV guest to shut down (xl shutdown/reboot),
// moving its balloon (xl mem-set), its vCPUs (xl vcpu-set), and destroying it
// (xl destroy). Requests go through the guest's xenstore nodes, which the
// guest watches (Linux drivers/xen/manage.c, balloon.c, cpu_hotplug.c).
import { XEN_DOMCTL_destroydomain } from '../../../shared/abi/domctl.js';
import { XEN_ESRCH } from '../../../shared/abi/errno.js';
import { removeDomainNodes, domainPath } from './xenstore_layout.js';
import { BuildError, type BuilderContext } from './builder.js';
import { removeDomainBackends } from './device.js';

/**
 * What xl writes to control/shutdown (libxl_domain_shutdown/reboot; xm's
 * "halt"; "suspend" is what a save asks for). Crash is not something a
 * toolstack asks a guest for: the guest crashes by itself
 * (SCHEDOP_shutdown SHUTDOWN_crash), or xl destroy kills it.
 */
export type ShutdownRequest = 'poweroff' | 'reboot' | 'halt' | 'suspend';
const SHUTDOWN_REQUESTS: ReadonlySet<string> = new Set(['poweroff', 'reboot', 'halt', 'suspend']);

async function exists(ctx: BuilderContext, domid: number): Promise<boolean> {
  return (await ctx.xs.tryRead(`${domainPath(domid)}/domid`)) !== null;
}

/** Writes control/shutdown; the guest acts on it (and clears it). */
export async function shutdownDomain(ctx: BuilderContext, domid: number, reason: ShutdownRequest): Promise<void> {
  if (!SHUTDOWN_REQUESTS.has(reason)) throw new BuildError('EINVAL', `invalid shutdown reason '${reason}'`);
  if (!(await exists(ctx, domid))) throw new BuildError('EINVAL', `domain ${domid} has no xenstore home`);
  await ctx.xs.write(`${domainPath(domid)}/control/shutdown`, reason);
  ctx.log(`lifecycle: asked d${domid} to ${reason}`);
}

/** xl mem-set: memory/target in KiB; the guest's balloon follows. */
export async function setMemoryTarget(ctx: BuilderContext, domid: number, targetMB: number): Promise<void> {
  const dom = domainPath(domid);
  const max = Number(await ctx.xs.tryRead(`${dom}/memory/static-max`));
  const kb = Math.floor(targetMB * 1024);
  if (!Number.isFinite(max) || max <= 0) throw new BuildError('EINVAL', `domain ${domid} has no memory/static-max`);
  if (!Number.isInteger(kb) || kb <= 0 || kb > max) {
    throw new BuildError('EINVAL', `memory target ${targetMB} MB outside 1..${Math.floor(max / 1024)} MB`);
  }
  await ctx.xs.write(`${dom}/memory/target`, String(kb));
}

/** xl vcpu-set: cpu/<n>/availability for every possible vCPU. */
export async function setVcpus(ctx: BuilderContext, domid: number, count: number): Promise<void> {
  const dom = domainPath(domid);
  const cpus = await ctx.xs.directory(`${dom}/cpu`).catch(() => [] as string[]);
  const max = cpus.length;
  if (!Number.isInteger(count) || count < 1 || count > max) throw new BuildError('EINVAL', `vcpus ${count} outside 1..${max}`);
  await ctx.xs.transaction(async (tx) => {
    for (let i = 0; i < max; i++) await ctx.xs.write(`${dom}/cpu/${i}/availability`, i < count ? 'online' : 'offline', tx);
  });
}

/**
 * xl destroy, for every kind of guest once its kind let go of what it
 * started (guest_kind.ts): kill the domain (destroydomain ends its process
 * and frees its memory and segments), tell xenstored it is gone, remove its
 * nodes and back end directories.
 */
export async function destroyDomain(ctx: BuilderContext, domid: number): Promise<void> {
  if (domid === 0) throw new BuildError('EINVAL', 'cannot destroy Domain-0');
  const r = await ctx.dom0.hv.domctl(XEN_DOMCTL_destroydomain, { domain: domid });
  if (r.ret < 0 && r.ret !== -XEN_ESRCH) throw new BuildError('EIO', `destroydomain d${domid} failed: ${r.ret}`);
  await ctx.xs.release(domid).catch(() => undefined); // ENOENT when never introduced
  await removeDomainNodes(ctx.xs, domid);
  await removeDomainBackends(ctx, domid); // back ends see their directories go and let go
  ctx.log(`lifecycle: d${domid} destroyed`);
}

/** The name PV callers know destroyDomain by. */
export const destroyPvDomain = destroyDomain;
