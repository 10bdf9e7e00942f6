// The shell's system commands, printing what their Linux counterparts print.
import { SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot } from '../../../shared/abi/sched.js';
import type { Command, KernelServices } from '../services.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number) => String(n).padStart(2, '0');

/** date(1)'s default format in UTC: "Thu Jan  4 09:05:01 UTC 2024". */
export function formatDate(d: Date): string {
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} UTC ${d.getUTCFullYear()}`;
}

/** uptime(1): " 09:05:01 up 3 min,  1 user,  load average: 0.00, 0.00, 0.00". */
export function formatUptime(now: Date, upSeconds: number, load: [number, number, number]): string {
  const mins = Math.floor(upSeconds / 60);
  const days = Math.floor(mins / 1440);
  const h = Math.floor((mins % 1440) / 60);
  const m = mins % 60;
  let up = days > 0 ? `${days} day${days === 1 ? '' : 's'}, ` : '';
  up += h > 0 ? `${String(h).padStart(2)}:${pad2(m)}` : `${m} min`;
  return ` ${pad2(now.getUTCHours())}:${pad2(now.getUTCMinutes())}:${pad2(now.getUTCSeconds())} up ${up},  1 user,  ` +
    `load average: ${load.map((l) => l.toFixed(2)).join(', ')}`;
}

/** free(1) in kB (or -m MiB): total is what the balloon holds now. */
export function formatFree(k: KernelServices, unit: 'k' | 'm'): string {
  const div = unit === 'm' ? 1024 : 1;
  const totalKb = k.balloon.pages * 4;
  const usedKb = (k.balloon.floor) * 4; // kernel image and the special pages
  const freeKb = totalKb - usedKb;
  const row = (label: string, vals: number[]) => label.padEnd(7) + vals.map((v) => ' ' + String(Math.floor(v / div)).padStart(11)).join('');
  return `${' '.repeat(7)}${['total', 'used', 'free', 'shared', 'buff/cache', 'available'].map((h) => ' ' + h.padStart(11)).join('')}\n` +
    `${row('Mem:', [totalKb, usedKb, freeKb, 0, 0, freeKb])}\n` +
    `${row('Swap:', [0, 0, 0])}\n`;
}

function cpuTime(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${pad2(Math.floor(s / 3600))}:${pad2(Math.floor((s % 3600) / 60))}:${pad2(s % 60)}`;
}

/** A load average fed by burn: the number of busy vCPUs, decayed like Linux's calc_load. */
export class LoadAverage {
  private load: [number, number, number] = [0, 0, 0];
  private last = performance.now();
  busy = 0;

  sample(): [number, number, number] {
    const now = performance.now();
    const dt = (now - this.last) / 1000;
    this.last = now;
    const periods = [60, 300, 900];
    this.load = this.load.map((l, i) => {
      const e = Math.exp(-dt / periods[i]!);
      return l * e + this.busy * (1 - e);
    }) as [number, number, number];
    return this.load;
  }
}

export const loadAverage = new LoadAverage();

export const systemCommands: Command[] = [
  {
    name: 'uname', help: 'print system information (-a, -s, -n, -r, -v, -m)',
    run(argv, io, k) {
      const f = { s: 'Linux', n: k.hostname, r: 'xenemu-pv', v: '#1 SMP', m: 'x86_64' };
      const flags = argv.slice(1).join('').replace(/-/g, '');
      if (/[^asnrvmo]/.test(flags)) { io.out(`uname: invalid option -- '${flags.replace(/[asnrvmo]/g, '')[0]}'\n`); return 1; }
      const all = flags.includes('a');
      const parts = (['s', 'n', 'r', 'v', 'm'] as const).filter((c) => all || flags.includes(c)).map((c) => f[c]);
      io.out(`${parts.length ? parts.join(' ') : f.s}\n`);
      return 0;
    },
  },
  {
    name: 'hostname', help: 'print the host name',
    run(_a, io, k) { io.out(`${k.hostname}\n`); return 0; },
  },
  {
    name: 'uptime', help: 'how long the guest has been up',
    run(_a, io, k) { io.out(`${formatUptime(new Date(), k.klog.uptime(), loadAverage.sample())}\n`); return 0; },
  },
  {
    name: 'free', help: 'memory in kB (-m for MiB), following the balloon',
    run(argv, io, k) { io.out(formatFree(k, argv.includes('-m') ? 'm' : 'k')); return 0; },
  },
  {
    name: 'ps', help: 'kernel threads, vCPUs and the shell',
    run(_a, io, k) {
      const rows: [number, string, number, string][] = [
        [1, '?', 0, 'init'], [2, '?', 0, 'kthreadd'], [3, '?', 0, 'xenbus'], [4, '?', 0, 'xenwatch'],
        [5, '?', 0, 'xen-balloon'],
      ];
      for (let i = 0; i < k.vcpus.online; i++) rows.push([10 + i, '?', k.vcpus.cpuMs[i] ?? 0, `vcpu/${i}`]);
      rows.push([100, 'hvc0', 0, 'sh'], [101, 'hvc0', 0, 'ps']);
      io.out('  PID TTY          TIME CMD\n');
      for (const [pid, tty, ms, cmd] of rows) io.out(`${String(pid).padStart(5)} ${tty.padEnd(8)} ${cpuTime(ms)} ${cmd}\n`);
      return 0;
    },
  },
  {
    name: 'date', help: 'print the date (UTC)',
    run(_a, io) { io.out(`${formatDate(new Date())}\n`); return 0; },
  },
  {
    name: 'echo', help: 'print its arguments (-n: no newline)',
    run(argv, io) {
      const noNl = argv[1] === '-n';
      io.out(argv.slice(noNl ? 2 : 1).join(' ') + (noNl ? '' : '\n'));
      return 0;
    },
  },
  {
    name: 'dmesg', help: 'print the kernel log',
    run(_a, io, k) { for (const l of k.klog.dmesg()) io.out(`${l}\n`); return 0; },
  },
  {
    name: 'burn', help: 'burn SECONDS of CPU on every online vCPU (Ctrl-C stops it)',
    async run(argv, io, k) {
      const s = Number(argv[1]);
      if (argv.length !== 2 || !Number.isFinite(s) || s < 0) { io.out('usage: burn SECONDS\n'); return 1; }
      loadAverage.sample();
      loadAverage.busy = k.vcpus.online;
      const t0 = performance.now();
      let r: { cpuMs: number };
      try { r = await k.vcpus.burn(s, io.signal); } finally { loadAverage.sample(); loadAverage.busy = 0; }
      const wall = (performance.now() - t0) / 1000;
      io.out(`burn: ${wall.toFixed(2)} s on ${k.vcpus.online} vCPU${k.vcpus.online === 1 ? '' : 's'}, ` +
             `${Math.round(r.cpuMs)} ms CPU${io.signal.aborted ? ' (interrupted)' : ''}\n`);
      return io.signal.aborted ? 130 : 0;
    },
  },
  {
    name: 'poweroff', help: 'power the domain off (SHUTDOWN_poweroff)',
    async run(_a, _io, k) { await k.shutdown(SHUTDOWN_poweroff); return 0; },
  },
  {
    name: 'halt', help: 'same as poweroff',
    async run(_a, _io, k) { await k.shutdown(SHUTDOWN_poweroff); return 0; },
  },
  {
    name: 'reboot', help: 'reboot the domain (SHUTDOWN_reboot)',
    async run(_a, _io, k) { await k.shutdown(SHUTDOWN_reboot); return 0; },
  },
  {
    name: 'crash', help: 'crash the kernel (SHUTDOWN_crash)',
    async run(_a, io, k) {
      k.klog.printk('Kernel panic - not syncing: crash requested from the shell', true);
      io.out('');
      await k.shutdown(SHUTDOWN_crash);
      return 0;
    },
  },
];
