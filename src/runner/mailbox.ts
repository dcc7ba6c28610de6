// The hand-off between decode and the graph: at most `capacity` frames wait; when the graph is
// slower than the input, the oldest waiting frame is dropped (and reported), so the added latency
// stays bounded instead of growing with the stream's age.

export class DropOldestMailbox<T> {
  private items: T[] = [];
  private waiter: ((v: IteratorResult<T>) => void) | null = null;
  private ended = false;

  /** Droppable items waiting (only those count against the capacity). */
  private droppableCount = 0;

  constructor(
    private readonly capacity: number,
    private readonly onDrop: (item: T) => void,
    /**
     * Which items may be dropped (default: all). Others (e.g. a segment's end marker) always wait
     * their turn and do not count against the capacity, so dropping frames never reorders them.
     */
    private readonly droppable: (item: T) => boolean = () => true,
  ) {
    if (capacity < 1) throw new RangeError('mailbox capacity must be >= 1');
  }

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    if (this.ended) {
      this.onDrop(item);
      return;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: item, done: false });
      return;
    }
    if (this.droppable(item)) {
      if (this.droppableCount >= this.capacity) {
        const i = this.items.findIndex((x) => this.droppable(x));
        const [old] = this.items.splice(i, 1);
        this.droppableCount--;
        this.onDrop(old);
      }
      this.droppableCount++;
    }
    this.items.push(item);
  }

  private take(): T {
    const item = this.items.shift() as T;
    if (this.droppable(item)) this.droppableCount--;
    return item;
  }

  /** No more pushes; the consumer still gets what waits, then the end. */
  end(): void {
    this.ended = true;
    if (this.waiter && this.items.length === 0) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: undefined, done: true });
    }
  }

  /** Takes every waiting item out (to release what they hold when the consumer stops early). */
  drainRemaining(): T[] {
    this.droppableCount = 0;
    return this.items.splice(0);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length) return Promise.resolve({ value: this.take(), done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}
