// Virtual network interfaces, as libxl adds and removes them (libxl_nic.c,
// libxl_device.c): both xenstore directories in one transaction, then
// netback and the guest's netfront do the xenbus handshake.
//
//   /local/domain/0/backend/vif/<domid>/<devid>   n0,r<domid>
//     frontend, frontend-id, online=1, state=1, script, mac, bridge, handle,
//     type=vif, [ip]
//   /local/domain/<domid>/device/vif/<devid>      n<domid>,r0
//     backend, backend-id, state=1, handle, mac
//
// A vif without mac= gets 00:16:3e (Xen's OUI) + 3 random bytes, as xl
// does. Detach: online=0 and state=5 on the back end; once it is Closed(6)
// (or after a timeout) both directories go.
import { randomBytes } from 'node:crypto';
import type { VifSpec } from '../../../shared/toolstack/xlcfg.js';
import {
  XenbusState, backendPath, frontendPath,
} from '../../../shared/xen/xenbus.js';
import type { BuilderContext } from './builder.js';
import { BuildError } from './builder.js';
import { listDevices, removeDevice, writeDeviceDirs } from './device.js';

export const VIF_SCRIPT = '/etc/xen/scripts/vif-bridge';

/** libxl__random_mac / xl's generated MAC: 00:16:3e:xx:xx:xx, unicast. */
export function generateMac(): string {
  const b = randomBytes(3);
  return ['00', '16', '3e', ...Array.from(b, (x) => x.toString(16).padStart(2, '0'))].join(':');
}

export interface VifInfo {
  devid: number; backendId: number; mac: string; handle: number; state: number; evtch: number;
  txRingRef: number; rxRingRef: number; backend: string; bridge: string; ip: string;
}

/** The lowest devid not in use by the domain (libxl__device_nextid). */
async function nextDevid(ctx: BuilderContext, domid: number, tx: number): Promise<number> {
  const used = (await ctx.xs.directory(`/local/domain/${domid}/device/vif`, tx).catch(() => [] as string[])).map(Number);
  let id = 0;
  while (used.includes(id)) id++;
  return id;
}

/** libxl__device_nic_add: writes both directories; returns the devid and the MAC used. */
export async function addVif(ctx: BuilderContext, domid: number, vif: VifSpec): Promise<{ devid: number; mac: string }> {
  if (vif.type === 'ioemu') throw new BuildError('EINVAL', 'vif type=ioemu needs an HVM guest');
  if (vif.backend !== undefined && vif.backend !== '0' && vif.backend !== 'Domain-0') {
    throw new BuildError('EINVAL', `vif backend ${vif.backend}: only Domain-0 runs netback in xenemu`);
  }
  const mac = vif.mac ?? generateMac();
  const bridge = vif.bridge ?? 'xenbr0';
  const xs = ctx.xs;
  let devid = -1;
  await xs.transaction(async (tx) => {
    devid = vif.devid ?? await nextDevid(ctx, domid, tx);
    const be = backendPath(0, 'vif', domid, devid);
    const fe = frontendPath(domid, 'vif', devid);
    if ((await xs.tryRead(`${fe}/backend`, tx)) !== null) throw new BuildError('EINVAL', `vif ${devid} already exists in domain ${domid}`);
    const beKeys: Record<string, string> = {
      frontend: fe, 'frontend-id': String(domid), online: '1', state: String(XenbusState.Initialising),
      script: vif.script ?? VIF_SCRIPT, mac, bridge, handle: String(devid), type: 'vif',
      ...(vif.ip ? { ip: vif.ip } : {}), ...(vif.mtu ? { mtu: String(vif.mtu) } : {}),
    };
    const feKeys: Record<string, string> = {
      backend: be, 'backend-id': '0', state: String(XenbusState.Initialising), handle: String(devid), mac,
    };
    await writeDeviceDirs(ctx, tx, domid, be, beKeys, fe, feKeys);
  });
  ctx.log(`vif: d${domid} vif ${devid} mac ${mac} bridge ${bridge}${vif.ip ? ` ip ${vif.ip}` : ''}`);
  return { devid, mac };
}

/** Resolves `dev` (a devid or a MAC) to a devid of the domain, or -1. */
export async function findVif(ctx: BuilderContext, domid: number, dev: string): Promise<number> {
  for (const v of await listVifs(ctx, domid)) {
    if (/^\d+$/.test(dev) ? v.devid === Number(dev) : v.mac === dev.toLowerCase()) return v.devid;
  }
  return -1;
}

/** xl network-detach: the generic device remove (device.ts). */
export function removeVif(ctx: BuilderContext, domid: number, devid: number, timeoutMs = 10_000): Promise<void> {
  return removeDevice(ctx, 'vif', domid, devid, timeoutMs);
}

/** xl network-list rows (libxl_device_nic_getinfo). */
export function listVifs(ctx: BuilderContext, domid: number): Promise<VifInfo[]> {
  return listDevices(ctx, domid, 'vif', async ({ fe, devid, backend, str, num }) => ({
    devid, backendId: await num(`${fe}/backend-id`), mac: await str(`${fe}/mac`), handle: await num(`${fe}/handle`),
    state: await num(`${fe}/state`), evtch: await num(`${fe}/event-channel`), txRingRef: await num(`${fe}/tx-ring-ref`),
    rxRingRef: await num(`${fe}/rx-ring-ref`), backend,
    bridge: backend ? await str(`${backend}/bridge`) : '', ip: backend ? await str(`${backend}/ip`) : '',
  }));
}
