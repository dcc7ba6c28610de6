// Child side of the IPC bridge: a Bus whose operations travel over the IPC channel of a process
// forked by `node:child_process.fork`, served by `bridgeChild` in the parent. A worker process uses
// it exactly as it would use NATS (on NATS the child connects to the NATS URL itself instead).
import { defaultConfig, type BusConfig } from '../../config.ts';
import { rootLogger, type Logger } from '../../log.ts';
import { BusBridgeUnavailableError, BusClosedError, BusTimeoutError, encodePayload, makeKvChange, makeKvEntry, makeMsg } from '../bus.ts';
import type { Bus, BusMsg, BusConnection, BusStatus, BusSubscription, KeyValue, KvChange, KvEntry, KvWatcher, KvWatchOptions, Payload, RequestOptions, SubscribeOptions } from '../bus.ts';
import {
  errorFromWire,
  fromB64,
  isBusEnvelope,
  KeysResultSchema,
  KvGetResultSchema,
  ParentToChildSchema,
  ReqResultSchema,
  RevisionResultSchema,
  toB64,
  type ChildToParentBody,
  type ParentToChild,
} from './bridge-protocol.ts';
import { checkBucket, checkKey, checkKeyFilter } from '../kv-rules.ts';
import { patternTokens, publishTokens } from '../match.ts';
import { AsyncQueue } from '../queue.ts';
import { StatusHub } from '../status-hub.ts';
import { QueueSubscription } from '../subscription.ts';

/** The slice of `process` the bridge uses (a forked child's IPC channel). */
export interface IpcEndpoint {
  send?(message: unknown, callback?: (err: Error | null) => void): boolean;
  connected?: boolean;
  on(event: 'message', listener: (m: unknown) => void): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
  off(event: 'message', listener: (m: unknown) => void): unknown;
  off(event: 'disconnect', listener: () => void): unknown;
}

export interface ConnectParentBusOptions extends Partial<Pick<BusConfig, 'requestTimeoutMs' | 'maxPendingMessages' | 'bridgeTimeoutSlackMs'>> {
  logger?: Logger;
  /** The IPC endpoint; default `process`. */
  ipc?: IpcEndpoint;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

class ChildBus implements Bus {
  readonly kind = 'bridge' as const;
  readonly closed: Promise<void>;
  private readonly subs = new Map<number, QueueSubscription>();
  private readonly watches = new Map<number, AsyncQueue<KvChange>>();
  private readonly pending = new Map<number, Pending>();
  private readonly statusHub = new StatusHub();
  private readonly buckets = new Map<string, Promise<KeyValue>>();
  private readonly requestTimeoutMs: number;
  private readonly maxPending: number;
  private readonly timeoutSlackMs: number;
  private readonly log: Logger;
  private nextId = 0;
  private done = false;
  private resolveClosed!: () => void;

  constructor(
    private readonly ipc: IpcEndpoint,
    opts: ConnectParentBusOptions,
  ) {
    this.requestTimeoutMs = opts.requestTimeoutMs ?? defaultConfig.bus.requestTimeoutMs;
    this.maxPending = opts.maxPendingMessages ?? defaultConfig.bus.maxPendingMessages;
    this.timeoutSlackMs = opts.bridgeTimeoutSlackMs ?? defaultConfig.bus.bridgeTimeoutSlackMs;
    this.log = (opts.logger ?? rootLogger).child({ component: 'bus-bridge-child' });
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    ipc.on('message', this.onMessage);
    ipc.on('disconnect', this.onDisconnect);
  }

  isClosed(): boolean {
    return this.done;
  }

  publish(subject: string, data?: Payload): void {
    this.checkOpen();
    publishTokens(subject);
    this.send({ op: 'pub', subject, data: toB64(encodePayload(data)) });
  }

  subscribe(subject: string, opts: SubscribeOptions = {}): BusSubscription {
    this.checkOpen();
    patternTokens(subject);
    const sid = ++this.nextId;
    const sub = new QueueSubscription({
      subject,
      queue: opts.queue,
      maxPending: this.maxPending,
      onDrop: (dropped) => this.statusHub.emit({ type: 'slowConsumer', subject, dropped }),
      teardown: () => {
        this.subs.delete(sid);
        if (!this.done) this.send({ op: 'unsub', sid });
      },
      // Messages the parent sent before answering the flush precede the answer on the channel.
      settle: () => this.flush().catch(() => undefined),
    });
    this.subs.set(sid, sub);
    this.send({ op: 'sub', sid, subject, queue: opts.queue });
    return sub;
  }

  async request(subject: string, data?: Payload, opts: RequestOptions = {}): Promise<BusMsg> {
    this.checkOpen();
    publishTokens(subject);
    const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
    // The parent times the request; the local timer only guards against a parent that stopped answering.
    const raw = await this.call({ op: 'req', id: 0, subject, data: toB64(encodePayload(data)), timeoutMs }, () => new BusTimeoutError(subject, timeoutMs), timeoutMs);
    const r = ReqResultSchema.parse(raw);
    return makeMsg(r.subject, fromB64(r.data), r.reply, (to, bytes) => this.publish(to, bytes));
  }

  async kv(bucket: string): Promise<KeyValue> {
    this.checkOpen();
    checkBucket(bucket);
    let kv = this.buckets.get(bucket);
    if (!kv) {
      kv = this.kvCall(bucket, 'open').then(() => this.makeKv(bucket));
      this.buckets.set(bucket, kv);
      kv.catch(() => this.buckets.delete(bucket));
    }
    return kv;
  }

  async flush(): Promise<void> {
    this.checkOpen();
    await this.call({ op: 'flush', id: 0 });
  }

  connection(): BusConnection {
    return this.done ? 'down' : 'up';
  }

  status(): AsyncIterable<BusStatus> {
    return this.statusHub.iterator();
  }

  async close(): Promise<void> {
    this.shutdown();
  }

  // -------------------------------------------------------------------------------------------

  private makeKv(bucket: string): KeyValue {
    const call = this.kvCall.bind(this, bucket);
    return {
      bucket,
      get: async (key: string): Promise<KvEntry | null> => {
        const e = KvGetResultSchema.parse(await call('get', checkKey(key)));
        return e && makeKvEntry(e.key, fromB64(e.value), e.revision);
      },
      put: async (key, value) => RevisionResultSchema.parse(await call('put', checkKey(key), value)),
      create: async (key, value) => RevisionResultSchema.parse(await call('create', checkKey(key), value)),
      update: async (key, value, expectedRevision) =>
        RevisionResultSchema.parse(await call('update', checkKey(key), value, expectedRevision)),
      delete: async (key) => {
        await call('delete', checkKey(key));
      },
      keys: async (filter = '>') => KeysResultSchema.parse(await call('keys', checkKeyFilter(filter))),
      watch: (opts: KvWatchOptions = {}) => this.watch(bucket, opts),
    };
  }

  private async watch(bucket: string, opts: KvWatchOptions): Promise<KvWatcher> {
    this.checkOpen();
    const key = checkKeyFilter(opts.key ?? '>');
    const wid = ++this.nextId;
    const stop = (): void => {
      if (this.watches.delete(wid) && !this.done) this.send({ op: 'unwatch', wid });
      q.end();
    };
    const q: AsyncQueue<KvChange> = new AsyncQueue<KvChange>({
      maxPending: this.maxPending,
      onDrop: (dropped) => this.statusHub.emit({ type: 'slowConsumer', subject: `$KV.${bucket}.${key}`, dropped }),
      onReturn: stop,
    });
    this.watches.set(wid, q);
    try {
      await this.call({ op: 'watch', id: 0, wid, bucket, key, initial: opts.initial });
    } catch (err) {
      this.watches.delete(wid);
      throw err;
    }
    return { stop, [Symbol.asyncIterator]: () => q[Symbol.asyncIterator]() };
  }

  private kvCall(bucket: string, method: 'open' | 'get' | 'put' | 'create' | 'update' | 'delete' | 'keys', key?: string, value?: Payload, revision?: number): Promise<unknown> {
    this.checkOpen();
    return this.call({
      op: 'kv',
      id: 0,
      bucket,
      method,
      key,
      value: value === undefined ? undefined : toB64(encodePayload(value)),
      revision,
    });
  }

  /** Sends a request-like operation (its `id` is assigned here) and waits for its `res`. */
  private call(body: Extract<ChildToParentBody, { id: number }>, onTimeout?: () => Error, timeoutMs?: number): Promise<unknown> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (onTimeout && timeoutMs !== undefined) {
        timer = setTimeout(() => {
          if (this.pending.delete(id)) reject(onTimeout());
        }, timeoutMs + this.timeoutSlackMs);
      }
      const done = () => clearTimeout(timer);
      this.pending.set(id, {
        resolve: (v) => {
          done();
          resolve(v);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      this.send({ ...body, id });
    });
  }

  private send(body: ChildToParentBody): void {
    if (this.ipc.connected === false) return;
    try {
      this.ipc.send?.({ sfbus: 1, ...body }, (err) => {
        if (err) this.log.debug({ err }, 'send to parent failed');
      });
    } catch (err) {
      this.log.debug({ err }, 'send to parent failed');
    }
  }

  private readonly onMessage = (raw: unknown): void => {
    if (!isBusEnvelope(raw)) return;
    const parsed = ParentToChildSchema.safeParse(raw);
    if (!parsed.success) {
      this.log.warn({ issues: parsed.error.issues }, 'malformed bus message from parent dropped');
      return;
    }
    try {
      this.handle(parsed.data);
    } catch (err) {
      this.log.warn({ err }, 'bus message from parent failed');
    }
  };

  private handle(m: ParentToChild): void {
    switch (m.op) {
      case 'msg': {
        const sub = this.subs.get(m.sid);
        sub?.deliver(makeMsg(m.subject, fromB64(m.data), m.reply, (to, bytes) => this.publish(to, bytes)));
        return;
      }
      case 'subend': {
        const sub = this.subs.get(m.sid);
        this.subs.delete(m.sid);
        sub?.unsubscribe();
        return;
      }
      case 'res': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.result ?? null);
        else p.reject(errorFromWire(m.error ?? { code: 'BUS_INTERNAL', message: 'request failed without an error' }));
        return;
      }
      case 'wev':
        this.watches.get(m.wid)?.push(makeKvChange(m.key, fromB64(m.value), m.revision, m.operation));
        return;
      case 'wend': {
        const q = this.watches.get(m.wid);
        this.watches.delete(m.wid);
        q?.end();
        return;
      }
    }
  }

  private readonly onDisconnect = (): void => {
    this.statusHub.emit({ type: 'disconnect' });
    this.shutdown();
  };

  private shutdown(): void {
    if (this.done) return;
    // Unsubscribe while still open so the parent drops our subscriptions now, not at exit.
    for (const s of [...this.subs.values()]) s.unsubscribe();
    for (const [wid, q] of this.watches) {
      this.send({ op: 'unwatch', wid });
      q.end();
    }
    this.done = true;
    this.watches.clear();
    for (const p of this.pending.values()) p.reject(new BusClosedError());
    this.pending.clear();
    // Removing our listeners lets the IPC channel stop holding the child's event loop open.
    this.ipc.off('message', this.onMessage);
    this.ipc.off('disconnect', this.onDisconnect);
    this.statusHub.end();
    this.resolveClosed();
  }

  private checkOpen(): void {
    if (this.done) throw new BusClosedError();
  }
}

/**
 * In a process forked with an IPC channel: a Bus served by the parent's `bridgeChild`.
 * Throws BusBridgeUnavailableError when the process has no IPC channel.
 */
export function connectParentBus(opts: ConnectParentBusOptions = {}): Bus {
  const ipc = opts.ipc ?? (process as unknown as IpcEndpoint);
  if (typeof ipc.send !== 'function' || ipc.connected === false) throw new BusBridgeUnavailableError();
  return new ChildBus(ipc, opts);
}
