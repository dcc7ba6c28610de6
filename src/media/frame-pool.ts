// Frame buffers reused instead of allocated per frame. A 512x512 RGB24 frame is 768 KiB; making a new
// one for every decoded picture and every graph output costs page faults to fill fresh memory and,
// through V8's accounting of external memory, garbage collections (together about as much main-thread
// time as the swscale conversion itself, measured). One pool per stream; nothing here is shared.
//
// Ownership: take() hands out a buffer that belongs to the caller until it gives it back with
// release(); release() takes back only the pool's own buffers (a buffer moved to another thread is
// detached and is dropped instead), so a buffer someone else keeps (a graph's own output) is never
// recycled. Whoever gives a buffer back must be sure nothing reads it any more.

export class FramePool {
  private readonly free = new Map<number, Buffer[]>();
  private readonly own = new WeakSet<ArrayBufferLike>();
  /** The buffers now in the free lists (a second release of one is ignored). */
  private readonly idle = new Set<ArrayBufferLike>();
  private held = 0;
  /** Buffers made since the pool was created (for tests and figures). */
  allocated = 0;

  /** At most `maxFree` idle buffers are kept (all sizes together). */
  constructor(private readonly maxFree = 4) {}

  /** A buffer of exactly `bytes` bytes (contents undefined). */
  take(bytes: number): Buffer {
    const list = this.free.get(bytes);
    const b = list?.pop();
    if (b) {
      this.held--;
      this.idle.delete(b.buffer);
      return b;
    }
    // Its own ArrayBuffer (not a slice of Node's shared pool), so it can be transferred whole.
    const fresh = Buffer.allocUnsafeSlow(bytes);
    this.own.add(fresh.buffer);
    this.allocated++;
    return fresh;
  }

  /** Gives a buffer back (ignored unless it is one of the pool's, whole and not detached). */
  release(data: Uint8Array): void {
    const ab = data.buffer;
    if (!this.own.has(ab) || data.byteOffset !== 0 || data.byteLength === 0 || data.byteLength !== ab.byteLength) return;
    if (this.idle.has(ab)) return;
    if (this.held >= this.maxFree) this.evictOne(data.byteLength);
    if (this.held >= this.maxFree) return;
    const list = this.free.get(data.byteLength) ?? [];
    list.push(Buffer.isBuffer(data) ? data : Buffer.from(ab, 0, data.byteLength));
    this.free.set(data.byteLength, list);
    this.idle.add(ab);
    this.held++;
  }

  /** Drops every idle buffer. */
  clear(): void {
    this.free.clear();
    this.idle.clear();
    this.held = 0;
  }

  /** Frees room by dropping a buffer of another size (a frame size no longer in use). */
  private evictOne(keep: number): void {
    for (const [size, list] of this.free) {
      if (size === keep || !list.length) continue;
      const b = list.pop()!;
      this.idle.delete(b.buffer);
      this.held--;
      if (!list.length) this.free.delete(size);
      return;
    }
  }
}
