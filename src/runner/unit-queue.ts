// The queue between a stream's input (trickle -> TS units, never blocked) and its processing loop
// (decode -> graph -> encode, one unit at a time). It holds compressed units, so a gateway that
// posts a whole 2 s segment at once costs a few hundred kilobytes here, not seconds of decoded
// video, and nothing waits on a clock: a unit is processed as soon as the loop is free.
//
// The queue only says how long the loop has been busy and whether frames back up behind it; the
// policy that decides when a frame skips the graph is the runner's (lag-watch.ts). Past
// `maxQueuedBytes` (a stalled loop) the oldest waiting units are dropped outright, up to the next
// random access point.

export interface QueuedUnit {
  /** Video units count toward the in-flight bound and may be skipped. */
  video: boolean;
  /** A decoder can start from it (units before it may be dropped outright). */
  key: boolean;
  bytes: number;
}

export interface UnitQueueLimits {
  maxFramesInFlight: number;
  maxQueuedBytes: number;
}

export class UnitQueue<T> {
  private items: T[] = [];
  private head = 0;
  private waiter: ((v: IteratorResult<T>) => void) | null = null;
  private ended = false;
  private bytes = 0;
  private videoWaiting = 0;
  /** When the consumer last found nothing to do (it is busy from then on). */
  private idleAt: number;

  constructor(
    private readonly limits: UnitQueueLimits,
    private readonly describe: (item: T) => QueuedUnit | null,
    /** Items dropped outright (over maxQueuedBytes, or pushed after end()). */
    private readonly onDrop: (item: T) => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.idleAt = now();
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** When the consumer's current busy period began (it last waited for an item until then). */
  get busySince(): number {
    return this.idleAt;
  }

  /** More than maxFramesInFlight video units wait. */
  get backedUp(): boolean {
    return this.videoWaiting > this.limits.maxFramesInFlight;
  }

  push(item: T): void {
    if (this.ended) {
      this.onDrop(item);
      return;
    }
    if (this.waiter) {
      // The loop was idle until now: its busy period starts with this item.
      this.idleAt = this.now();
      const w = this.waiter;
      this.waiter = null;
      w({ value: item, done: false });
      return;
    }
    const d = this.describe(item);
    if (d) {
      this.bytes += d.bytes;
      if (d.video) this.videoWaiting++;
    }
    this.items.push(item);
    if (this.bytes > this.limits.maxQueuedBytes) this.shed();
  }

  /** Drops the oldest waiting units up to the next random access point after them. */
  private shed(): void {
    const keep: T[] = [];
    let cut = false;
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i];
      const d = this.describe(item);
      if (!d) {
        keep.push(item);
        continue;
      }
      if (!cut && this.bytes > this.limits.maxQueuedBytes / 2) {
        this.bytes -= d.bytes;
        if (d.video) this.videoWaiting--;
        this.onDrop(item);
        continue;
      }
      if (!cut && !(d.video && d.key)) {
        this.bytes -= d.bytes;
        if (d.video) this.videoWaiting--;
        this.onDrop(item);
        continue;
      }
      cut = true;
      keep.push(item);
    }
    this.items = keep;
    this.head = 0;
  }

  private take(): T {
    const item = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    const d = this.describe(item);
    if (d) {
      this.bytes -= d.bytes;
      if (d.video) this.videoWaiting--;
    }
    return item;
  }

  /** No more pushes; the consumer still gets what waits, then the end. */
  end(): void {
    this.ended = true;
    if (this.waiter && this.size === 0) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: undefined, done: true });
    }
  }

  /** Takes every waiting item out (to release what they hold when the consumer stops early). */
  drainRemaining(): T[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.bytes = 0;
    this.videoWaiting = 0;
    return rest;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.size) return Promise.resolve({ value: this.take(), done: false });
    this.idleAt = this.now();
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}
