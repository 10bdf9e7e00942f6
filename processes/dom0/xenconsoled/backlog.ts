// The recent output of one console, bounded (docs/design.md §7: Xen users lose
// the first lines of a guest that crashes before they attach; xenemu keeps
// them). A byte ring of fixed capacity: appending past it drops the oldest.
export class Backlog {
  private readonly buf: Uint8Array;
  private start = 0;   // position of the oldest byte
  private length = 0;  // bytes held
  /** Bytes ever appended, so a reader can tell how much it missed. */
  total = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new RangeError(`bad backlog capacity ${capacity}`);
    this.buf = new Uint8Array(capacity);
  }

  append(data: Uint8Array): void {
    this.total += data.byteLength;
    let d = data;
    if (d.byteLength >= this.capacity) {
      d = d.subarray(d.byteLength - this.capacity);
      this.start = 0;
      this.length = 0;
    }
    const cap = this.capacity;
    let end = (this.start + this.length) % cap;
    const first = Math.min(d.byteLength, cap - end);
    this.buf.set(d.subarray(0, first), end);
    this.buf.set(d.subarray(first), 0);
    end = (end + d.byteLength) % cap;
    const overflow = this.length + d.byteLength - cap;
    if (overflow > 0) {
      this.start = (this.start + overflow) % cap;
      this.length = cap;
    } else {
      this.length += d.byteLength;
    }
  }

  /** A copy of what is held, oldest first. */
  snapshot(): Uint8Array {
    const out = new Uint8Array(this.length);
    const first = Math.min(this.length, this.capacity - this.start);
    out.set(this.buf.subarray(this.start, this.start + first), 0);
    out.set(this.buf.subarray(0, this.length - first), first);
    return out;
  }
}
