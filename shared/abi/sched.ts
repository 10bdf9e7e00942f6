// Constants from xen/include/public/sched.h (Xen 4.17).

export const SCHEDOP_yield = 0;
export const SCHEDOP_block = 1;
export const SCHEDOP_shutdown = 2;
export const SCHEDOP_poll = 3;
export const SCHEDOP_remote_shutdown = 4;
export const SCHEDOP_shutdown_code = 5;
export const SCHEDOP_watchdog = 6;

export const SHUTDOWN_poweroff = 0;
export const SHUTDOWN_reboot = 1;
export const SHUTDOWN_suspend = 2;
export const SHUTDOWN_crash = 3;
export const SHUTDOWN_watchdog = 4;
export const SHUTDOWN_soft_reset = 5;
export const SHUTDOWN_MAX = 5;

export const SHUTDOWN_NAMES: Record<number, string> = {
  [SHUTDOWN_poweroff]: 'poweroff', [SHUTDOWN_reboot]: 'reboot', [SHUTDOWN_suspend]: 'suspend',
  [SHUTDOWN_crash]: 'crash', [SHUTDOWN_watchdog]: 'watchdog', [SHUTDOWN_soft_reset]: 'soft_reset',
};

export interface sched_shutdown { reason: number }
export interface sched_remote_shutdown { domain_id: number; reason: number }
