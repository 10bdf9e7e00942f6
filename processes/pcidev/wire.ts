// A host NIC's cable (shared/hw/backend.ts NetBackend). The host's e1000
// is plugged into nothing yet: frames it sends are counted and dropped and
// none arrive. A TAP device of the host's (shared/net/tap.ts) is the wire
// to plug in here: a WireFactory that opens it.
import type { NetBackend } from '../../shared/hw/backend.js';

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
