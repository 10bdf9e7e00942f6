// `xl console` (tools/xl/xl_console.c, xenconsole): attach the terminal to a
// domain's console PTY, as xenconsoled gave it out.
import * as fs from 'node:fs';
import * as tty from 'node:tty';
import { closeTtyStream } from './pty_client.js';
import type { XmContext } from './xm_context.js';
import type { ConsoleKind } from '../shared/toolstack/xend_api.js';

/** The byte that detaches a console, as in xl and xm: Ctrl-]. */
export const CONSOLE_ESCAPE = 0x1d;

/**
 * Show the backlog xenconsoled kept, then copy PTY -> stdout and stdin ->
 * PTY until Ctrl-] (or the console goes away). The PTY slave is already raw
 * (xenconsoled set it); a TTY on our stdin is made raw too, and restored on
 * detach.
 */
export async function attachConsole(x: XmContext, dom: string, type: ConsoleKind = '', num = 0): Promise<number> {
  const att = await x.call('xend.domain.console', dom, type, num);
  if (att.backlog.byteLength > 0) x.out(att.backlog);
  const fd = fs.openSync(att.ptyPath, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
  const stream = new tty.ReadStream(fd);
  const stdin = x.io.stdin;
  const rawSet = !!(stdin?.isTTY && stdin.setRawMode);
  if (rawSet) stdin!.setRawMode!(true);

  return new Promise<number>((resolve) => {
    let done = false;
    const detach = () => {
      if (done) return;
      done = true;
      if (stdin) {
        stdin.off('data', onKey);
        stdin.pause();
        if (rawSet) stdin.setRawMode!(false);
      }
      void closeTtyStream(stream, fd).then(() => resolve(0));
    };
    const onKey = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const esc = b.indexOf(CONSOLE_ESCAPE);
      const send = esc >= 0 ? b.subarray(0, esc) : b;
      try {
        if (send.length > 0) fs.writeSync(fd, send);
      } catch { detach(); return; }
      if (esc >= 0) detach();
    };
    stream.on('data', (d: Buffer) => x.out(d));
    stream.on('error', detach);
    stream.on('end', detach);
    if (stdin) {
      stdin.on('data', onKey);
      stdin.resume();
    }
  });
}
