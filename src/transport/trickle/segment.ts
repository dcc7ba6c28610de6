// One trickle segment on the server: an append-only list of chunks that any number of readers walk at
// their own pace. Readers never copy or drain it, so a late reader gets every byte from 0 and then
// the live tail, and fan-out to N readers costs N socket writes, not N buffers.

/** Who is writing the segment (one POST at a time); told when it loses the segment. */
export interface SegmentWriter {
  /** The segment was closed, evicted or taken over by another POST: stop and answer. */
  detach(): void;
}

export type SegmentEnd = 'complete' | 'aborted';

export class Segment {
  readonly chunks: Buffer[] = [];
  length = 0;
  closed = false;
  /** Closed before its POST body ended: readers must signal truncation, not a clean end. */
  aborted = false;
  contentType: string;
  writer: SegmentWriter | null = null;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly idx: number,
    contentType: string,
  ) {
    this.contentType = contentType;
  }

  /** No byte yet and still open: a pre-created or preconnected segment that a POST may take. */
  get fresh(): boolean {
    return !this.closed && this.length === 0;
  }

  append(chunk: Buffer): void {
    if (this.closed || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
    this.wake();
  }

  /** Ends the segment; `aborted` marks it truncated. Not aborted, readers get a clean end of body
   *  after the bytes it holds (a DELETE of the seq, a reset); a POST still writing it is answered and
   *  the rest of its body dropped. Idempotent. */
  close(aborted = false): void {
    if (this.closed) return;
    this.closed = true;
    this.aborted = aborted;
    const w = this.writer;
    this.writer = null;
    w?.detach();
    this.wake();
  }

  /** Closes a segment that is being pushed out (ring reuse, channel close): truncated if a POST was
   *  still mid-body. */
  evict(): void {
    this.close(this.writer !== null && this.length > 0);
  }

  /** Resolves on the next append or close; `cancel` drops the waiter (reader went away). */
  changed(): { promise: Promise<void>; cancel(): void } {
    let done!: () => void;
    const promise = new Promise<void>((resolve) => {
      done = resolve;
    });
    this.waiters.add(done);
    return {
      promise,
      cancel: () => {
        this.waiters.delete(done);
        done();
      },
    };
  }

  private wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
}
