// Virtual block devices, as libxl adds and removes them (libxl_disk.c,
// libxl_device.c): both xenstore directories in one transaction, then the
// back end (blkback) and the guest's front end do the xenbus handshake.
//
//   /local/domain/0/backend/vbd/<domid>/<devid>   n0,r<domid>
//     frontend, frontend-id, online=1, state=1, params, mode, type, dev,
//     device-type, removable, bootable, discard-enable
//   /local/domain/<domid>/device/vbd/<devid>      n<domid>,r0
//     backend, backend-id, state=1, virtual-device, device-type
//
// Detach (libxl__initiate_device_generic_remove): online=0 and state=5 on
// the back end; once it reaches Closed(6) both directories go.
import { statSync } from 'node:fs';
import type { DiskSpec } from '../../../shared/toolstack/xlcfg.js';
import {
  XenbusState, backendPath, frontendPath,
} from '../../../shared/xen/xenbus.js';
import type { BuilderContext } from './builder.js';
import { BuildError } from './builder.js';
import { listDevices, removeDevice, writeDeviceDirs } from './device.js';
import { HOTPLUG_SCRIPTS } from './init_dom0.js';

/**
 * xvd<x> -> 202<<8 | disk<<4 (+ partition), hd<x> -> 3<<8 / 22<<8, sd<x> ->
 * 8<<8 | disk<<4, d<N> -> N (libxl_device_disk_dev_number). -1 when invalid.
 */
export function vdevToDevid(vdev: string): number {
  const m = /^(xvd|hd|sd)([a-z]+)(\d*)$/.exec(vdev);
  if (!m) {
    const d = /^d(\d+)(?:p(\d+))?$/.exec(vdev);
    return d ? Number(d[1]) : -1;
  }
  let disk = 0;
  for (const c of m[2]!) disk = disk * 26 + (c.charCodeAt(0) - 96);
  disk -= 1;
  const part = m[3] ? Number(m[3]) : 0;
  if (m[1] === 'xvd') return disk < 16 && part < 16 ? (202 << 8) | (disk << 4) | part : (1 << 28) | (disk << 8) | part;
  if (m[1] === 'hd') return disk < 4 ? ((disk < 2 ? 3 : 22) << 8) | ((disk & 1) << 6) | part : -1;
  return disk < 16 && part < 16 ? (8 << 8) | (disk << 4) | part : -1;
}

export interface VbdInfo {
  vdev: string; devid: number; backendId: number; frontendId: number; state: number; evtch: number; rref: number;
  backend: string;
}

/** Writes both directories of one disk (libxl__device_disk_add). */
function errnoText(e: NodeJS.ErrnoException): string {
  return e.code === 'ENOENT' ? 'No such file or directory' : e.code === 'EACCES' ? 'Permission denied' : (e.code ?? e.message);
}

/**
 * libxl__device_disk_set_backend stats the target before it picks a back
 * end; BuildError when it cannot.
 */
export function statDisk(disk: DiskSpec): void {
  try {
    statSync(disk.target);
  } catch (e) {
    throw new BuildError('EINVAL', `Disk vdev=${disk.vdev} failed to stat: ${disk.target}: ${errnoText(e as NodeJS.ErrnoException)}`);
  }
}

export async function addVbd(ctx: BuilderContext, domid: number, disk: DiskSpec): Promise<number> {
  const devid = vdevToDevid(disk.vdev);
  if (devid < 0) throw new BuildError('EINVAL', `invalid virtual disk identifier ${disk.vdev}`);
  if (disk.format !== 'raw') throw new BuildError('EINVAL', `disk ${disk.vdev}: format ${disk.format} is not supported (raw only)`);
  if (!disk.target) throw new BuildError('EINVAL', `disk ${disk.vdev}: no target`);
  statDisk(disk);
  const be = backendPath(0, 'vbd', domid, devid);
  const fe = frontendPath(domid, 'vbd', devid);
  const xs = ctx.xs;
  await xs.transaction(async (tx) => {
    if ((await xs.tryRead(`${fe}/backend`, tx)) !== null) throw new BuildError('EINVAL', `device ${disk.vdev} already exists in domain ${domid}`);
    const beKeys: Record<string, string> = {
      frontend: fe, 'frontend-id': String(domid), online: '1', state: String(XenbusState.Initialising),
      params: disk.target, mode: disk.access === 'ro' ? 'r' : 'w', type: 'file', dev: disk.vdev,
      'device-type': disk.devtype, removable: disk.devtype === 'cdrom' ? '1' : '0', bootable: '1',
      'discard-enable': disk.discard === false ? '0' : '1', script: disk.script ?? HOTPLUG_SCRIPTS.vbd,
    };
    const feKeys: Record<string, string> = {
      backend: be, 'backend-id': '0', state: String(XenbusState.Initialising), 'virtual-device': String(devid),
      'device-type': disk.devtype,
    };
    await writeDeviceDirs(ctx, tx, domid, be, beKeys, fe, feKeys);
  });
  ctx.log(`vbd: d${domid} ${disk.vdev} (${devid}) -> ${disk.target} ${disk.access}`);
  return devid;
}

/** Resolves `dev` (a vdev name or a devid) to a devid of the domain, or -1. */
export async function findVbd(ctx: BuilderContext, domid: number, dev: string): Promise<number> {
  const devid = /^\d+$/.test(dev) ? Number(dev) : vdevToDevid(dev);
  if (devid < 0) return -1;
  return (await ctx.xs.tryRead(`${frontendPath(domid, 'vbd', devid)}/backend`).catch(() => null)) === null ? -1 : devid;
}

/** xl block-detach: the generic device remove (device.ts). */
export function removeVbd(ctx: BuilderContext, domid: number, devid: number, timeoutMs = 10_000): Promise<void> {
  return removeDevice(ctx, 'vbd', domid, devid, timeoutMs);
}

/** xl block-list rows (libxl_device_disk_getinfo). */
export function listVbds(ctx: BuilderContext, domid: number): Promise<VbdInfo[]> {
  return listDevices(ctx, domid, 'vbd', async ({ fe, devid, backend, str, num }) => ({
    vdev: (backend && await str(`${backend}/dev`)) || String(devid), devid, backendId: await num(`${fe}/backend-id`),
    frontendId: domid, state: await num(`${fe}/state`), evtch: await num(`${fe}/event-channel`),
    rref: await num(`${fe}/ring-ref`), backend,
  }));
}
