// The hand-off between decode and the graph: at most `capacity` frames wait; when the graph is
// slower than the input, the oldest waiting frame is dropped (and reported), so the added latency
// stays bounded instead of growing with the stream's age.

export class DropOldestMailbox<T> {
  private items: T[] = [];
  private waiter: ((v: IteratorResult<T>) => void) | null = null;
  private ended = false;

  constructor(
    private readonly capacity: number,
    private readonly onDrop: (item: T) => void,
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
    if (this.items.length >= this.capacity) this.onDrop(this.items.shift() as T);
    this.items.push(item);
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

  next(): Promise<IteratorResult<T>> {
    if (this.items.length) return Promise.resolve({ value: this.items.shift() as T, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}
