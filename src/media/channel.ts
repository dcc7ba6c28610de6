// A bounded single-producer/single-consumer queue between pipelined stages: the producer waits
// when `capacity` items are waiting, so memory stays flat however far one stage runs ahead.

export class Channel<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private closed = false;
  private failure: { error: unknown } | null = null;
  private wakeConsumer: (() => void) | null = null;
  private wakeProducer: (() => void) | null = null;

  constructor(private readonly capacity: number) {}

  /** Resolves once the item is queued; false if the consumer has gone away. */
  async push(item: T): Promise<boolean> {
    while (this.items.length >= this.capacity && !this.closed) {
      await new Promise<void>((r) => (this.wakeProducer = r));
    }
    if (this.closed) return false;
    this.items.push(item);
    this.wakeConsumer?.();
    this.wakeConsumer = null;
    return true;
  }

  /** No more items; with `error`, the consumer's iteration throws it after the queued items. */
  close(error?: unknown): void {
    if (this.closed && !error) return;
    if (error !== undefined && !this.failure) this.failure = { error };
    this.closed = true;
    this.wakeConsumer?.();
    this.wakeConsumer = null;
    this.wakeProducer?.();
    this.wakeProducer = null;
  }

  /** Items still queued (e.g. to release them after the consumer stops early). */
  drainRemaining(): T[] {
    return this.items.splice(0);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      for (;;) {
        if (this.items.length) {
          const item = this.items.shift() as T;
          this.wakeProducer?.();
          this.wakeProducer = null;
          yield item;
          continue;
        }
        if (this.closed) {
          if (this.failure) throw this.failure.error;
          return;
        }
        await new Promise<void>((r) => (this.wakeConsumer = r));
      }
    } finally {
      // A consumer that stops early releases a waiting producer.
      this.closed = true;
      this.wakeProducer?.();
      this.wakeProducer = null;
    }
  }
}
