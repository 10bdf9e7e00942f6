// What the shell's commands may use of the kernel: one interface, so the
// commands can be exercised without a hypervisor.
import type { StartInfo } from '../../shared/abi/xen.js';
import type { XsClient } from '../../shared/xenstore/client.js';
import type { Balloon } from './balloon.js';
import type { Vcpus } from './cpu.js';
import type { KernelLog } from './printk.js';
import type { NetInterfaces } from './net/interfaces.js';
import type { MemRegion } from './suspend.js';
import type { Pcifront } from './drivers/pcifront.js';

export interface KernelServices {
  domid: number;
  /** The domain's name (xenstore `name`), which is also its hostname. */
  hostname: string;
  startInfo: StartInfo;
  xs: XsClient;
  balloon: Balloon;
  vcpus: Vcpus;
  klog: KernelLog;
  /** Network interfaces (netfront + IPv4 stack), when the kernel has them. */
  net?: NetInterfaces;
  /** pcifront with the PCI devices passed through to this guest, when it has any (its devices are PciDeviceHandles). */
  pci?: Pcifront;
  /** The pages memfill wrote and its seed (memcheck, suspend.ts), or null. */
  mem?: MemRegion | null;
  /** Wall-clock time of boot (ms since the epoch). */
  bootTime: number;
  /** SCHEDOP_shutdown with a SHUTDOWN_* reason, after the console drained. */
  shutdown(reason: number): Promise<void>;
}

export interface CommandIo {
  out(text: string): void;
  /** Aborted by Ctrl-C. */
  signal: AbortSignal;
  /** Reads the terminal: each line typed (with its newline) goes to `fn` until the command ends. */
  readLines?(fn: (line: string) => void): void;
}

export interface Command {
  name: string;
  /** One line for `help`. */
  help: string;
  run(argv: string[], io: CommandIo, k: KernelServices): Promise<number> | number;
}
