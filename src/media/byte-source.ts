// Adapts the byte streams the media path reads (a trickle GET body as an async iterable or a node
// Readable, or bytes already in memory) to the pull-style read callback FFmpeg's custom I/O calls.
// Reading is lazy: FFmpeg asks for bytes only as it parses, so decoding starts with the first chunk.
import type { Readable } from 'node:stream';

export type ByteSource = AsyncIterable<Uint8Array> | Readable | Uint8Array;

export interface ReadCallbacks {
  /** Up to `size` bytes, or null at the end of the input. */
  read(size: number): Promise<Buffer | null>;
  /** Bytes handed to FFmpeg so far. */
  readonly bytesRead: number;
  /** What the source threw, if it failed (FFmpeg then saw the end of the input). */
  readonly error: unknown;
  /** Stops pulling from the source (returns its iterator). */
  close(): Promise<void>;
}

function toIterable(src: ByteSource): AsyncIterable<Uint8Array> {
  if (src instanceof Uint8Array) {
    return (async function* one() {
      if (src.length) yield src;
    })();
  }
  return src as AsyncIterable<Uint8Array>;
}

export function readCallbacks(src: ByteSource): ReadCallbacks {
  const it = toIterable(src)[Symbol.asyncIterator]();
  let pending: Buffer | null = null;
  let done = false;
  let bytesRead = 0;
  let error: unknown = undefined;
  return {
    get bytesRead() {
      return bytesRead;
    },
    get error() {
      return error;
    },
    async read(size: number): Promise<Buffer | null> {
      while (!pending || pending.length === 0) {
        if (done) return null;
        let r: IteratorResult<Uint8Array>;
        try {
          r = await it.next();
        } catch (err) {
          // A source failing mid-way (a trickle segment cut off) ends the input here; the
          // decoder reports it once it has delivered what arrived.
          error = err ?? new Error('byte source failed');
          done = true;
          return null;
        }
        if (r.done) {
          done = true;
          return null;
        }
        const v = r.value;
        // A view, not a copy: the chunk is only read from.
        pending = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      }
      const out: Buffer = pending.length <= size ? pending : pending.subarray(0, size);
      pending = pending.length <= size ? null : pending.subarray(size);
      bytesRead += out.length;
      return out;
    },
    async close(): Promise<void> {
      if (done) return;
      done = true;
      await it.return?.();
    },
  };
}
