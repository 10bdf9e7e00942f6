// What a network stack asks of a network driver, and what a driver asks of
// its guest's memory: the seam between netfront (shared/front/netfront.ts)
// and whoever carries its frames (a PV guest's IP stack, a stub domain's
// emulated e1000).

export interface NetDeviceStats { rxPackets: number; rxBytes: number; txPackets: number; txBytes: number; rxDropped: number; txDropped: number }

/** A network driver as its user sees it (netfront). */
export interface NetDevice {
  name: string;
  mac: Uint8Array;
  stats: NetDeviceStats;
  /** Queues one frame for transmission; false when the device has no room now. */
  transmit(frame: Uint8Array): boolean;
  /** Resolves once transmit may succeed again. */
  txSpace(): Promise<void>;
  /** The user's receive handler. */
  onReceive(fn: (frame: Uint8Array) => void): void;
}

/** Frames a driver keeps for its rings and buffers, never given back (a PV guest's balloon floor). */
export interface PageReserve {
  /** The first of `n` consecutive frames, or -1 when there are not that many. */
  reserve(n: number): number;
}

/** `aa:bb:cc:dd:ee:ff` as six bytes, or null. */
export function parseMacAddr(s: string): Uint8Array | null {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s)) return null;
  return Uint8Array.from(s.split(':').map((h) => parseInt(h, 16)));
}
