// An in-memory KV bucket with NATS semantics: a bucket-wide revision sequence, deletes as
// tombstones (so `create` works again and CAS can fence them), compare-and-set, ordered watch.
import { encodePayload, KvRevisionMismatchError, makeKvChange, makeKvEntry } from '../bus.ts';
import type { KeyValue, KvChange, KvEntry, KvOperation, KvWatcher, KvWatchOptions, Payload } from '../bus.ts';
import { checkKey, checkKeyFilter } from '../kv-rules.ts';
import { tokensMatch } from '../match.ts';
import { AsyncQueue } from '../queue.ts';

interface Record {
  value: Uint8Array;
  revision: number;
  operation: KvOperation;
}

interface Watch {
  tokens: string[];
  queue: AsyncQueue<KvChange>;
}

export interface LocalKvOptions {
  maxPending: number;
  onDrop: (subject: string, dropped: number) => void;
}

export class LocalKv implements KeyValue {
  private revision = 0;
  private readonly records = new Map<string, Record>();
  private readonly watches = new Set<Watch>();

  constructor(
    readonly bucket: string,
    private readonly opts: LocalKvOptions,
  ) {}

  async get(key: string): Promise<KvEntry | null> {
    const r = this.records.get(checkKey(key));
    if (!r || r.operation !== 'PUT') return null;
    return makeKvEntry(key, r.value, r.revision);
  }

  async put(key: string, value: Payload): Promise<number> {
    return this.write(checkKey(key), encodePayload(value), 'PUT');
  }

  async create(key: string, value: Payload): Promise<number> {
    const r = this.records.get(checkKey(key));
    if (r && r.operation === 'PUT') throw new KvRevisionMismatchError(this.bucket, key, 0);
    return this.write(key, encodePayload(value), 'PUT');
  }

  async update(key: string, value: Payload, expectedRevision: number): Promise<number> {
    if (expectedRevision <= 0) return this.create(key, value);
    const latest = this.records.get(checkKey(key))?.revision ?? 0;
    if (latest !== expectedRevision) throw new KvRevisionMismatchError(this.bucket, key, expectedRevision);
    return this.write(key, encodePayload(value), 'PUT');
  }

  async delete(key: string): Promise<void> {
    this.write(checkKey(key), new Uint8Array(0), 'DEL');
  }

  async keys(filter = '>'): Promise<string[]> {
    const tokens = checkKeyFilter(filter).split('.');
    const out: string[] = [];
    for (const [k, r] of this.records) if (r.operation === 'PUT' && tokensMatch(tokens, k.split('.'))) out.push(k);
    return out.sort();
  }

  async watch(opts: KvWatchOptions = {}): Promise<KvWatcher> {
    const pattern = checkKeyFilter(opts.key ?? '>');
    const tokens = pattern.split('.');
    const w: Watch = {
      tokens,
      queue: new AsyncQueue<KvChange>({
        maxPending: this.opts.maxPending,
        onDrop: (n) => this.opts.onDrop(`$KV.${this.bucket}.${pattern}`, n),
        onReturn: () => this.watches.delete(w),
      }),
    };
    if (opts.initial ?? true) {
      const current = [...this.records].filter(([k, r]) => r.operation === 'PUT' && tokensMatch(tokens, k.split('.')));
      current.sort((a, b) => a[1].revision - b[1].revision);
      for (const [k, r] of current) w.queue.push(makeKvChange(k, r.value, r.revision, 'PUT'));
    }
    this.watches.add(w);
    const iterable = w.queue;
    return {
      stop: () => {
        this.watches.delete(w);
        w.queue.end();
      },
      [Symbol.asyncIterator]: () => iterable[Symbol.asyncIterator](),
    };
  }

  /** Ends every watch (the bus is closing). */
  close(): void {
    for (const w of this.watches) w.queue.end();
    this.watches.clear();
  }

  private write(key: string, value: Uint8Array, operation: KvOperation): number {
    // Copy: the caller may reuse its buffer, as it may with NATS (which copies onto the socket).
    const stored = value.slice();
    const revision = ++this.revision;
    this.records.set(key, { value: stored, revision, operation });
    const keyTokens = key.split('.');
    for (const w of this.watches) {
      if (tokensMatch(w.tokens, keyTokens)) w.queue.push(makeKvChange(key, stored, revision, operation));
    }
    return revision;
  }
}
