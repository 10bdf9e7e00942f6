// QMP, QEMU's management protocol (docs/interop/qmp-spec in QEMU), on the
// Unix socket libxl talks to qemu-xen through: <rundir>/qmp-libxl-<domid>.
// One JSON object per line each way (QEMU ends its lines with CRLF, which
// libxl's parser looks for); a greeting first; capabilities
// negotiated before any other command. The commands xenemu's toolstack uses:
//
//   qmp_capabilities                       {}
//   query-status                           {status: "running", running: true}
//   query-cpus-fast                        the one vCPU (libxl's xl list -l reads cpu-index)
//   screendump {filename, format?}         the screen as PPM (QEMU's default) or PNG
//   x-xenemu-text-screen                   the VGA text screen: {cols, rows, lines, cursor}
//   x-xenemu-display                       the display's mode and size: {mode, width, height}
//   stop / cont                            the guest's devices held for a save / let go
//                                          (query-status says "paused" between)
//   xen-save-devices-state {filename}      the device state (dm_state.ts) to a file
//   quit                                   the device model exits
//
// Anything else is GenericError, as QEMU answers a command it lacks.
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, unlinkSync, writeFileSync } from 'node:fs';
import { encodePng } from '../../shared/hw/png.js';
import { qmpSocketPath } from '../../shared/wire/qmp.js';

export interface ScreenState {
  text: { cols: number; rows: number; lines: string[]; cursor: { row: number; col: number; visible: boolean } } | null;
  width: number;
  height: number;
  rgba: Uint8Array;
  mode: string;
}

export interface QmpBackend {
  /** The screen as the ioreq thread sees it now. */
  screen(): Promise<ScreenState>;
  /** The devices' state (dm_state.ts). */
  saveState(): Promise<Uint8Array>;
  quit(): void;
}

export { qmpSocketPath };

type QmpReply = { return: unknown; id?: unknown } | { error: { class: string; desc: string }; id?: unknown };

function ppm(s: ScreenState): Buffer {
  const head = Buffer.from(`P6\n${s.width} ${s.height}\n255\n`, 'ascii');
  const body = Buffer.alloc(s.width * s.height * 3);
  for (let i = 0, j = 0; i < s.rgba.length; i += 4, j += 3) {
    body[j] = s.rgba[i]!; body[j + 1] = s.rgba[i + 1]!; body[j + 2] = s.rgba[i + 2]!;
  }
  return Buffer.concat([head, body]);
}

export function startQmp(path: string, be: QmpBackend, log: (m: string) => void): Server {
  /** QEMU's run state (stop/cont), for every client of the socket. */
  let stopped = false;
  try { unlinkSync(path); } catch { /* not there */ }
  const server = createServer((sock: Socket) => {
    let negotiated = false;
    const status = () => (stopped ? { status: 'paused', singlestep: false, running: false } : { status: 'running', singlestep: false, running: true });
    let buf = '';
    const reply = (r: QmpReply) => { if (!sock.destroyed) sock.write(`${JSON.stringify(r)}\r\n`); };
    const error = (desc: string, id?: unknown): QmpReply => ({ error: { class: 'GenericError', desc }, ...(id === undefined ? {} : { id }) });
    reply({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: ' (xenemu qemu-dm)' }, capabilities: [] } } as unknown as QmpReply);
    const handle = async (line: string): Promise<void> => {
      let cmd: { execute?: unknown; arguments?: Record<string, unknown>; id?: unknown };
      try { cmd = JSON.parse(line) as typeof cmd; } catch { reply(error('JSON parse error')); return; }
      const id = cmd.id;
      const ok = (v: unknown = {}): QmpReply => ({ return: v, ...(id === undefined ? {} : { id }) });
      if (cmd.execute === 'qmp_capabilities') { negotiated = true; reply(ok()); return; }
      if (!negotiated) { reply({ error: { class: 'CommandNotFound', desc: 'Expecting capabilities negotiation with \'qmp_capabilities\'' }, ...(id === undefined ? {} : { id }) }); return; }
      switch (cmd.execute) {
        case 'query-status': reply(ok(status())); return;
        case 'stop': stopped = true; reply(ok()); return;
        case 'cont': stopped = false; reply(ok()); return;
        case 'xen-save-devices-state': {
          const file = cmd.arguments?.filename;
          if (typeof file !== 'string' || !file.startsWith('/')) { reply(error("Parameter 'filename' is missing or not an absolute path", id)); return; }
          try {
            writeFileSync(file, await be.saveState(), { mode: 0o600 });
            reply(ok());
          } catch (err) {
            reply(error(`xen-save-devices-state: ${(err as Error).message}`, id));
          }
          return;
        }
        case 'query-cpus-fast':
          // An HVM guest of xenemu has one vCPU (v86); it runs in the domain's process, not here.
          reply(ok([{ 'cpu-index': 0, 'qom-path': '/machine/unattached/device[0]', 'thread-id': process.pid, target: 'i386',
            props: { 'core-id': 0, 'thread-id': 0, 'socket-id': 0 } }]));
          return;
        case 'quit': reply(ok()); be.quit(); return;
        case 'x-xenemu-text-screen': {
          const s = await be.screen();
          reply(s.text ? ok(s.text) : error(`the display is not in a text mode (${s.mode})`, id));
          return;
        }
        case 'x-xenemu-display': {
          const s = await be.screen();
          reply(ok({ mode: s.mode, width: s.width, height: s.height }));
          return;
        }
        case 'screendump': {
          const file = cmd.arguments?.filename;
          const format = cmd.arguments?.format ?? 'ppm';
          if (typeof file !== 'string' || !file.startsWith('/')) { reply(error("Parameter 'filename' is missing or not an absolute path", id)); return; }
          if (format !== 'ppm' && format !== 'png') { reply(error(`Parameter 'format' does not accept value '${String(format)}'`, id)); return; }
          const s = await be.screen();
          try {
            writeFileSync(file, format === 'png' ? encodePng(s.width, s.height, s.rgba) : ppm(s));
            reply(ok());
          } catch (err) {
            reply(error(`Could not open '${file}': ${(err as Error).message}`, id));
          }
          return;
        }
        default:
          reply({ error: { class: 'CommandNotFound', desc: `The command ${String(cmd.execute)} has not been found` }, ...(id === undefined ? {} : { id }) });
      }
    };
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.length > 1 << 20) { sock.destroy(); return; }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) handle(line).catch((e: Error) => { log(`qmp: ${e.message}`); reply(error(e.message)); });
      }
    });
    sock.on('error', () => { /* the client went */ });
  });
  server.listen(path, () => { try { chmodSync(path, 0o600); } catch { /* gone */ } });
  return server;
}
