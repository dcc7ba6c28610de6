// A subscription fed by pushes (the embedded bus, or the IPC bridge in a child process).
import type { BusMsg, BusSubscription } from './bus.ts';
import { AsyncQueue } from './queue.ts';

export interface QueueSubscriptionOptions {
  subject: string;
  queue?: string;
  /** Bound on messages waiting for the reader; beyond it new messages are dropped. */
  maxPending: number;
  onDrop: (dropped: number) => void;
  /** Removes the subscription from whoever feeds it; called once, on any kind of close. */
  teardown: () => void;
  /** Resolves when messages already in flight to this subscriber have arrived (drain). */
  settle?: () => Promise<void>;
}

export class QueueSubscription implements BusSubscription {
  readonly subject: string;
  readonly queue?: string;
  readonly closed: Promise<void>;
  private readonly q: AsyncQueue<BusMsg>;
  private resolveClosed!: () => void;
  private done = false;

  constructor(private readonly opts: QueueSubscriptionOptions) {
    this.subject = opts.subject;
    this.queue = opts.queue;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.q = new AsyncQueue<BusMsg>({
      maxPending: opts.maxPending,
      onDrop: opts.onDrop,
      onReturn: () => this.unsubscribe(),
    });
  }

  /** Hands a message to the reader; false when closed or dropped. */
  deliver(msg: BusMsg): boolean {
    if (this.done) return false;
    return this.q.push(msg);
  }

  isClosed(): boolean {
    return this.done;
  }

  unsubscribe(): void {
    if (this.done) return;
    this.done = true;
    this.opts.teardown();
    this.q.end();
    this.resolveClosed();
  }

  async drain(): Promise<void> {
    if (this.done) return this.closed;
    await this.opts.settle?.();
    this.unsubscribe();
    return this.closed;
  }

  [Symbol.asyncIterator](): AsyncIterator<BusMsg> {
    return this.q[Symbol.asyncIterator]();
  }
}
