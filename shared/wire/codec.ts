// The one msgpackr encoder of xenemu's own wire protocol between processes.
// Structured records are kept off: peers are separate processes that may start
// in any order, so every message must decode on its own.
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

export function encode(msg: unknown): Buffer {
  return packr.pack(msg);
}

export function decode<T = unknown>(buf: Buffer | Uint8Array): T {
  return packr.unpack(buf) as T;
}
