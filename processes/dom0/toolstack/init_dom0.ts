// What Xen's xen-init-dom0 (tools/helpers/xen-init-dom0.c) does once at a
// Domain-0's boot, done by xenemu's Domain-0 as its services start, so that
// Xen's own tools find Domain-0 as on a Xen host:
//
//   /local/domain/0/domid = 0, /local/domain/0/name = Domain-0   (libxl_domid_to_name)
//   /local/pool/0/name = Pool-0                                   (libxl_cpupoolid_to_name)
//   Domain-0's stub libxl-json config (init-dom-json.c)           (xl list -l)
//
// and what a Debian Domain-0 has on disk for them, under <rundir>/dom0/
// (shared/host.ts dom0SystemPath): /etc/xen/xl.conf, /var/lib/xen,
// /var/log/xen, /var/run/xen, /var/lock, the hotplug scripts libxl runs
// when it adds or removes a device (/etc/xen/scripts/vif-bridge, block: here
// they only say that netback and blkback do that work themselves, when the
// back end's xenstore directory comes and goes); and <rundir>/xen-backend/devices,
// the back ends' sysfs directory (processes/dom0/backend_stats.ts), which
// exists even while there is no device, as /sys/bus/xen-backend/devices does.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { XsClient } from '../../../shared/xenstore/client.js';
import { DOM0_SYSTEM_DIRS, dom0SystemPath } from '../../../shared/host.js';
import { libxlDom0Config, storeLibxlJson } from './libxl_json.js';
import { backendRoot } from '../backend_stats.js';

/** Domain-0's handle (XEN_DOMCTL_createdomain made it with a nil UUID, as Xen does). */
export const DOM0_UUID = '00000000-0000-0000-0000-000000000000';

const XL_CONF = `# /etc/xen/xl.conf of a xenemu host's Domain-0 (docs/xenctrl.md): read by
# Xen's xl run with \`xenemu run\`. xl.conf(5).

# Domain-0 has a fixed size on xenemu (the hypervisor's dom0_mem=): never
# balloon it down to make room for a guest.
autoballoon="off"
`;

/** The hotplug scripts libxl runs (libxl_linux.c), by the name the back ends' `script` keys give. */
export const HOTPLUG_SCRIPTS = { vif: '/etc/xen/scripts/vif-bridge', vbd: '/etc/xen/scripts/block' } as const;

const hotplugScript = (what: string) => `#!/bin/sh
# ${what} of a xenemu host's Domain-0 (docs/xenctrl.md): Xen's libxl runs it
# with "online"/"add" or "offline"/"remove" when a device comes or goes. On
# xenemu the back ends (netback, blkback) follow their xenstore directories
# themselves: the bridge port and the image are theirs to take and release.
exit 0
`;

export async function initDom0(xs: XsClient, rundir: string): Promise<void> {
  for (const d of DOM0_SYSTEM_DIRS) mkdirSync(dom0SystemPath(rundir, d), { recursive: true });
  const conf = dom0SystemPath(rundir, '/etc/xen/xl.conf');
  if (!existsSync(conf)) writeFileSync(conf, XL_CONF);
  mkdirSync(dom0SystemPath(rundir, '/etc/xen/scripts'), { recursive: true });
  for (const script of Object.values(HOTPLUG_SCRIPTS)) {
    const file = dom0SystemPath(rundir, script);
    writeFileSync(file, hotplugScript(script));
    chmodSync(file, 0o755);
  }
  mkdirSync(join(backendRoot(rundir), 'devices'), { recursive: true });
  storeLibxlJson(rundir, 0, DOM0_UUID, libxlDom0Config());
  await xs.write('/local/domain/0/domid', '0');
  await xs.write('/local/domain/0/name', 'Domain-0');
  await xs.write('/local/pool/0/name', 'Pool-0');
}
