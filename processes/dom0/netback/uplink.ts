// Domain-0's xenbr0 port into the host's network namespace (xenemu up
// --netns; docs/net.md "Uplink"): the TAP `vif0.0`, a port of the Linux
// bridge named by XENEMU_UPLINK (the namespace's xenbr0). Frames the bridge
// floods or forwards to it are written to the TAP; frames the kernel sends
// out of it (from the namespace's address, or from peth0 and the pool beyond)
// enter the bridge as from any port. The TAP goes with this process.
import { openTap, type TapDevice } from '../../../shared/net/tap.js';
import { ip } from '../../../shared/net/netns.js';
import { UPLINK_TAP } from '../../../shared/net/uplink.js';
import type { Bridge, BridgePort } from './bridge.js';

/** Largest frame taken from the namespace (MTU 1500, a VLAN tag). */
const FRAME_MAX = 1518;

export class UplinkPort implements BridgePort {
  readonly name = UPLINK_TAP;
  readonly stats = { rx: 0, tx: 0, dropped: 0 };
  private constructor(private readonly tap: TapDevice, private readonly bridge: Bridge) {}

  static open(bridge: Bridge, linuxBridge: string, log: (m: string) => void): UplinkPort {
    const tap = openTap(UPLINK_TAP);
    try {
      ip(['link', 'set', tap.name, 'master', linuxBridge, 'up']);
    } catch (e) {
      tap.close();
      throw e;
    }
    const port = new UplinkPort(tap, bridge);
    bridge.addPort(port);
    tap.onFrame((frame) => {
      if (frame.length < 14 || frame.length > FRAME_MAX) { port.stats.dropped++; return; }
      port.stats.tx++;
      bridge.input(port, frame);
    });
    tap.onError((errno) => log(`uplink ${tap.name}: read failed (errno ${-errno}); port closed`));
    log(`uplink: ${bridge.name} port ${tap.name} on ${linuxBridge}`);
    return port;
  }

  deliver(frame: Uint8Array): void {
    if (this.tap.write(frame)) this.stats.rx++; else this.stats.dropped++;
  }

  close(): void {
    this.bridge.removePort(this);
    this.tap.close();
  }
}
