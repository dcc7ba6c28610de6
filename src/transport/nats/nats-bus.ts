// The bus on NATS (@nats-io/transport-node + @nats-io/kv): one connection per process; KV buckets
// are created on demand. Subscriptions use a callback feeding the same bounded queue as the
// embedded bus, so a slow reader drops (and reports) instead of growing memory.
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection, type Status } from '@nats-io/transport-node';
import { defaultConfig, type BusConfig } from '../../config.ts';
import { rootLogger, type Logger } from '../../log.ts';
import { BusClosedError, BusConnectError, BusDisconnectedError, encodePayload, makeMsg } from '../bus.ts';
import type { Bus, BusConnection, BusMsg, BusStatus, BusSubscription, KeyValue, Payload, RequestOptions, SubscribeOptions } from '../bus.ts';
import { checkBucket } from '../kv-rules.ts';
import { patternTokens, publishTokens } from '../match.ts';
import { StatusHub } from '../status-hub.ts';
import { QueueSubscription } from '../subscription.ts';
import { mapNatsError } from './errors.ts';
import { NatsKv } from './nats-kv.ts';

export type NatsBusOptions = Partial<Omit<BusConfig, 'natsUrl'>> & {
  /** Connection name shown by the server (e.g. the node id). */
  name?: string;
  logger?: Logger;
};

function mapStatus(s: Status): BusStatus | null {
  switch (s.type) {
    case 'disconnect':
      return { type: 'disconnect', server: s.server };
    case 'reconnecting':
      return { type: 'reconnecting' };
    case 'reconnect':
      return { type: 'reconnect', server: s.server };
    case 'error':
      return { type: 'error', error: mapNatsError(s.error) };
    default:
      return null; // pings, cluster updates, ...: not part of our union
  }
}

export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  readonly closed: Promise<void>;
  private readonly statusHub = new StatusHub();
  private readonly kvm: Kvm;
  private readonly buckets = new Map<string, Promise<KeyValue>>();
  private readonly cfg: Omit<BusConfig, 'natsUrl'>;
  private done = false;
  /** False from a `disconnect` until the `reconnect`: publishes are held, requests refused. */
  private up = true;
  /** Publishes made while the connection is lost, sent in order on the reconnect (nats.js v3 drops
   *  its outbound buffer at each reconnect attempt); bounded by `reconnectBufferBytes`. */
  private held: Array<{ subject: string; bytes: Uint8Array }> = [];
  private heldBytes = 0;
  private droppedWhileDown = 0;

  constructor(
    private readonly nc: NatsConnection,
    opts: NatsBusOptions,
  ) {
    const { name: _n, logger: _l, ...cfg } = opts;
    this.cfg = { ...defaultConfig.bus, ...cfg };
    this.kvm = new Kvm(nc);
    const log = (opts.logger ?? rootLogger).child({ component: 'bus-nats' });
    void (async () => {
      for await (const s of nc.status()) {
        const mapped = mapStatus(s);
        if (mapped) {
          if (mapped.type === 'disconnect') this.up = false;
          if (mapped.type === 'reconnect') this.sendHeld(log);
          if (mapped.type === 'disconnect' || mapped.type === 'reconnect') log.info({ status: mapped.type, server: mapped.server }, 'NATS connection');
          else log.debug({ status: mapped.type }, 'NATS status');
          this.statusHub.emit(mapped);
        }
      }
    })().catch(() => undefined);
    this.closed = nc.closed().then((err) => {
      if (err) log.warn({ err }, 'NATS connection closed with an error');
      this.done = true;
      this.up = false;
      this.held = [];
      this.statusHub.end();
    });
  }

  isClosed(): boolean {
    return this.done || this.nc.isClosed();
  }

  private sendHeld(log: Logger): void {
    const held = this.held;
    if (this.droppedWhileDown) log.warn({ sent: held.length, dropped: this.droppedWhileDown }, 'publishes dropped while NATS was unreachable');
    this.held = [];
    this.heldBytes = 0;
    this.droppedWhileDown = 0;
    this.up = true;
    for (const m of held) {
      try {
        this.nc.publish(m.subject, m.bytes);
      } catch (err) {
        log.warn({ err, subject: m.subject }, 'held publish not sent');
      }
    }
  }

  connection(): BusConnection {
    return this.up && !this.isClosed() ? 'up' : 'down';
  }

  publish(subject: string, data?: Payload): void {
    this.checkOpen();
    publishTokens(subject);
    const bytes = encodePayload(data);
    if (!this.up) {
      // Held until the reconnect; past the bound the newest are dropped (the held ones stay in order).
      const size = subject.length + bytes.length;
      if (this.heldBytes + size > this.cfg.reconnectBufferBytes) this.droppedWhileDown++;
      else {
        this.held.push({ subject, bytes });
        this.heldBytes += size;
      }
      return;
    }
    try {
      this.nc.publish(subject, bytes);
    } catch (err) {
      throw mapNatsError(err, { subject });
    }
  }

  subscribe(subject: string, opts: SubscribeOptions = {}): BusSubscription {
    this.checkOpen();
    patternTokens(subject);
    const respond = (to: string, bytes: Uint8Array): void => {
      if (!this.nc.isClosed()) this.nc.publish(to, bytes);
    };
    let natsSub: ReturnType<NatsConnection['subscribe']> | undefined;
    const sub = new QueueSubscription({
      subject,
      queue: opts.queue,
      maxPending: this.cfg.maxPendingMessages,
      onDrop: (dropped) => this.statusHub.emit({ type: 'slowConsumer', subject, dropped }),
      teardown: () => {
        if (natsSub && !natsSub.isClosed()) natsSub.unsubscribe();
      },
      settle: async () => {
        if (natsSub && !natsSub.isClosed() && !this.nc.isClosed()) await natsSub.drain().catch(() => undefined);
      },
    });
    try {
      natsSub = this.nc.subscribe(subject, {
        queue: opts.queue,
        callback: (err, m) => {
          if (err) {
            this.statusHub.emit({ type: 'error', error: mapNatsError(err, { subject }) });
            return;
          }
          sub.deliver(makeMsg(m.subject, m.data, m.reply, respond));
        },
      });
    } catch (err) {
      throw mapNatsError(err, { subject });
    }
    // Connection closed, or the server ended the subscription: end ours too.
    void natsSub.closed.then(() => sub.unsubscribe());
    return sub;
  }

  async request(subject: string, data?: Payload, opts: RequestOptions = {}): Promise<BusMsg> {
    this.checkOpen();
    publishTokens(subject);
    const timeoutMs = opts.timeoutMs ?? this.cfg.requestTimeoutMs;
    // Nobody can answer while the connection is lost: refused now rather than timed out later.
    if (!this.up) throw new BusDisconnectedError(`no connection to NATS: request on ${subject} not sent`);
    try {
      const m = await this.nc.request(subject, encodePayload(data), { timeout: timeoutMs });
      return makeMsg(m.subject, m.data, m.reply, (to, bytes) => this.nc.publish(to, bytes));
    } catch (err) {
      throw mapNatsError(err, { subject, timeoutMs });
    }
  }

  async kv(bucket: string): Promise<KeyValue> {
    this.checkOpen();
    checkBucket(bucket);
    let kv = this.buckets.get(bucket);
    if (!kv) {
      kv = this.kvm
        .create(bucket, { history: this.cfg.kvHistory })
        .then((b) => new NatsKv(bucket, b, { maxPending: this.cfg.maxPendingMessages, emit: (s) => this.statusHub.emit(s) }))
        .catch((err: unknown) => {
          this.buckets.delete(bucket);
          throw mapNatsError(err, { bucket });
        });
      this.buckets.set(bucket, kv);
    }
    return kv;
  }

  async flush(): Promise<void> {
    this.checkOpen();
    try {
      await this.nc.flush();
    } catch (err) {
      throw mapNatsError(err);
    }
  }

  status(): AsyncIterable<BusStatus> {
    return this.statusHub.iterator();
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) {
      // drain: our subscriptions get what is in flight, pending publishes reach the server.
      await this.nc.drain().catch(() => this.nc.close());
    }
    await this.closed;
  }

  private checkOpen(): void {
    if (this.isClosed()) throw new BusClosedError();
  }
}

/**
 * Connects to NATS; `url` may list several servers separated by commas (a cluster's seeds).
 * BusConnectError when none can be reached within `connectTimeoutMs`.
 */
export async function connectNatsBus(url: string, opts: NatsBusOptions = {}): Promise<NatsBus> {
  const cfg = { ...defaultConfig.bus, ...opts };
  try {
    const nc = await connect({
      servers: url.split(',').map((s) => s.trim()).filter(Boolean),
      name: opts.name,
      timeout: cfg.connectTimeoutMs,
      maxReconnectAttempts: cfg.maxReconnectAttempts,
      reconnectTimeWait: cfg.reconnectTimeWaitMs,
      pingInterval: cfg.pingIntervalMs,
      maxPingOut: cfg.maxPingsOut,
    });
    return new NatsBus(nc, opts);
  } catch (err) {
    throw new BusConnectError(url, { cause: err });
  }
}
