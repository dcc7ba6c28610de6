// A NATS JetStream KV bucket behind our KeyValue interface. Deleted keys read as absent (nats.js
// returns the tombstone), `update(…, 0)` means "must not exist" as in the embedded KV, and watch
// skips tombstones in the initial snapshot so both buses deliver the same sequence.
import { KvWatchInclude, type KV } from '@nats-io/kv';
import { encodePayload, makeKvChange, makeKvEntry } from '../bus.ts';
import type { BusStatus, KeyValue, KvChange, KvEntry, KvWatcher, KvWatchOptions, Payload } from '../bus.ts';
import { checkKey, checkKeyFilter } from '../kv-rules.ts';
import { AsyncQueue } from '../queue.ts';
import { mapNatsError } from './errors.ts';

export interface NatsKvOptions {
  maxPending: number;
  emit: (s: BusStatus) => void;
}

export class NatsKv implements KeyValue {
  constructor(
    readonly bucket: string,
    private readonly kv: KV,
    private readonly opts: NatsKvOptions,
  ) {}

  async get(key: string): Promise<KvEntry | null> {
    checkKey(key);
    try {
      const e = await this.kv.get(key);
      if (!e || e.operation !== 'PUT') return null;
      return makeKvEntry(e.key, e.value, e.revision);
    } catch (err) {
      throw mapNatsError(err, { bucket: this.bucket, key });
    }
  }

  async put(key: string, value: Payload): Promise<number> {
    checkKey(key);
    try {
      return await this.kv.put(key, encodePayload(value));
    } catch (err) {
      throw mapNatsError(err, { bucket: this.bucket, key });
    }
  }

  async create(key: string, value: Payload): Promise<number> {
    checkKey(key);
    try {
      return await this.kv.create(key, encodePayload(value));
    } catch (err) {
      throw mapNatsError(err, { bucket: this.bucket, key, expectedRevision: 0 });
    }
  }

  async update(key: string, value: Payload, expectedRevision: number): Promise<number> {
    if (expectedRevision <= 0) return this.create(key, value);
    checkKey(key);
    try {
      return await this.kv.update(key, encodePayload(value), expectedRevision);
    } catch (err) {
      throw mapNatsError(err, { bucket: this.bucket, key, expectedRevision });
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    try {
      await this.kv.delete(key);
    } catch (err) {
      throw mapNatsError(err, { bucket: this.bucket, key });
    }
  }

  async keys(filter = '>'): Promise<string[]> {
    checkKeyFilter(filter);
    try {
      // A key written while it is listed can come twice (the listing is a consumer over the stream).
      const out = new Set<string>();
      for await (const k of await this.kv.keys(filter)) out.add(k);
      return [...out].sort();
    } catch (err) {
      throw mapNatsError(err, { bucket: this.bucket });
    }
  }

  async watch(opts: KvWatchOptions = {}): Promise<KvWatcher> {
    const key = checkKeyFilter(opts.key ?? '>');
    const initial = opts.initial ?? true;
    let iter: Awaited<ReturnType<KV['watch']>>;
    // Tombstones written before the watch started belong to the snapshot, not to the changes.
    // (nats.js marks the last snapshot entry as an update, so `isUpdate` cannot tell them apart.)
    let snapshotSeq = 0;
    try {
      if (initial) snapshotSeq = (await this.kv.status()).streamInfo.state.last_seq;
      iter = await this.kv.watch({ key, include: initial ? KvWatchInclude.LastValue : KvWatchInclude.UpdatesOnly });
    } catch (err) {
      throw mapNatsError(err, { bucket: this.bucket, key });
    }
    // Pumped into a bounded queue: the same slow-reader policy as every other subscription.
    const q: AsyncQueue<KvChange> = new AsyncQueue<KvChange>({
      maxPending: this.opts.maxPending,
      onDrop: (dropped) => this.opts.emit({ type: 'slowConsumer', subject: `$KV.${this.bucket}.${key}`, dropped }),
      onReturn: () => iter.stop(),
    });
    void (async () => {
      try {
        for await (const e of iter) {
          if (e.operation !== 'PUT' && e.revision <= snapshotSeq) continue;
          q.push(makeKvChange(e.key, e.value, e.revision, e.operation === 'PUT' ? 'PUT' : 'DEL'));
        }
      } catch (err) {
        this.opts.emit({ type: 'error', error: mapNatsError(err, { bucket: this.bucket, key }) });
      } finally {
        q.end();
      }
    })();
    return {
      stop: () => {
        iter.stop();
        q.end();
      },
      [Symbol.asyncIterator]: () => q[Symbol.asyncIterator](),
    };
  }
}
