// Back ends of emulated devices: where a disk's sectors, a UART's bytes and
// a NIC's frames come from and go to. Synchronous from the device's side,
// because device models run inside a synchronous access (shared/hw/machine.ts);
// whoever hosts them feeds input in between accesses.

/** A disk image (raw). Offsets and lengths in bytes. */
export interface BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  /** Reads exactly dst.length bytes at `offset` (beyond the end: RangeError). */
  read(offset: number, dst: Uint8Array): void;
  /** Writes src at `offset`; throws on a read-only back end. */
  write(offset: number, src: Uint8Array): void;
  /** Makes written data durable (fdatasync). */
  flush(): void;
}

/** A byte stream: a UART's line. */
export interface CharBackend {
  write(bytes: Uint8Array): void;
  /** Registers the receiver of input; the host calls it between accesses. */
  onInput(fn: (bytes: Uint8Array) => void): void;
}

/** An Ethernet port: a NIC's cable to a bridge. */
export interface NetBackend {
  /** Sends one frame (without FCS). */
  send(frame: Uint8Array): void;
  /** Registers the receiver of frames; the host calls it between accesses. */
  onReceive(fn: (frame: Uint8Array) => void): void;
}
