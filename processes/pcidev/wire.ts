// A host NIC's cable (shared/hw/backend.ts NetBackend).
//
//   tapWire   a TAP device of the host (shared/net/tap.ts), `xpt<bus>` in the
//             network namespace the device process runs in (the host's:
//             xenemu up --netns puts every process of the host there), or
//             `xpt<bus>-<host hash>` when the host has no namespace of its
//             own (hostNicTap: two such hosts in one namespace). Frames
//             the NIC sends are written to the TAP (the namespace receives
//             them on xpt<bus>); frames the namespace sends out of xpt<bus>
//             arrive at the NIC. The TAP is opened once per process and is
//             not persistent: it goes with the process, however that ends.
//             Each model (a new one at every FLR) gets a Wire over it; the
//             old model's Wire is closed and hears nothing more.
//   dropWire  frames sent are counted and dropped, none arrive: the cable
//             when the TAP cannot be had (no /dev/net/tun, no CAP_NET_ADMIN,
//             the name taken by another link).
import type { NetBackend } from '../../shared/hw/backend.js';
import { ipQuiet } from '../../shared/net/netns.js';
import { openTap, type TapDevice } from '../../shared/net/tap.js';

export interface Wire extends NetBackend {
  close(): void;
  readonly stats: { sent: number; received: number };
}

export type WireFactory = () => Wire;

export const dropWire: WireFactory = () => ({
  stats: { sent: 0, received: 0 },
  send() { this.stats.sent++; },
  onReceive() { /* nothing ever arrives */ },
  close() { /* nothing held */ },
});

/**
 * The TAP of the host NIC on bus `bus`. In a namespace of the host's own
 * (xenemu up --netns) it is xpt03 for 0000:03:00.0; a host without one
 * shares its namespace with whatever else runs there, other hosts
 * included, so its name carries the host too: xpt03-<8 hex digits of the
 * run directory's FNV-1a hash>, 14 characters, within IFNAMSIZ (16 with
 * the NUL). host.json lists each NIC's TAP (`pci[].tap`).
 */
export function hostNicTap(bus: number, sharedNsHostDir?: string | null): string {
  const base = `xpt${bus.toString(16).padStart(2, '0')}`;
  if (!sharedNsHostDir) return base;
  let h = 0x811c9dc5;
  for (const c of Buffer.from(sharedNsHostDir)) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  return `${base}-${h.toString(16).padStart(8, '0')}`;
}

/**
 * The TAP wire `name` of a NIC, its link up; dropWire (and one log line
 * saying why) when the TAP cannot be opened.
 */
export function tapWire(name: string, log: (m: string) => void): WireFactory {
  let tap: TapDevice;
  try {
    tap = openTap(name);
  } catch (e) {
    log(`no TAP for the NIC (${(e as Error).message}): its frames are dropped, none arrive`);
    return dropWire;
  }
  if (!ipQuiet(['link', 'set', 'dev', tap.name, 'up'])) log(`TAP ${tap.name}: could not set it up; frames wait for the link`);
  let current: ((frame: Uint8Array) => void) | null = null;
  tap.onFrame((frame) => current?.(frame));
  tap.onError((errno) => log(`TAP ${tap.name}: read failed (errno ${-errno}); no more frames arrive`));
  log(`TAP ${tap.name}: the NIC's wire`);
  return () => {
    let open = true;
    let receiver: ((frame: Uint8Array) => void) | null = null;
    const stats = { sent: 0, received: 0 };
    const deliver = (frame: Uint8Array) => { if (open && receiver) { stats.received++; receiver(frame); } };
    current = deliver;
    return {
      stats,
      send(frame) { if (open && tap.write(frame)) stats.sent++; },
      onReceive(fn) { receiver = fn; },
      close() {
        open = false;
        if (current === deliver) current = null;
      },
    };
  };
}
