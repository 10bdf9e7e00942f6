// What every split device shares in the toolstack (libxl_device.c): the
// xenstore directories of a new device, the generic remove of one device,
// the back end directories of a dead domain, and the walk of a domain's
// devices for the list commands. vbd.ts and vif.ts add the device-specific
// keys.
import { XenbusState, backendPath, frontendPath, xenbusReadInt, xenbusWaitState } from '../../../shared/xen/xenbus.js';
import type { BuilderContext } from './builder.js';

/**
 * libxl's own record of a device, /libxl/<domid>/device/<type>/<devid>
 * (libxl__device_libxl_path): `frontend`, `backend` and a copy of the back
 * end's keys, under the domain's Domain-0-only /libxl/<domid>. Xen's libxl
 * lists a domain's devices from here (libxl__device_list: xl list -l,
 * block-list, network-list).
 */
export function deviceLibxlPath(domid: number, type: string, devid: number): string {
  return `/libxl/${domid}/device/${type}/${devid}`;
}

/**
 * libxl__device_generic_add, inside the caller's transaction `tx`: the back
 * end directory (Domain-0's, readable by the guest) and the front end
 * directory (the guest's, readable by Domain-0) with their keys, and libxl's
 * record of the device. `be` is /local/domain/0/backend/<type>/<domid>/<devid>.
 */
export async function writeDeviceDirs(ctx: BuilderContext, tx: number, domid: number,
                                      be: string, beKeys: Record<string, string>,
                                      fe: string, feKeys: Record<string, string>): Promise<void> {
  const xs = ctx.xs;
  await xs.mkdir(be, tx);
  await xs.setPerms(be, ['n0', `r${domid}`], tx);
  for (const [k, v] of Object.entries(beKeys)) await xs.write(`${be}/${k}`, v, tx);
  await xs.mkdir(fe, tx);
  await xs.setPerms(fe, [`n${domid}`, 'r0'], tx);
  for (const [k, v] of Object.entries(feKeys)) await xs.write(`${fe}/${k}`, v, tx);
  const [type, , devid] = be.split('/').slice(-3);
  const lx = deviceLibxlPath(domid, type!, Number(devid));
  await xs.write(`${lx}/frontend`, fe, tx);
  await xs.write(`${lx}/backend`, be, tx);
  for (const [k, v] of Object.entries(beKeys)) await xs.write(`${lx}/${k}`, v, tx);
}

/**
 * libxl__initiate_device_generic_remove: online=0 and state=Closing on the
 * back end; once it reaches Closed (or after a timeout) both directories go.
 */
export async function removeDevice(ctx: BuilderContext, type: string, domid: number, devid: number,
                                   timeoutMs = 10_000): Promise<void> {
  const be = backendPath(0, type, domid, devid);
  const fe = frontendPath(domid, type, devid);
  const xs = ctx.xs;
  if ((await xenbusReadInt(xs, be, 'state')) !== XenbusState.Closed) {
    await xs.transaction(async (tx) => {
      await xs.write(`${be}/online`, '0', tx);
      await xs.write(`${be}/state`, String(XenbusState.Closing), tx);
    });
    try {
      await xenbusWaitState(xs, be, [XenbusState.Closed], { timeoutMs });
    } catch {
      ctx.log(`${type}: d${domid}/${devid}: the back end did not close in ${timeoutMs} ms; removing it anyway`);
    }
  }
  await xs.rm(fe).catch(() => undefined);
  await xs.rm(be).catch(() => undefined);
  await xs.rm(deviceLibxlPath(domid, type, devid)).catch(() => undefined);
  ctx.log(`${type}: d${domid}/${devid} removed`);
}

/**
 * The back end directories of a dead domain (libxl__devices_destroy), of the
 * given device types or of all: back ends see them go and let go.
 */
export async function removeDomainBackends(ctx: BuilderContext, domid: number, types?: string[]): Promise<void> {
  const all = types ?? await ctx.xs.directory('/local/domain/0/backend').catch(() => [] as string[]);
  for (const type of all) await ctx.xs.rm(`/local/domain/0/backend/${type}/${domid}`).catch(() => undefined);
}

/** Reads a device's keys for the list commands: absent keys are '' or -1, as xl prints them. */
export interface DeviceKeys {
  /** The front end directory, /local/domain/<domid>/device/<type>/<devid>. */
  fe: string;
  devid: number;
  /** The back end directory the front end names ('' when it names none). */
  backend: string;
  str(path: string): Promise<string>;
  num(path: string): Promise<number>;
}

/**
 * One row per device of `type` of a domain, by devid (libxl__device_list):
 * the front end directories are walked and `row` reads what a list shows.
 */
export async function listDevices<T>(ctx: BuilderContext, domid: number, type: string,
                                     row: (k: DeviceKeys) => Promise<T>): Promise<T[]> {
  const xs = ctx.xs;
  const str = async (p: string) => (await xs.tryRead(p).catch(() => null)) ?? '';
  const num = async (p: string) => { const v = await xs.tryRead(p).catch(() => null); return v === null || v === '' ? -1 : Number(v); };
  const devids = (await xs.directory(`/local/domain/${domid}/device/${type}`).catch(() => [] as string[]))
    .filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => a - b);
  const out: T[] = [];
  for (const devid of devids) {
    const fe = frontendPath(domid, type, devid);
    out.push(await row({ fe, devid, backend: await str(`${fe}/backend`), str, num }));
  }
  return out;
}
