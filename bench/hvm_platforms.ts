// The three machines bench/hvm.ts boots the same files on, each behind one
// serial console (COM1 as text, and typing into it):
//
//   xenemu   `xl create -c` of an HVM config on a bench host: the HVM
//            builder, qemu-dm, v86 in the domain process; COM1 is qemu-dm's
//            PTY (`xl create -c` shows it until the prompt, then a PtyClient)
//   v86      v86 alone in one Node process (bench/hvm_v86.ts)
//   qemu     QEMU's TCG (`qemu-system-i386`, Debian's qemu-system-x86)
//
// All three get Debian's SeaBIOS (bios.bin) and VGA BIOS
// (vgabios-stdvga.bin), the same memory and the same disk images on IDE
// (hda, and a CD-ROM as the secondary master).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PtyClient } from '../launcher/pty_client.js';
import { XsClient } from '../shared/xenstore/client.js';
import type { Child } from './harness.js';
import type { SuiteContext } from './suite.js';
import type { BenchHost } from './xen_host.js';

export const SEABIOS = '/usr/share/seabios/bios.bin';
export const VGABIOS = '/usr/share/seabios/vgabios-stdvga.bin';
export const QEMU = 'qemu-system-i386';

export type Platform = 'xenemu' | 'v86' | 'qemu';

/** What all three boot: RAM as the guest sees it, and IDE images. */
export interface MachineSpec {
  name: string;
  ramMiB: number;
  hda?: string;
  cdrom?: string;
  /** Boot from the CD-ROM first (else the disk). */
  bootCd?: boolean;
}

/**
 * The same APIC setting on both sides of the ratio: xl.cfg's apic= for the
 * xenemu guest (1, its default), v86's acpi for v86 alone (bench/hvm_v86.ts
 * --apic); XENEMU_BENCH_HVM_APIC=0 takes it from both.
 */
export const HVM_APIC = process.env.XENEMU_BENCH_HVM_APIC !== '0';
/** The VGA memory every machine gets (xl.cfg videoram; libxl's minimum for stdvga). */
export const VGA_MIB = 16;

/** COM1 of a running machine. */
export interface SerialConsole {
  /** Everything received so far. */
  readonly text: string;
  write(s: string): void;
  /** Resolves with the match once `re` matches the text from `from` on. */
  until(re: RegExp, from: number, timeoutMs: number): Promise<RegExpExecArray>;
}

export interface Running {
  console: SerialConsole;
  /** performance.now() when the machine was asked for (the spawn of xl, node or qemu). */
  t0: number;
  stop(): Promise<void>;
}

/** A child process's stdout as a console, its stdin as the keyboard. */
class ChildConsole implements SerialConsole {
  text = '';
  private waiters: Array<() => void> = [];

  constructor(private readonly child: Child) {
    child.proc.stdout!.on('data', (d: string) => {
      this.text += d;
      for (const w of this.waiters.splice(0)) w();
    });
    void child.exited.then(() => { for (const w of this.waiters.splice(0)) w(); });
  }

  write(s: string): void { this.child.write(s); }

  until(re: RegExp, from: number, timeoutMs: number): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(`no ${re} within ${timeoutMs} ms`), timeoutMs);
      const fail = (why: string) => {
        clearTimeout(timer);
        reject(new Error(`${this.child.name}: ${why}; output:\n${this.text.slice(-2000)}\nstderr:\n${this.child.stderr().slice(-1500)}`));
      };
      const check = () => {
        const m = re.exec(this.text.slice(from));
        if (m) { clearTimeout(timer); resolve(m); return; }
        if (!this.child.running) { fail(this.child.describeExit({ code: this.child.proc.exitCode, signal: this.child.proc.signalCode })); return; }
        this.waiters.push(check);
      };
      check();
    });
  }
}

export function qemuMissing(): string | null {
  return spawnSync(QEMU, ['--version']).status === 0 ? null
    : `${QEMU} not found: install the Debian package qemu-system-x86 (bash .ci/setup --bench does)`;
}

/** v86 alone (bench/hvm_v86.ts), with a lifeline. */
export function startV86(ctx: SuiteContext, m: MachineSpec): Running {
  const args = [join(ctx.dist, 'bench', 'hvm_v86.js'), '--memory', String(m.ramMiB), '--vga-memory', String(VGA_MIB),
    '--bios', SEABIOS, '--vga-bios', VGABIOS, '--apic', HVM_APIC ? '1' : '0'];
  if (m.hda) args.push('--hda', m.hda);
  if (m.cdrom) args.push('--cdrom', m.cdrom);
  const t0 = performance.now();
  const c = ctx.scope.spawn(`v86 ${m.name}`, process.execPath, args, { lifeline: true, input: true });
  return { console: new ChildConsole(c), t0, stop: async () => { await c.stop(1000); } };
}

/**
 * QEMU's TCG with the PC xenemu's qemu-dm builds (i440FX, PIIX3 IDE, std
 * VGA, COM1, no NIC, no ACPI), COM1 on stdio. setpriv gives it
 * PR_SET_PDEATHSIG, so it dies with the runner however the runner dies.
 */
export function startQemu(ctx: SuiteContext, m: MachineSpec): Running {
  const args = ['--pdeathsig', 'KILL', QEMU, '-accel', 'tcg', '-machine', 'pc,acpi=off', '-m', String(m.ramMiB),
    '-bios', SEABIOS, '-nodefaults', '-vga', 'std', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot'];
  if (m.hda) args.push('-drive', `file=${m.hda},format=raw,if=ide,index=0`);
  if (m.cdrom) args.push('-drive', `file=${m.cdrom},format=raw,if=ide,index=2,media=cdrom,readonly=on`);
  args.push('-boot', m.bootCd ? 'd' : 'c');
  const t0 = performance.now();
  const c = ctx.scope.spawn(`qemu ${m.name}`, 'setpriv', args, { input: true });
  return { console: new ChildConsole(c), t0, stop: async () => { await c.stop(1000); } };
}

/**
 * An xenemu HVM guest's config with the same machine (videoram comes out of
 * memory, as libxl counts it), and `extra` lines (e.g. a stub domain's).
 */
export function hvmConfig(m: MachineSpec, extra: string[] = []): string {
  const disks: string[] = [];
  if (m.hda) disks.push(`'file:${m.hda},hda,w'`);
  if (m.cdrom) disks.push(`'file:${m.cdrom},hdc:cdrom,r'`);
  return [
    'type = "hvm"', `name = "${m.name}"`, `memory = ${m.ramMiB + VGA_MIB}`, `videoram = ${VGA_MIB}`, 'serial = "pty"',
    `boot = "${m.bootCd ? 'dc' : 'c'}"`, `disk = [ ${disks.join(', ')} ]`, 'on_crash = "preserve"', `apic = ${HVM_APIC ? 1 : 0}`, ...extra,
  ].join('\n');
}

/**
 * `xl create -c` of the guest: its stdout is COM1 until `until` matches
 * (the boot's end), then xl is detached and COM1 is the guest's PTY: qemu-dm's
 * serial/0 PTY, or with its device model in a stub domain (`extra` holding
 * device_model_stubdomain_override = 1) the stub's console, whose domid
 * comes back as `dmDomid`.
 */
export async function startXenemu(ctx: SuiteContext, h: BenchHost, m: MachineSpec, ready: RegExp, timeoutMs: number, extra: string[] = [])
  : Promise<Running & { readyMs: number; domid: number; dmDomid?: number }> {
  const cfg = h.file(`${m.name}.cfg`, hvmConfig(m, extra));
  const t0 = performance.now();
  const xl = ctx.scope.spawn(`xl create ${m.name}`, process.execPath, [h.cli, 'xl', 'create', '-c', cfg], { env: h.env });
  const boot = new ChildConsole(xl);
  const destroy = async () => {
    await xl.stop(1000);
    await ctx.scope.run(`xl destroy ${m.name}`, process.execPath, [h.cli, 'xl', 'destroy', m.name], { env: h.env }).catch(() => undefined);
  };
  let readyMs: number;
  try {
    await boot.until(ready, 0, timeoutMs);
    readyMs = performance.now() - t0;
  } catch (e) {
    await destroy();
    throw e;
  }
  await xl.stop(1000); // detaches the console; the guest runs on
  const xs = await XsClient.connect(join(h.rundir, 'xenstored.sock'));
  let pty: PtyClient;
  let domid: number;
  let dmDomid: number | undefined;
  try {
    domid = Number((await ctx.scope.run('xl domid', process.execPath, [h.cli, 'xl', 'domid', m.name], { env: h.env })).trim());
    const stub = await xs.tryRead(`/local/domain/${domid}/image/device-model-domid`);
    if (stub !== null) dmDomid = Number(stub);
    pty = new PtyClient(await xs.readString(dmDomid !== undefined ? `/local/domain/${dmDomid}/console/tty` : `/local/domain/${domid}/serial/0/tty`));
  } catch (e) {
    await destroy();
    throw e;
  } finally {
    xs.close();
  }
  const stop = async () => { await pty.close(); await destroy(); };
  return { console: pty, t0, readyMs, domid, dmDomid, stop };
}
