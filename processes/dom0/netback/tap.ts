// An emulated NIC's port on a bridge: what the tap device `vif<domid>.<n>-emu`
// is under Xen, where libxl's vif-bridge script adds qemu's tap to xenbr0.
// Here the bridge is netback's (bridge.ts), in Domain-0's process, and the
// device model is another process, so the "tap" is a ZeroMQ PAIR socket:
//
//   ipc://<rundir>/vif<domid>.<n>-emu.tap      bound by netback, connected by qemu-dm
//   each message is one Ethernet frame (no FCS), in either direction
//
// The toolstack makes the port before it starts the device model and takes
// it away when the guest goes (addTap / removeTap). Frames the bridge hands
// the port while the device model is away or slow queue in ZeroMQ up to the
// high-water mark, then are dropped, as a tap's queue drops.
import * as zmq from 'zeromq';
import { unlinkSync } from 'node:fs';
import type { Bridge, BridgePort } from './bridge.js';
import { tapEndpoint } from '../../../shared/wire/tap.js';

/** Frames the bridge may queue for a slow device model before dropping. */
const TAP_QUEUE = 1024;
/** Largest frame a port takes from its device model (a jumbo-less Ethernet frame with a VLAN tag). */
const FRAME_MAX = 1522;

export class TapPort implements BridgePort {
  private readonly sock = new zmq.Pair({ linger: 0, sendHighWaterMark: TAP_QUEUE, receiveHighWaterMark: TAP_QUEUE });
  readonly endpoint: string;
  readonly stats = { rx: 0, tx: 0, dropped: 0 };
  private closed = false;

  private constructor(readonly name: string, rundir: string, private readonly bridge: Bridge) {
    this.endpoint = tapEndpoint(rundir, name);
  }

  static async open(name: string, rundir: string, bridge: Bridge): Promise<TapPort> {
    const t = new TapPort(name, rundir, bridge);
    try { unlinkSync(t.path); } catch { /* not there */ }
    await t.sock.bind(t.endpoint);
    bridge.addPort(t);
    void t.receive();
    return t;
  }

  get path(): string { return this.endpoint.slice('ipc://'.length); }

  private async receive(): Promise<void> {
    try {
      for await (const [frame] of this.sock) {
        if (!frame || frame.length < 14 || frame.length > FRAME_MAX) { this.stats.dropped++; continue; }
        this.stats.tx++;
        this.bridge.input(this, frame);
      }
    } catch { /* closed */ }
  }

  /** The bridge's frame for the device model: copied, since the bridge's view is not ours to keep. */
  deliver(frame: Uint8Array): void {
    if (this.closed) return;
    this.sock.send(Buffer.from(frame)).then(() => { this.stats.rx++; }, () => { this.stats.dropped++; });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.bridge.removePort(this);
    this.sock.close();
    try { unlinkSync(this.path); } catch { /* gone */ }
  }
}
