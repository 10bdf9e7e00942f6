// control/shutdown (Linux drivers/xen/manage.c shutdown_handler): the
// toolstack writes a request; the guest reads it in a transaction, clears it
// only if it is one it handles, and then shuts down with SCHEDOP_shutdown.
// "suspend" (xl save, migration) goes to the kernel's suspend (suspend.ts);
// anything else is left in place and ignored, as Linux does.
import { SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend } from '../../shared/abi/sched.js';
import type { XsClient } from '../../shared/xenstore/client.js';
import type { KernelLog } from './printk.js';

const HANDLERS: Record<string, number> = {
  poweroff: SHUTDOWN_poweroff,
  halt: SHUTDOWN_poweroff,
  reboot: SHUTDOWN_reboot,
  suspend: SHUTDOWN_suspend,
};

export async function watchShutdown(xs: XsClient, klog: KernelLog, shutdown: (reason: number) => void): Promise<void> {
  let busy = false;
  const handle = async () => {
    if (busy) return;
    busy = true;
    try {
      const req = await xs.transaction(async (tx) => {
        const v = await xs.tryRead('control/shutdown', tx);
        if (!v) return null;
        if (v in HANDLERS) await xs.write('control/shutdown', '', tx);
        return v;
      });
      if (req === null) return;
      const reason = HANDLERS[req];
      if (reason === undefined) { klog.printk(`xen:manage: Ignoring shutdown request: ${req}`); return; }
      klog.printk(`xen:manage: shutdown request '${req}'`, true);
      shutdown(reason);
    } catch (e) {
      klog.printk(`xen:manage: reading control/shutdown: ${(e as Error).message}`);
    } finally {
      busy = false;
    }
  };
  await xs.watch('control/shutdown', 'shutdown', () => void handle());
}
