// A bounded push queue read by one `for await` loop: the building block of local subscriptions,
// KV watchers and status streams. Items pushed before `end()` are still yielded; items beyond
// `maxPending` are dropped (and reported) so that a stalled reader cannot grow memory forever.

export interface AsyncQueueOptions {
  /** Most items waiting for the reader; further pushes are dropped. Default: unbounded. */
  maxPending?: number;
  /** Called with the running drop count each time an item is dropped. */
  onDrop?: (dropped: number) => void;
  /** Called once when the reader stops early (break/return/throw out of `for await`). */
  onReturn?: () => void;
}

export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private head = 0;
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private ended = false;
  private iterating = false;
  private dropped = 0;

  constructor(private readonly opts: AsyncQueueOptions = {}) {}

  get pending(): number {
    return this.items.length - this.head;
  }

  isEnded(): boolean {
    return this.ended;
  }

  /** False when the queue has ended or the item was dropped. */
  push(item: T): boolean {
    if (this.ended) return false;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w({ value: item, done: false });
      return true;
    }
    if (this.opts.maxPending !== undefined && this.pending >= this.opts.maxPending) {
      this.dropped++;
      this.opts.onDrop?.(this.dropped);
      return false;
    }
    this.items.push(item);
    return true;
  }

  /** No more pushes; what is queued is still yielded, then the iteration ends. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.waiting && this.pending === 0) {
      const w = this.waiting;
      this.waiting = null;
      w({ value: undefined, done: true });
    }
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.pending > 0) {
      const value = this.items[this.head++];
      // Compact once the consumed prefix dominates, so a long-lived queue does not keep garbage.
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.iterating) throw new TypeError('this iterator is already being read');
    this.iterating = true;
    return {
      next: () => this.next(),
      return: () => {
        const wasEnded = this.ended;
        this.items = [];
        this.head = 0;
        this.end();
        if (!wasEnded) this.opts.onReturn?.();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
