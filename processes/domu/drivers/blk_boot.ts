// Block devices at boot (the kernel's one call): connect the vbds the
// toolstack configured, mount the first formatted one at /, follow hotplug,
// and give the shell its block commands.
import type { XenDomain } from '../../../shared/xen/index.js';
import type { XsClient } from '../../../shared/xenstore/client.js';
import type { Balloon } from '../balloon.js';
import type { KernelLog } from '../printk.js';
import type { Command } from '../services.js';
import { BlockDevices } from './blkdev.js';
import { SimpleFs } from './simplefs.js';
import { blkCommands, type Mounts } from '../commands/blk.js';

export async function startBlockDevices(dom: XenDomain, xs: XsClient, balloon: Balloon, klog: KernelLog): Promise<{ commands: Command[]; devices: BlockDevices }> {
  const mounts: Mounts = { root: null };
  const blk = new BlockDevices({
    dom, xs, log: (m) => klog.printk(m), reservePages: (n) => balloon.reserve(n),
  }, dom.domid);
  blk.onConnect = async (d) => {
    klog.printk(`blkfront: ${d.name}: connected`);
    if (mounts.root) return;
    const fs = await SimpleFs.mount(d).catch(() => null);
    if (fs) { mounts.root = fs; klog.printk(`EXT: mounted filesystem /dev/${d.name} on / (${fs.list().length} files)`); }
  };
  blk.onRemove = (d) => {
    klog.printk(`blkfront: ${d.name}: removed`);
    if (mounts.root?.dev === d) mounts.root = null;
  };
  await blk.start().catch((e: Error) => klog.printk(`blkfront: ${e.message}`));
  return { commands: blkCommands(blk, mounts), devices: blk };
}
