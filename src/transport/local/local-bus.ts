// The embedded in-process bus (the default on one machine): NATS semantics without a server.
// Delivery is asynchronous to the reader (each subscription is a queue read by `for await`),
// queue groups pick one member at random as nats-server does, a request with nobody listening
// fails at once with BusNoRespondersError.
import { randomBytes } from 'node:crypto';
import { defaultConfig, type BusConfig } from '../../config.ts';
import { BusClosedError, BusNoRespondersError, BusTimeoutError, encodePayload, makeMsg } from '../bus.ts';
import type { Bus, BusMsg, BusConnection, BusStatus, BusSubscription, KeyValue, Payload, RequestOptions, SubscribeOptions } from '../bus.ts';
import { checkBucket } from '../kv-rules.ts';
import { LocalKv } from './local-kv.ts';
import { patternTokens, publishTokens, tokensMatch } from '../match.ts';
import { StatusHub } from '../status-hub.ts';
import { QueueSubscription } from '../subscription.ts';

interface Entry {
  tokens: string[];
  queue?: string;
  sub: QueueSubscription;
}

export type LocalBusOptions = Pick<BusConfig, 'requestTimeoutMs' | 'maxPendingMessages'>;

export class LocalBus implements Bus {
  readonly kind = 'local' as const;
  readonly closed: Promise<void>;
  private readonly opts: LocalBusOptions;
  private readonly entries = new Set<Entry>();
  private readonly buckets = new Map<string, LocalKv>();
  private readonly statusHub = new StatusHub();
  private readonly inboxPrefix = `_INBOX.${randomBytes(8).toString('hex')}`;
  private inboxSeq = 0;
  private done = false;
  private resolveClosed!: () => void;

  constructor(config: Partial<LocalBusOptions> = {}) {
    this.opts = {
      requestTimeoutMs: config.requestTimeoutMs ?? defaultConfig.bus.requestTimeoutMs,
      maxPendingMessages: config.maxPendingMessages ?? defaultConfig.bus.maxPendingMessages,
    };
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  isClosed(): boolean {
    return this.done;
  }

  publish(subject: string, data?: Payload): void {
    this.checkOpen();
    this.deliver(subject, encodePayload(data), undefined);
  }

  subscribe(subject: string, opts: SubscribeOptions = {}): BusSubscription {
    this.checkOpen();
    const tokens = patternTokens(subject);
    const entry: Entry = {
      tokens,
      queue: opts.queue,
      sub: new QueueSubscription({
        subject,
        queue: opts.queue,
        maxPending: this.opts.maxPendingMessages,
        onDrop: (dropped) => this.statusHub.emit({ type: 'slowConsumer', subject, dropped }),
        teardown: () => this.entries.delete(entry),
      }),
    };
    this.entries.add(entry);
    return entry.sub;
  }

  async request(subject: string, data?: Payload, opts: RequestOptions = {}): Promise<BusMsg> {
    this.checkOpen();
    const timeoutMs = opts.timeoutMs ?? this.opts.requestTimeoutMs;
    const payload = encodePayload(data);
    publishTokens(subject);
    const inbox = `${this.inboxPrefix}.${++this.inboxSeq}`;
    const replies = this.subscribe(inbox);
    let timer: NodeJS.Timeout | undefined;
    try {
      if (this.deliver(subject, payload, inbox) === 0) throw new BusNoRespondersError(subject);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new BusTimeoutError(subject, timeoutMs)), timeoutMs);
      });
      const first = (async () => {
        for await (const m of replies) return m;
        return null;
      })();
      const reply = await Promise.race([first, timeout]);
      if (!reply) throw new BusClosedError('bus closed while waiting for a reply');
      return reply;
    } finally {
      clearTimeout(timer);
      replies.unsubscribe();
    }
  }

  async kv(bucket: string): Promise<KeyValue> {
    this.checkOpen();
    checkBucket(bucket);
    let kv = this.buckets.get(bucket);
    if (!kv) {
      kv = new LocalKv(bucket, {
        maxPending: this.opts.maxPendingMessages,
        onDrop: (subject, dropped) => this.statusHub.emit({ type: 'slowConsumer', subject, dropped }),
      });
      this.buckets.set(bucket, kv);
    }
    return kv;
  }

  async flush(): Promise<void> {
    this.checkOpen();
  }

  connection(): BusConnection {
    return this.isClosed() ? 'down' : 'up';
  }

  status(): AsyncIterable<BusStatus> {
    return this.statusHub.iterator();
  }

  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    for (const e of [...this.entries]) e.sub.unsubscribe();
    for (const kv of this.buckets.values()) kv.close();
    this.statusHub.end();
    this.resolveClosed();
  }

  /** Hands one message to every matching plain subscriber and one member per queue group; returns how many got it. */
  private deliver(subject: string, payload: Uint8Array, reply: string | undefined): number {
    const tokens = publishTokens(subject);
    // One copy per publish, shared by the readers: the publisher may reuse its buffer afterwards.
    const data = payload.slice();
    const msg = makeMsg(subject, data, reply, (to, bytes) => {
      if (!this.done) this.deliver(to, bytes, undefined);
    });
    let count = 0;
    let groups: Map<string, Entry[]> | undefined;
    for (const e of this.entries) {
      if (!tokensMatch(e.tokens, tokens)) continue;
      if (e.queue === undefined) {
        e.sub.deliver(msg);
        count++;
      } else {
        groups ??= new Map();
        const members = groups.get(e.queue);
        if (members) members.push(e);
        else groups.set(e.queue, [e]);
      }
    }
    if (groups) {
      for (const members of groups.values()) {
        members[Math.floor(Math.random() * members.length)].sub.deliver(msg);
        count++;
      }
    }
    return count;
  }

  private checkOpen(): void {
    if (this.done) throw new BusClosedError();
  }
}
