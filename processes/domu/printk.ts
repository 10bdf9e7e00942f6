// The kernel log: Linux-style "[    1.234567] text" lines kept in a ring
// buffer (`dmesg`) and, while the kernel boots or goes down, echoed to the
// console as console_loglevel would let them through. Once the shell runs,
// routine messages (balloon, hotplug) stay in the buffer so they do not
// tear the prompt.
const MAX_LINES = 1000;

export class KernelLog {
  private readonly lines: string[] = [];
  private readonly t0: number;
  toConsole = true;

  /** `resumed`: a restored kernel's log and uptime go on from its suspend record. */
  constructor(private readonly out: (text: string) => void, resumed?: { uptimeS: number; lines: string[] }) {
    this.t0 = performance.now() - (resumed?.uptimeS ?? 0) * 1000;
    if (resumed) this.lines.push(...resumed.lines.slice(-MAX_LINES));
  }

  /** Seconds since boot, as the timestamps show them. */
  uptime(): number { return (performance.now() - this.t0) / 1000; }

  printk(msg: string, console = this.toConsole): void {
    const line = `[${this.uptime().toFixed(6).padStart(12)}] ${msg}`;
    this.lines.push(line);
    if (this.lines.length > MAX_LINES) this.lines.shift();
    if (console) this.out(`${line}\n`);
  }

  /** Untimestamped early output (Mini-OS's banner). */
  raw(text: string): void {
    for (const l of text.replace(/\n$/, '').split('\n')) { this.lines.push(l); if (this.lines.length > MAX_LINES) this.lines.shift(); }
    this.out(text);
  }

  dmesg(): string[] { return [...this.lines]; }
}
