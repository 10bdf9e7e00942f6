// The shell on the console: a prompt, a line discipline (tty.ts), words
// split as sh does for plain and quoted words, and a command table. An
// unknown command prints what sh prints. Ctrl-C interrupts the running
// command through its AbortSignal.
import { LineDiscipline } from './tty.js';
import type { Command, CommandIo, KernelServices } from './services.js';

/** Splits a command line into words: blanks separate, '...' and "..." quote, \ escapes. */
export function splitWords(line: string): string[] | null {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) cur += line[++i];
      else cur += c;
      continue;
    }
    if (c === ' ' || c === '\t') { if (inWord) { words.push(cur); cur = ''; inWord = false; } continue; }
    inWord = true;
    if (c === '"' || c === "'") quote = c;
    else if (c === '\\' && i + 1 < line.length) cur += line[++i];
    else cur += c;
  }
  if (quote) return null;
  if (inWord) words.push(cur);
  return words;
}

export class Shell {
  private readonly table = new Map<string, Command>();
  private readonly tty: LineDiscipline;
  private abort: AbortController | null = null;
  private status = 0;

  constructor(private readonly k: KernelServices, private readonly write: (text: string | Uint8Array) => void,
              commands: Command[]) {
    for (const c of commands) this.table.set(c.name, c);
    this.table.set('help', {
      name: 'help', help: 'list the commands',
      run: (_a, io) => {
        for (const c of [...this.table.values()].sort((a, b) => a.name.localeCompare(b.name))) {
          io.out(`  ${c.name.padEnd(16)} ${c.help}\n`);
        }
        return 0;
      },
    });
    this.tty = new LineDiscipline({
      echo: (t) => this.write(t),
      line: (l) => void this.run(l),
      interrupt: (running) => {
        if (running) { this.write('^C\r\n'); this.abort?.abort(); } else this.prompt();
      },
    });
  }

  get prompt_(): string { return `root@${this.k.hostname}:~# `; }

  prompt(): void { this.write(this.prompt_); }

  input(data: Uint8Array): void { this.tty.input(data); }

  private out(text: string): void { this.write(text.replace(/\r?\n/g, '\r\n')); }

  /**
   * Stops the running command, as Ctrl-C does, and resolves once it has
   * ended (bounded): the suspend's freezer (suspend.ts), since a command's
   * state is the program's and would not match the pages saved.
   */
  async interrupt(timeoutMs = 2_000): Promise<void> {
    if (!this.abort) return;
    this.abort.abort();
    const running = this.running;
    if (running) await Promise.race([running, new Promise((r) => setTimeout(r, timeoutMs))]);
  }

  private running: Promise<void> | null = null;

  private run(line: string): Promise<void> {
    this.running = this.runLine(line).finally(() => { this.running = null; });
    return this.running;
  }

  private async runLine(line: string): Promise<void> {
    this.abort = new AbortController();
    const io: CommandIo = { out: (t) => this.out(t), signal: this.abort.signal, readLines: (fn) => { this.tty.reader = fn; } };
    try {
      const words = splitWords(line);
      if (words === null) { this.out('sh: syntax error: unterminated quoted string\n'); this.status = 2; return; }
      const expanded = words.map((w) => (w === '$?' ? String(this.status) : w));
      if (expanded.length === 0) return;
      const cmd = this.table.get(expanded[0]!);
      if (!cmd) { this.out(`sh: ${expanded[0]}: command not found\n`); this.status = 127; return; }
      this.status = await cmd.run(expanded, io, this.k);
    } catch (err) {
      this.out(`sh: ${words0(line)}: ${(err as Error).message}\n`);
      this.status = 1;
    } finally {
      this.abort = null;
      this.prompt();
      this.tty.done();
    }
  }
}

function words0(line: string): string { return line.trim().split(/\s+/)[0] ?? ''; }
