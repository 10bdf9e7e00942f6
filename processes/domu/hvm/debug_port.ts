// Xen's HVM debug console port (xen/arch/x86/hvm/hvm.c hvm_print_line):
// bytes an HVM guest writes to port 0xE9 are gathered into lines and printed
// on the hypervisor's console as the guest's, so `xl dmesg` shows them.
// Reads answer 0xE9, as Bochs' port does (firmware probes for it that way).
import type { PortHandler } from './v86.js';

export const XEN_HVM_DEBUGCONS_IOPORT = 0xe9;
/** Xen flushes a line at a newline or when its buffer (HVM_PBUF_SIZE, 80) is full. */
const LINE_MAX = 80;

export class DebugPort implements PortHandler {
  private line = '';

  constructor(private readonly emit: (line: string) => void) {}

  read(): number { return XEN_HVM_DEBUGCONS_IOPORT; }

  write(_port: number, _size: 1 | 2 | 4, value: number): void {
    const c = value & 0xff;
    if (c === 0x0a) { this.flush(); return; }
    if (c === 0x0d) return;
    // Xen keeps printable characters only (isprint).
    if (c >= 0x20 && c < 0x7f) this.line += String.fromCharCode(c);
    if (this.line.length >= LINE_MAX) this.flush();
  }

  private flush(): void {
    if (this.line) this.emit(this.line);
    this.line = '';
  }
}
