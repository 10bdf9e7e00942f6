// A client on a guest console's PTY slave, as `screen /dev/pts/N` would be:
// how the tests and the benchmarks drive a guest's shell like a user.
import * as fs from 'node:fs';
import * as tty from 'node:tty';

/**
 * Destroy a tty.ReadStream made on `fd` and close `fd` too, unless the
 * stream's handle owns it (libuv may re-open the slave for the stream, and
 * then our descriptor stays ours to close). Resolves once both are closed.
 */
export function closeTtyStream(stream: tty.ReadStream, fd: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      const streamFd = (stream as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (streamFd !== fd) { try { fs.closeSync(fd); } catch { /* closed */ } }
      resolve();
    };
    if (stream.closed) { done(); return; }
    stream.once('close', done);
    stream.destroy();
  });
}

/** A client on a console PTY's slave (as `screen /dev/pts/N` would be). */
export class PtyClient {
  text = '';
  private readonly fd: number;
  private readonly stream: tty.ReadStream;
  private waiters: Array<() => void> = [];

  constructor(ptyPath: string) {
    this.fd = fs.openSync(ptyPath, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    this.stream = new tty.ReadStream(this.fd);
    this.stream.on('data', (d: Buffer) => {
      this.text += d.toString('utf8');
      this.waiters.splice(0).forEach((w) => w());
    });
    this.stream.on('error', () => undefined);
    this.hangup = new Promise((resolve) => {
      this.stream.once('error', () => resolve());
      this.stream.once('end', () => resolve());
    });
  }

  /** Resolves when the master side went away (EIO or EOF on the slave). */
  readonly hangup: Promise<void>;

  write(s: string): void { fs.writeSync(this.fd, s); }

  /** Waits until `re` matches the output received after `from`. */
  until(re: RegExp, from = 0, timeoutMs = 15_000): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in ${JSON.stringify(this.text.slice(from))}`)), timeoutMs);
      const check = () => {
        const m = re.exec(this.text.slice(from));
        if (m) { clearTimeout(timer); resolve(m); } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Types a shell command and returns its output, once the guest's prompt is back. */
  async run(cmd: string, timeoutMs = 120_000): Promise<string> {
    const from = this.text.length;
    this.write(`${cmd}\r`);
    await this.until(/root@[\w-]+:~# $/, from + cmd.length, timeoutMs);
    return this.text.slice(from + cmd.length).replace(/\r/g, '');
  }

  close(): Promise<void> {
    return closeTtyStream(this.stream, this.fd);
  }
}
