// The one module that knows v86's internals (npm v86 0.5.462, pinned): an
// x86 processor with the platform devices Xen emulates inside the
// hypervisor, whose RAM is the domain's memory segment and whose other
// devices are taken away, so that every other access can be handed to a
// device model as an ioreq (docs/hvm.md).
//
// v86 is written for a browser tab: it builds a whole PC (PCI, IDE, VGA,
// UART, ...) and runs it from its own event loop. Here it is a processor
// only: the domain's vCPU thread calls main_loop() itself, inside the
// scheduler's slices, and every I/O port and MMIO block handler can be
// replaced (io.ports[p], memory_map_*[block]; the last writer wins). The
// APIs used are internal to v86; if a v86 upgrade moves one, this file is
// where it breaks, and the HVM tests (test/hvm/seabios.test.ts first) say so.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { shmMapInto } from '../../../shared/shm.js';
import { PAGE_SIZE } from '../../../shared/abi/xen.js';

/** What v86's CPU object offers that this module uses. */
interface V86Cpu {
  main_loop(): number;
  handle_irqs(): void;
  device_raise_irq(irq: number): void;
  device_lower_irq(irq: number): void;
  jit_dirty_cache(start: number, end: number): void;
  jit_clear_cache(): void;
  reboot_internal(): void;
  get_pic_addr_master(): number;
  mem8: Uint8Array;
  wasm_memory: WebAssembly.Memory;
  in_hlt: Uint8Array;
  protected_mode: Int32Array;
  idtr_size: Int32Array;
  idtr_offset: Int32Array;
  reg32: Int32Array;
  previous_ip: Int32Array;
  segment_offsets: Int32Array;
  is_32: Int32Array;
  flags: Int32Array;
  cr: Int32Array;
  io: {
    ports: PortEntry[];
    port_read8(port: number): number;
    port_read16(port: number): number;
    port_read32(port: number): number;
    mmap_register(addr: number, size: number, r8: (a: number) => number, w8: (a: number, v: number) => void,
                  r32?: (a: number) => number, w32?: (a: number, v: number) => void): void;
  };
  devices: Record<string, unknown> & {
    acpi?: { timer(now: number): number };
    rtc: { cmos_read(index: number): number; cmos_write(index: number, value: number): void };
    pit: { counter_start_time: Float64Array };
  };
  pack_memory(): { packed_memory: Uint8Array; bitmap: { get_buffer(): ArrayBuffer } };
  unpack_memory(bitmap: unknown, packed: Uint8Array): void;
  get_apic_addr(): number;
  memory_map_read8: (((a: number) => number) | undefined)[];
  memory_map_write8: (((a: number, v: number) => void) | undefined)[];
  memory_map_read32: (((a: number) => number) | undefined)[];
  memory_map_write32: (((a: number, v: number) => void) | undefined)[];
}

interface PortEntry {
  read8(port: number): number;
  read16(port: number): number;
  read32(port: number): number;
  write8(v: number): void;
  write16(v: number): void;
  write32(v: number): void;
  device: unknown;
}

interface V86Emulator {
  v86: { cpu: V86Cpu; save_state(): ArrayBuffer; restore_state(state: ArrayBuffer | Uint8Array): void };
  add_listener(ev: string, fn: () => void): void;
  destroy(): void;
}

/** CMOS bytes (SeaBIOS's std/... rtc.h names): the floppy drive types, and the equipment byte with its floppy bits (present, count - 1). */
const CMOS_FLOPPY_DRIVE_TYPE = 0x10;
const CMOS_EQUIPMENT_INFO = 0x14;
const EQUIPMENT_FLOPPY_MASK = 0xc1;

/** Segment override prefixes, in v86's segment register order (ES CS SS DS FS GS). */
const SEGMENT_PREFIX = [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];
/** v86's 8259 state (src/rust/cpu/pic.rs Pic0, repr(C)): its size and ELCR's byte. */
const PIC_STATE_BYTES = 13;
const PIC_ELCR = 10;
/** EFLAGS.IF. */
const FLAG_IF = 0x200;

/** v86's MMIO granularity (const.js MMAP_BLOCK_BITS = 17). */
export const MMAP_BLOCK_BITS = 17;
export const MMAP_BLOCK_SIZE = 1 << MMAP_BLOCK_BITS;

/**
 * Ports whose v86 devices stay: what Xen emulates in the hypervisor (PIC,
 * PIT and the speaker gate on 0x61, RTC/CMOS, ELCR) and the legacy platform
 * xenemu keeps beside the processor rather than in qemu-dm: the 8237 DMA
 * controllers and their page registers, the 8042 keyboard controller, port
 * 0x92's A20 gate, and QEMU's fw_cfg, which SeaBIOS reads for the memory
 * size. Everything else is routed by the ioreq servers' ranges.
 */
export const PLATFORM_PORTS: ReadonlyArray<readonly [number, number]> = [
  [0x00, 0x0f], [0x20, 0x21], [0x40, 0x43], [0x60, 0x60], [0x61, 0x61], [0x64, 0x64], [0x70, 0x71],
  [0x80, 0x8f], [0x92, 0x92], [0xa0, 0xa1], [0xc0, 0xdf], [0x4d0, 0x4d1],
];

export function isPlatformPort(p: number): boolean {
  for (const [a, b] of PLATFORM_PORTS) if (p >= a && p <= b) return true;
  return false;
}

/**
 * v86's devices whose state is the vCPU's to save: what Xen keeps in its
 * HVM context beside the registers (PIC, PIT, RTC/CMOS) and the legacy
 * platform kept beside the processor (8237 DMA, 8042). Every other device
 * of v86's PC is unused (its ports were taken away) and left out.
 */
const SAVED_DEVICES = new Set(['rtc', 'pit', 'dma', 'ps2']);
/** Where v86's local APIC keeps timer_last_tick (an f64 of microtick ms after five u32 and padding, in its 184-byte state). */
const APIC_TIMER_LAST_TICK = 24;
/** v86's local APIC state (src/rust/cpu/apic.rs Apic, repr(C), 184 bytes): its IRR and TMR, 8 u32 each. */
const APIC_STATE_BYTES = 184;
const APIC_IRR = 16 * 4;
const APIC_TMR = 32 * 4;

/** A replacement for one port: sizes 1, 2, 4; reads return the value (unsigned). */
export interface PortHandler {
  read(port: number, size: 1 | 2 | 4): number;
  write(port: number, size: 1 | 2 | 4, value: number): void;
}

/** A replacement for one MMIO block: addresses are absolute. */
export interface MmioHandler {
  read(addr: number, size: 1 | 4): number;
  write(addr: number, size: 1 | 4, value: number): void;
}

export interface V86Options {
  /** Bytes of RAM (a multiple of 128 KiB). */
  ramBytes: number;
  /** The domain's memory segment and how many of its bytes are RAM. */
  memSegment: string;
  /** SeaBIOS (or another firmware) as the builder left it, ending at 1 MiB. */
  bios: Uint8Array;
  /** The guest asked for a reset (PS/2 0xFE, 0xCF9): the caller decides what that means. */
  onReset: () => void;
  /**
   * A local APIC and an IOAPIC (hvm_info_table.apic_mode, xl.cfg apic=):
   * v86's `acpi` setting, which also sets CPUID's APIC bit. Without, the
   * guest has the 8259s only.
   */
  apic: boolean;
}

const require = createRequire(import.meta.url);

function v86Dir(): string {
  return dirname(require.resolve('v86'));
}

export class V86Machine {
  private constructor(private readonly emu: V86Emulator, readonly cpu: V86Cpu, readonly ramBytes: number,
                      readonly apic: boolean) {}

  /**
   * Builds the processor in this thread, maps the segment over its RAM and
   * takes every non-platform port and the VGA window away from v86's devices
   * (they read as all-ones until setPort/setMmio give them a handler).
   */
  static async create(o: V86Options): Promise<V86Machine> {
    const { V86 } = await import('v86') as unknown as { V86: new (s: object) => V86Emulator };
    const bios = o.bios.slice().buffer;
    const emu = new V86({
      wasm_path: join(v86Dir(), 'v86.wasm'),
      bios: { buffer: bios },
      memory_size: o.ramBytes,
      vga_memory_size: 2 * 1024 * 1024,
      autostart: false,
      disable_keyboard: true, disable_mouse: true, disable_speaker: true,
      acpi: o.apic,
      screen: { disabled: true },
    });
    await new Promise<void>((res) => emu.add_listener('emulator-ready', res));
    const cpu = emu.v86.cpu;
    if (cpu.mem8.length !== o.ramBytes || cpu.mem8.byteOffset % PAGE_SIZE !== 0) {
      emu.destroy();
      throw new Error(`v86 placed ${cpu.mem8.length} bytes of RAM at offset ${cpu.mem8.byteOffset}: cannot map the segment over it`);
    }
    // From here the guest's RAM *is* the domain's segment (the builder's
    // SeaBIOS at 0xE0000 included), for v86's JIT, for this thread, and for
    // every process that maps the segment.
    shmMapInto(cpu.wasm_memory.buffer, cpu.mem8.byteOffset, o.memSegment, o.ramBytes);
    const m = new V86Machine(emu, cpu, o.ramBytes, o.apic);
    m.stripDevices(o.onReset);
    return m;
  }

  private stripDevices(onReset: () => void): void {
    const empty = this.entry({ read: (_p, s) => (s === 4 ? 0xffffffff : (1 << (8 * s)) - 1), write: () => {} });
    for (let p = 0; p < 0x10000; p++) if (!isPlatformPort(p)) this.cpu.io.ports[p] = empty;
    // v86 resets itself in place (PS/2 0xFE, PCI 0xCF9); under Xen a reset
    // is the domain's to decide (SHUTDOWN_reboot).
    this.cpu.reboot_internal = onReset;
    // v86's ACPI device (there with its APIC) lowers IRQ 9 at every run of
    // its timers unless its own PM timer, whose ports are gone, raised it:
    // it would take back the SCI of the vCPU's PM registers (pmtimer.ts) and
    // any PCI link routed to 9. The guest's PM timer is the vCPU's.
    if (this.cpu.devices.acpi) this.cpu.devices.acpi.timer = () => 100;
    // v86's floppy controller wrote two 1.44 MB drives into the CMOS
    // (CMOS_FLOPPY_DRIVE_TYPE 0x10, and the equipment byte 0x14); its ports
    // are gone with the rest, and no device model answers them. A PC that
    // announces drives whose controller never interrupts costs the
    // firmware a timeout of seconds per access (SeaBIOS's floppy_wait_irq):
    // no drives, as under Xen, whose vRTC starts with a clear CMOS.
    const rtc = this.cpu.devices.rtc;
    rtc.cmos_write(CMOS_FLOPPY_DRIVE_TYPE, 0);
    rtc.cmos_write(CMOS_EQUIPMENT_INFO, rtc.cmos_read(CMOS_EQUIPMENT_INFO) & ~EQUIPMENT_FLOPPY_MASK);
  }

  private entry(h: PortHandler, port = 0): PortEntry {
    return {
      read8: () => h.read(port, 1) & 0xff,
      read16: () => h.read(port, 2) & 0xffff,
      read32: () => h.read(port, 4) | 0,
      write8: (v: number) => h.write(port, 1, v & 0xff),
      write16: (v: number) => h.write(port, 2, v & 0xffff),
      write32: (v: number) => h.write(port, 4, v >>> 0),
      device: h,
    };
  }

  /** Hands port `port` to `h` (v86 calls entries without the port number: it is bound here). */
  setPort(port: number, h: PortHandler): void {
    this.cpu.io.ports[port] = this.entry(h, port);
  }

  /**
   * `first(port, size)` is asked before v86's port table on every IN and
   * answers with the value, or null to go on to the port's handler. It is
   * how the elements of a `rep ins` already fetched in one ioreq reach v86:
   * v86 takes them one IN at a time (a CD sector is 1,024), through its
   * io_port_read import, `io.port_read16` and the port's entry; answered
   * here, each costs one call instead of four.
   */
  setPortReadFirst(first: (port: number, size: 1 | 2 | 4) => number | null): void {
    const io = this.cpu.io;
    const r8 = io.port_read8.bind(io);
    const r16 = io.port_read16.bind(io);
    const r32 = io.port_read32.bind(io);
    io.port_read8 = (p: number) => first(p, 1) ?? r8(p);
    io.port_read16 = (p: number) => first(p, 2) ?? r16(p);
    io.port_read32 = (p: number) => { const v = first(p, 4); return v === null ? r32(p) : v | 0; };
  }

  /** Hands the 128 KiB MMIO blocks covering [addr, addr+len) to `h`. */
  setMmio(addr: number, len: number, h: MmioHandler): void {
    const first = addr >>> MMAP_BLOCK_BITS;
    const last = (addr + len - 1) >>> MMAP_BLOCK_BITS;
    for (let b = first; b <= last; b++) {
      this.cpu.memory_map_read8[b] = (a: number) => { this.inMmio++; try { return h.read(a >>> 0, 1) & 0xff; } finally { this.inMmio--; } };
      this.cpu.memory_map_write8[b] = (a: number, v: number) => { this.inMmio++; try { h.write(a >>> 0, 1, v & 0xff); } finally { this.inMmio--; } };
      this.cpu.memory_map_read32[b] = (a: number) => { this.inMmio++; try { return h.read(a >>> 0, 4) | 0; } finally { this.inMmio--; } };
      this.cpu.memory_map_write32[b] = (a: number, v: number) => { this.inMmio++; try { h.write(a >>> 0, 4, v >>> 0); } finally { this.inMmio--; } };
    }
  }

  /** The handlers of the block holding `addr`, as v86 has them (to fall back on). */
  mmioOf(addr: number): MmioHandler | null {
    const b = addr >>> MMAP_BLOCK_BITS;
    const r8 = this.cpu.memory_map_read8[b];
    const w8 = this.cpu.memory_map_write8[b];
    const r32 = this.cpu.memory_map_read32[b];
    const w32 = this.cpu.memory_map_write32[b];
    if (!r8 || !w8) return null;
    return {
      read: (a, s) => (s === 1 || !r32 ? r8(a) : r32(a) >>> 0),
      write: (a, s, v) => { if (s === 1 || !w32) w8(a, v); else w32(a, v); },
    };
  }

  /** Runs the processor for up to about a millisecond; returns ms until its next timer when it halted. */
  run(): number {
    this.cascadeLevel();
    return this.cpu.main_loop();
  }

  /** Inside an MMIO handler: in the middle of an instruction of a translated block. */
  private inMmio = 0;

  /**
   * v86's device_raise_irq, device_lower_irq and handle_irqs deliver a
   * pending interrupt at once (call_interrupt_vector, with previous_ip =
   * instruction_pointer). Between two runs that is an instruction
   * boundary, and so it is after a port access: v86's translator ends a
   * block at every IN and OUT. Inside an MMIO handler (an ioreq's or a
   * passed-through BAR's, after a `mov` in the middle of a translated
   * block) it is not: the block has not written EIP or its registers back
   * and goes on after the handler returns, so the interrupt frame held a
   * stale return address and the block ran on over the handler's state (a
   * Linux guest's NVMe on INTx oopsed so, about once in six runs). There
   * IF is held clear around the call: the line reaches the PIC, IOAPIC or
   * APIC at once, and the interrupt is taken at v86's next handle_irqs, at
   * the end of its run of at most LOOP_COUNTER instructions.
   */
  private atBoundary(f: () => void): void {
    if (this.inMmio === 0) { f(); return; }
    const fl = this.cpu.flags;
    const was = fl[0]!;
    fl[0] = was & ~FLAG_IF;
    try { f(); } finally { fl[0] = (fl[0]! & ~FLAG_IF) | (was & FLAG_IF); }
  }

  get halted(): boolean { return this.cpu.in_hlt[0] !== 0; }

  /**
   * After v86 failed delivering an interrupt: whether a real processor would
   * have shut down (a triple fault). v86 does not emulate #GP, #DF and
   * shutdown for a vector past the IDT's limit; it gives up (a WebAssembly
   * trap). A processor in protected mode whose IDT has no present
   * double-fault gate (vector 8: past the limit, or its P bit clear, read
   * where paging does not hide it) turns any such exception into a triple
   * fault; anything else v86 gave up on is its own limit, not the guest's.
   */
  get tripleFaulted(): boolean {
    const cpu = this.cpu;
    if (cpu.protected_mode[0] === 0) return false;
    if (cpu.idtr_size[0]! < 8 * 8 + 7) return true;
    if (cpu.cr[0]! & 0x80000000) return false;
    const gate = (cpu.idtr_offset[0]! >>> 0) + 8 * 8;
    return gate + 8 <= this.ramBytes && (cpu.mem8[gate + 5]! & 0x80) === 0;
  }

  /**
   * A fixed, edge-triggered vector into the local APIC, as Xen's
   * vlapic_set_irq does for a guest MSI (vmsi_deliver): its IRR bit set and
   * its TMR bit cleared, what v86's apic.rs `deliver` does for an IOAPIC
   * route (not exported from its wasm); then v86 takes it if the processor
   * can. A vector already pending is one interrupt, as on the APIC.
   * False without an APIC or for a vector below 16 (reserved: Xen's vlapic
   * raises an error for them rather than delivering).
   */
  injectApic(vector: number): boolean {
    if (!this.apic || vector < 16 || vector > 255) return false;
    const buf = this.cpu.wasm_memory.buffer;
    if (this.apicRegs?.buffer !== buf) this.apicRegs = new Uint32Array(buf, this.cpu.get_apic_addr(), APIC_STATE_BYTES >> 2);
    const w = vector >> 5;
    const b = 1 << (vector & 31);
    this.apicRegs[(APIC_IRR >> 2) + w] |= b;
    this.apicRegs[(APIC_TMR >> 2) + w] &= ~b;
    this.atBoundary(() => this.cpu.handle_irqs());
    return true;
  }

  private apicRegs: Uint32Array | null = null;

  raiseIrq(irq: number): void { this.cascadeLevel(); this.atBoundary(() => this.cpu.device_raise_irq(irq)); }
  lowerIrq(irq: number): void { this.cascadeLevel(); this.atBoundary(() => this.cpu.device_lower_irq(irq)); }

  private picMaster: Uint8Array | null = null;

  /**
   * Xen's vPIC keeps the master's IR2, where the slave's output arrives,
   * level-triggered whatever the guest writes to ELCR1 (vpic_intercept_elcr_io:
   * "Slave IR is always level trig."). v86 takes ELCR1 as written, and with
   * IR2 edge-triggered a slave line that goes low while the master holds its
   * cascade request leaves the master acknowledging IR2 with no slave vector
   * to give: its ISR bit 2 stays set and no slave interrupt (IRQ 8-15) is
   * ever delivered again. The bit is set in v86's PIC state (cpu.get_state_pic's
   * layout: ELCR at byte 10) before each run and each line change.
   */
  private cascadeLevel(): void {
    const buf = this.cpu.wasm_memory.buffer;
    if (this.picMaster?.buffer !== buf) this.picMaster = new Uint8Array(buf, this.cpu.get_pic_addr_master(), PIC_STATE_BYTES);
    this.picMaster[PIC_ELCR] |= 1 << 2;
  }

  /** Guest frames written by someone else (DMA): forget code translated from them. */
  modified(start: number, end: number): void { this.cpu.jit_dirty_cache(start, end); }
  modifiedAll(): void { this.cpu.jit_clear_cache(); }

  destroy(): void { this.emu.destroy(); }

  /**
   * v86's own state format (its save_state: a header, a JSON block and
   * buffers) of the processor (registers, FPU/SSE, APIC, IOAPIC, PIC, TSC)
   * and SAVED_DEVICES, without RAM: RAM is the domain's memory segment,
   * which the toolstack saves as pages, so v86's packing of every non-zero
   * page is replaced by an empty one. `clock` is v86's microtick at the
   * save, which a restore rebases its timers on.
   */
  saveState(): { state: Uint8Array; clock: number } {
    return this.withSavedDevicesOnly(() => {
      const cpu = this.cpu;
      const pack = cpu.pack_memory;
      cpu.pack_memory = () => ({ packed_memory: new Uint8Array(0), bitmap: { get_buffer: () => new ArrayBuffer(0) } });
      try {
        const clock = performance.now();
        return { state: new Uint8Array(this.emu.v86.save_state()), clock };
      } finally {
        cpu.pack_memory = pack;
      }
    });
  }

  /**
   * Puts a saveState() back (RAM is already in the segment). The PIT's and
   * the APIC timer's times are v86 microticks, this thread's
   * performance.now(), which started elsewhere at another moment: they are
   * moved by the difference, so the guest's timers go on as if no time had
   * passed while it was saved (its TSC too: v86 restores it as a count).
   * Throws on a state v86 does not take.
   */
  restoreState(state: Uint8Array, clock: number): void {
    this.withSavedDevicesOnly(() => {
      const cpu = this.cpu;
      const unpack = cpu.unpack_memory;
      cpu.unpack_memory = () => {};
      try {
        this.emu.v86.restore_state(state.slice());
      } finally {
        cpu.unpack_memory = unpack;
      }
    });
    const shift = performance.now() - clock;
    const pit = this.cpu.devices.pit.counter_start_time;
    for (let i = 0; i < pit.length; i++) if (pit[i]) pit[i] += shift;
    const apic = new DataView(this.cpu.wasm_memory.buffer, this.cpu.get_apic_addr(), 184);
    const last = apic.getFloat64(APIC_TIMER_LAST_TICK, true);
    if (last > 0) apic.setFloat64(APIC_TIMER_LAST_TICK, last + shift, true);
  }

  private withSavedDevicesOnly<T>(fn: () => T): T {
    const devices = this.cpu.devices;
    const away: Record<string, unknown> = {};
    for (const k of Object.keys(devices)) {
      if (SAVED_DEVICES.has(k)) continue;
      away[k] = devices[k];
      // v86's CPU state reads ide.secondary / ide.primary unconditionally.
      devices[k] = k === 'ide' ? {} : undefined;
    }
    try {
      return fn();
    } finally {
      Object.assign(devices, away);
    }
  }

  /**
   * When the instruction being executed is `rep ins` from `port` with
   * elements of `size` bytes: where its data goes (a physical address; only
   * without paging, where ES's base plus (E)DI is one) and how many
   * elements are left (ECX or CX). Null for anything else. The bytes at the
   * instruction's start (previous_ip, linear) are decoded here rather than
   * trusting v86's prefix state, which its JIT does not keep.
   */
  repIns(port: number, size: 1 | 2 | 4): { dest: number; count: number; backwards: boolean; addr32: boolean } | null {
    const cpu = this.cpu;
    if (cpu.cr[0]! & 0x80000000) return null;
    let ip = cpu.previous_ip[0]! >>> 0;
    let op32 = cpu.is_32[0] !== 0;
    let addr32 = op32;
    let rep = false;
    for (let n = 0; n < 15; n++, ip++) {
      if (ip >= this.ramBytes) return null;
      const b = cpu.mem8[ip]!;
      if (b === 0x66) { op32 = !op32; continue; }
      if (b === 0x67) { addr32 = !addr32; continue; }
      if (b === 0xf3 || b === 0xf2) { rep = true; continue; }
      if (SEGMENT_PREFIX.includes(b)) continue;
      const elem = b === 0x6c ? 1 : b === 0x6d ? (op32 ? 4 : 2) : 0;
      if (!rep || elem !== size) return null;
      const regs = cpu.reg32;
      if ((regs[2]! & 0xffff) !== port) return null; // DX
      const count = addr32 ? regs[1]! >>> 0 : regs[1]! & 0xffff;
      const di = addr32 ? regs[7]! >>> 0 : regs[7]! & 0xffff;
      return { dest: (cpu.segment_offsets[0]! + di) >>> 0, count, backwards: (cpu.flags[0]! & 0x400) !== 0, addr32 };
    }
    return null;
  }

  /**
   * When the instruction being executed is `rep movs` whose next source
   * element of `size` bytes is at physical address `src`: where the
   * elements go (ES's base plus (E)DI) and how many are left (ECX or CX).
   * Null for anything else, and under paging (linear is not physical). As
   * repIns: the instruction's bytes are decoded, and the source it names
   * (after the elements v86 did without updating the registers) must be
   * `src`, or this is some other access.
   */
  repMovs(src: number, size: 1 | 2 | 4): { dest: number; count: number; backwards: boolean; untilWrap: number } | null {
    const cpu = this.cpu;
    if (cpu.cr[0]! & 0x80000000) return null;
    let ip = cpu.previous_ip[0]! >>> 0;
    let op32 = cpu.is_32[0] !== 0;
    let addr32 = op32;
    let rep = false;
    let seg = 3; // DS, unless overridden (v86's segment order: ES CS SS DS FS GS)
    for (let n = 0; n < 15; n++, ip++) {
      if (ip >= this.ramBytes) return null;
      const b = cpu.mem8[ip]!;
      if (b === 0x66) { op32 = !op32; continue; }
      if (b === 0x67) { addr32 = !addr32; continue; }
      if (b === 0xf3 || b === 0xf2) { rep = true; continue; }
      const override = SEGMENT_PREFIX.indexOf(b);
      if (override >= 0) { seg = override; continue; }
      const elem = b === 0xa4 ? 1 : b === 0xa5 ? (op32 ? 4 : 2) : 0;
      if (!rep || elem !== size) return null;
      const regs = cpu.reg32;
      const backwards = (cpu.flags[0]! & 0x400) !== 0;
      const mask = addr32 ? 0xffffffff : 0xffff;
      const si0 = (regs[6]! & mask) >>> 0;
      const di0 = (regs[7]! & mask) >>> 0;
      const count0 = (regs[1]! & mask) >>> 0;
      // v86 writes ECX, ESI and EDI back once per run of elements it does
      // without leaving the instruction, not per element: `done` elements
      // of this run may be behind the registers.
      const off = ((src - cpu.segment_offsets[seg]! - si0) & mask) >>> 0;
      const done = (backwards ? ((-off & mask) >>> 0) : off) / size;
      if (!Number.isInteger(done) || done >= count0) return null;
      const si = ((si0 + (backwards ? -done : done) * size) & mask) >>> 0;
      const di = ((di0 + (backwards ? -done : done) * size) & mask) >>> 0;
      const count = count0 - done;
      // With 16-bit addresses SI and DI wrap at 64 KiB: elements up to the first wrap.
      const untilWrap = addr32 ? count : Math.floor((0x10000 - Math.max(si, di)) / size);
      return { dest: (cpu.segment_offsets[0]! + di) >>> 0, count, backwards, untilWrap };
    }
    return null;
  }
}

/** Debian's SeaBIOS, read by tests and tools that run v86 without a builder. */
export function seabiosImage(path = '/usr/share/seabios/bios.bin'): Uint8Array {
  return new Uint8Array(readFileSync(path));
}
