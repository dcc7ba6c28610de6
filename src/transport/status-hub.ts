// Fan-out of status events to every `status()` iterator opened so far (nats.js semantics: each
// call returns a new iterator that sees events from then on, and ends when the bus closes).
import type { BusStatus } from './bus.ts';
import { AsyncQueue } from './queue.ts';

/** Status events kept per reader that is not reading; older readers that stall lose new events. */
const MAX_PENDING_STATUS = 1_000;

export class StatusHub {
  private readers = new Set<AsyncQueue<BusStatus>>();
  private ended = false;

  iterator(): AsyncIterable<BusStatus> {
    const q: AsyncQueue<BusStatus> = new AsyncQueue<BusStatus>({
      maxPending: MAX_PENDING_STATUS,
      onReturn: () => this.readers.delete(q),
    });
    if (this.ended) q.end();
    else this.readers.add(q);
    return q;
  }

  emit(status: BusStatus): void {
    for (const q of this.readers) q.push(status);
  }

  /** Emits `close` and ends every reader. */
  end(): void {
    if (this.ended) return;
    this.emit({ type: 'close' });
    this.ended = true;
    for (const q of this.readers) q.end();
    this.readers.clear();
  }
}
