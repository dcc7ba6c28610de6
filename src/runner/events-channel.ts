// The stream's `-events` trickle channel: one JSON object per segment, shaped as the gateway reads
// them: {"event": {..., "timestamp": ms}, "queue_event_type": "ai_stream_events" | "stream_trace"}.
// Sends go one at a time; while one is in flight at most `maxQueued` wait (older status events are
// dropped first), so a stalled gateway cannot grow memory.
import type { TrickleConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { TricklePublisher } from '../transport/trickle/publisher.ts';
import { openPublisher } from './output.ts';

export type QueueEventType = 'ai_stream_events' | 'stream_trace';

interface Queued {
  body: Uint8Array;
  status: boolean;
}

export class EventsChannel {
  private publisher: Promise<TricklePublisher>;
  private queue: Queued[] = [];
  private sending = false;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => undefined;
  private warned = false;
  sent = 0;

  constructor(
    url: string,
    config: TrickleConfig,
    private readonly maxQueued: number,
    private readonly log: Logger,
  ) {
    this.publisher = openPublisher(url, { config, logger: log, contentType: 'application/json' });
  }

  send(type: QueueEventType, event: Record<string, unknown>): void {
    if (this.closed) return;
    const status = event.type === 'status';
    const body = new TextEncoder().encode(JSON.stringify({ event: { ...event, timestamp: Date.now() }, queue_event_type: type }));
    if (this.queue.length >= this.maxQueued) {
      const i = this.queue.findIndex((q) => q.status);
      this.queue.splice(i >= 0 ? i : 0, 1);
    }
    this.queue.push({ body, status });
    if (!this.sending) void this.pump();
  }

  private async pump(): Promise<void> {
    this.sending = true;
    this.idle = new Promise((r) => (this.markIdle = r));
    const pub = await this.publisher;
    while (this.queue.length && !this.closed) {
      const q = this.queue.shift()!;
      try {
        await pub.writeSegment(q.body);
        this.sent++;
      } catch (err) {
        if (!this.warned) this.log.warn({ err }, 'events channel write failed');
        this.warned = true;
      }
    }
    this.sending = false;
    this.markIdle();
  }

  /** Stops at once, leaving the channel to the stream's new owner (nothing queued is sent). */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    (await this.publisher).abandon();
  }

  /** Sends what is queued (bounded by the publisher's retries), then deletes the channel. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.idle;
    this.closed = true;
    this.queue = [];
    await (await this.publisher).close();
  }
}
