// The line discipline of the guest's console (a small n_tty in canonical
// mode with ECHO, ECHOE, ICRNL, ISIG): printable bytes are echoed and
// collected; Enter submits the line; Backspace/DEL erases a character;
// Ctrl-U erases the line; Ctrl-C discards it (or interrupts the running
// command). Escape sequences (arrow keys) are swallowed. While a command
// runs, typed bytes wait (type-ahead) and are edited once the prompt is back,
// unless the command reads the terminal (nc): then its lines go to it, edited
// and echoed the same way.
const BS = 0x08;
const DEL = 0x7f;
const ETX = 0x03; // Ctrl-C
const NAK = 0x15; // Ctrl-U
const ESC = 0x1b;
const CR = 0x0d;
const LF = 0x0a;

export interface TtyHost {
  echo(text: string | Uint8Array): void;
  /** A complete line (without its terminator). */
  line(text: string): void;
  /** Ctrl-C: with a running command, interrupt it; else the line was discarded. */
  interrupt(running: boolean): void;
}

export class LineDiscipline {
  private buf: number[] = [];
  private busy = false;
  private typeahead: number[] = [];
  private esc: 0 | 1 | 2 = 0;
  private lastCR = false;
  /** Echo collected over one input() call: one console write, not one per byte. */
  private echoed: number[] = [];
  /** The running command's reader of lines (with their newline), while it reads the terminal. */
  reader: ((line: string) => void) | null = null;

  constructor(private readonly host: TtyHost) {}

  /** True while a submitted line's command runs. */
  get running(): boolean { return this.busy; }

  input(data: Uint8Array): void {
    try { this.feed(data); } finally { this.flushEcho(); }
  }

  private echo(text: string | Uint8Array): void {
    for (const b of typeof text === 'string' ? Buffer.from(text, 'utf8') : text) this.echoed.push(b);
  }

  private flushEcho(): void {
    if (this.echoed.length === 0) return;
    const b = Uint8Array.from(this.echoed);
    this.echoed = [];
    this.host.echo(b);
  }

  private feed(data: Uint8Array): void {
    for (const b of data) {
      if (this.busy) {
        if (b === ETX) { this.flushEcho(); this.buf = []; this.host.interrupt(true); }
        else if (this.reader) this.byte(b);
        else this.typeahead.push(b);
        continue;
      }
      this.byte(b);
    }
  }

  /** The command finished: process what was typed meanwhile. */
  done(): void {
    this.busy = false;
    this.reader = null;
    const t = this.typeahead;
    this.typeahead = [];
    if (t.length) this.input(Uint8Array.from(t));
  }

  private byte(b: number): void {
    // ESC [ ... final byte (0x40-0x7e), or ESC x: dropped.
    if (this.esc === 1) { this.esc = b === 0x5b || b === 0x4f ? 2 : 0; return; }
    if (this.esc === 2) { if (b >= 0x40 && b <= 0x7e) this.esc = 0; return; }
    const wasCR = this.lastCR;
    this.lastCR = b === CR;
    if (b === LF && wasCR) return; // CR LF from a terminal: one Enter
    switch (b) {
      case ESC: this.esc = 1; return;
      case CR: case LF: {
        const line = Buffer.from(this.buf).toString('utf8');
        this.buf = [];
        this.echo('\r\n');
        this.flushEcho();
        if (this.busy) { this.reader?.(`${line}\n`); return; }
        this.busy = true;
        this.host.line(line);
        return;
      }
      case BS: case DEL:
        if (this.buf.length) {
          // A whole UTF-8 character: continuation bytes, then the lead byte.
          while (this.buf.length && (this.buf[this.buf.length - 1]! & 0xc0) === 0x80) this.buf.pop();
          this.buf.pop();
          this.echo('\b \b');
        }
        return;
      case NAK:
        if (this.buf.length) {
          const chars = Buffer.from(this.buf).toString('utf8').length;
          this.echo('\b \b'.repeat(chars));
          this.buf = [];
        }
        return;
      case ETX:
        this.buf = [];
        this.echo('^C\r\n');
        this.flushEcho();
        this.host.interrupt(false);
        return;
      default:
        if (b < 0x20) return; // other control characters: ignored
        this.buf.push(b);
        this.echo(Uint8Array.of(b));
    }
  }
}
