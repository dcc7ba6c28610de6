// The one bus interface of streamfleet, shaped like nats.js v3 so that the embedded bus, the bridge
// to a forked child and NATS itself are interchangeable (style #3). Payloads are bytes; anything
// else is JSON-encoded on the way in (strings included, so `json()` always round-trips) and read
// back with `json()` / `string()`.
import { CodedError, type CodeOf } from '../errors.ts';

/** What `publish`, `request`, `respond` and KV writes accept: raw bytes, or any JSON-able value. */
export type Payload = Uint8Array | unknown;

export interface BusMsg {
  readonly subject: string;
  readonly data: Uint8Array;
  /** Reply subject when the sender used `request`; absent on a plain publish. */
  readonly reply?: string;
  /** Parses `data` as UTF-8 JSON; throws BusDecodeError on bad JSON. */
  json<T = unknown>(): T;
  string(): string;
  /** Publishes `data` to `reply`; false (and nothing sent) when the message has no reply subject. */
  respond(data?: Payload): boolean;
}

export interface SubscribeOptions {
  /** Queue group: each message goes to exactly one member of the group. Default: none (everyone gets it). */
  queue?: string;
}

/**
 * An async iterator of the messages of one subject (pattern). Breaking out of `for await`
 * unsubscribes. After `unsubscribe()` or `drain()` the messages already received are still yielded,
 * then the iteration ends.
 */
export interface BusSubscription extends AsyncIterable<BusMsg> {
  readonly subject: string;
  readonly queue?: string;
  /** Stops delivery now. Idempotent. */
  unsubscribe(): void;
  /** Stops delivery after messages already in flight to this subscriber have arrived. */
  drain(): Promise<void>;
  /** Resolves once the subscription no longer receives messages (unsubscribe, drain, bus close). */
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

export interface RequestOptions {
  /** How long to wait for the first reply. Default: `bus.requestTimeoutMs` of the config. */
  timeoutMs?: number;
}

/** Connection status events, a `{ type }` union as in nats.js. */
export type BusStatus =
  | { type: 'disconnect'; server?: string }
  | { type: 'reconnecting' }
  | { type: 'reconnect'; server?: string }
  | { type: 'error'; error: Error }
  | { type: 'slowConsumer'; subject: string; dropped: number }
  | { type: 'close' };

/**
 * Whether the bus can carry messages now: 'down' while the connection to the server is lost (NATS
 * reconnecting) and once the bus is closed. The embedded bus is 'up' until it closes.
 */
export type BusConnection = 'up' | 'down';

export type KvOperation = 'PUT' | 'DEL';

export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** Bucket-wide sequence of the write that produced this value (fences compare-and-set). */
  readonly revision: number;
  json<T = unknown>(): T;
  string(): string;
}

export interface KvChange extends KvEntry {
  readonly operation: KvOperation;
}

export interface KvWatchOptions {
  /** Key or key pattern with `*` (one token) and `>` (the rest). Default: `>` (every key). */
  key?: string;
  /** Deliver the current value of every matching key first, then changes. Default: true (as nats.js). */
  initial?: boolean;
}

/** Changes in the order they were written. Breaking out of `for await` or `stop()` ends the watch. */
export interface KvWatcher extends AsyncIterable<KvChange> {
  stop(): void;
}

export interface KeyValue {
  readonly bucket: string;
  /** The current value, or null when the key was never written or was deleted. */
  get(key: string): Promise<KvEntry | null>;
  /** Writes unconditionally; resolves to the new revision. */
  put(key: string, value: Payload): Promise<number>;
  /** Writes only if the key has no value (never written, or deleted); else KvRevisionMismatchError. */
  create(key: string, value: Payload): Promise<number>;
  /** Compare-and-set: writes only if the key's latest revision is `expectedRevision`; else KvRevisionMismatchError. */
  update(key: string, value: Payload, expectedRevision: number): Promise<number>;
  /** Deletes the key (a tombstone; `create` works on it again). */
  delete(key: string): Promise<void>;
  /** Keys holding a value, optionally filtered by a pattern with wildcards; sorted. */
  keys(filter?: string): Promise<string[]>;
  watch(opts?: KvWatchOptions): Promise<KvWatcher>;
}

export interface Bus {
  /** 'local', 'bridge' or 'nats': which implementation this is (for logs and status pages). */
  readonly kind: 'local' | 'bridge' | 'nats';
  publish(subject: string, data?: Payload): void;
  subscribe(subject: string, opts?: SubscribeOptions): BusSubscription;
  /** First reply to `subject`; BusTimeoutError after `timeoutMs`, BusNoRespondersError when nobody listens. */
  request(subject: string, data?: Payload, opts?: RequestOptions): Promise<BusMsg>;
  kv(bucket: string): Promise<KeyValue>;
  /** Resolves once everything sent so far (subscriptions included) reached the server. */
  flush(): Promise<void>;
  /** A new iterator of status events from now on; ends when the bus closes. `connection()` changes
   *  only with a `disconnect`, `reconnect` or `close` event, so a reader re-reads it after each. */
  status(): AsyncIterable<BusStatus>;
  /** The connection as of now (see BusConnection). */
  connection(): BusConnection;
  close(): Promise<void>;
  /** Resolves when the bus is closed, by `close()` or because its connection ended. */
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

// ---------------------------------------------------------------------------------------------
// Errors: one typed class per failure, each with a stable `code` (never match on message text).

/** The codes (src/errors.ts registry, layer bus). */
export type BusErrorCode = CodeOf<'bus'>;

export class BusError extends CodedError<BusErrorCode> {}

/** The base of a bus error that carries nothing but its code and a message (`fallback` when none is given). */
function messageOnly(code: BusErrorCode, fallback: string = code) {
  return class extends BusError {
    constructor(message = fallback, options?: ErrorOptions) {
      super(code, message, options);
    }
  };
}

export class BusTimeoutError extends BusError {
  constructor(readonly subject: string, readonly timeoutMs: number, options?: ErrorOptions) {
    super('BUS_TIMEOUT', `no reply on ${subject} within ${timeoutMs} ms`, options);
  }
}

export class BusNoRespondersError extends BusError {
  constructor(readonly subject: string, options?: ErrorOptions) {
    super('BUS_NO_RESPONDERS', `no responders on ${subject}`, options);
  }
}

export class BusClosedError extends messageOnly('BUS_CLOSED', 'bus is closed') {}

export class BusInvalidSubjectError extends BusError {
  constructor(readonly subject: string, reason: string) {
    super('BUS_INVALID_SUBJECT', `invalid subject ${JSON.stringify(subject)}: ${reason}`);
  }
}

export class BusDecodeError extends messageOnly('BUS_DECODE') {}

export class BusBridgeUnavailableError extends messageOnly('BUS_BRIDGE_UNAVAILABLE', 'this process has no IPC channel to a parent bus (not forked?)') {}

/** The bus server could not be reached (bad URL, refused, timed out). */
export class BusConnectError extends BusError {
  constructor(readonly url: string, options?: ErrorOptions) {
    super('BUS_CONNECT', `cannot connect to ${url}`, options);
  }
}

/** The connection to the bus server is lost for now (NATS reconnecting): refused at once, not timed out. */
export class BusDisconnectedError extends messageOnly('BUS_DISCONNECTED', 'the bus is disconnected (reconnecting)') {}

export class KvRevisionMismatchError extends BusError {
  constructor(readonly bucket: string, readonly key: string, readonly expectedRevision: number, options?: ErrorOptions) {
    super('KV_REVISION_MISMATCH', `${bucket}/${key}: latest revision is not ${expectedRevision}`, options);
  }
}

export class KvInvalidKeyError extends BusError {
  constructor(readonly key: string) {
    super('KV_INVALID_KEY', `invalid KV key ${JSON.stringify(key)}`);
  }
}

export class KvInvalidBucketError extends BusError {
  constructor(readonly bucket: string) {
    super('KV_INVALID_BUCKET', `invalid KV bucket name ${JSON.stringify(bucket)}`);
  }
}

/** A failure of the other side we have no better type for (e.g. an unexpected server error). */
export class BusInternalError extends BusError {
  constructor(message: string, options?: ErrorOptions) {
    super('BUS_INTERNAL', message, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Payload helpers shared by every implementation.

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);

/** Bytes pass through; `undefined` is empty; anything else is JSON. */
export function encodePayload(data: Payload): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data === undefined) return EMPTY;
  const text = JSON.stringify(data);
  // JSON.stringify answers undefined for functions and symbols: not JSON-able.
  if (text === undefined) throw new BusDecodeError(`payload of type ${typeof data} is not JSON-able`);
  return encoder.encode(text);
}

export function decodeString(data: Uint8Array): string {
  return decoder.decode(data);
}

export function decodeJson<T>(data: Uint8Array): T {
  try {
    return JSON.parse(decoder.decode(data)) as T;
  } catch (err) {
    throw new BusDecodeError('payload is not valid JSON', { cause: err });
  }
}

/** Builds a BusMsg; `respond` is supplied by the implementation that delivered it. */
export function makeMsg(subject: string, data: Uint8Array, reply: string | undefined, respond: (reply: string, data: Uint8Array) => void): BusMsg {
  // nats.js reports "no reply" as an empty string; we use undefined everywhere.
  reply = reply || undefined;
  return {
    subject,
    data,
    reply,
    json: <T>() => decodeJson<T>(data),
    string: () => decodeString(data),
    respond(payload?: Payload) {
      if (!reply) return false;
      respond(reply, encodePayload(payload));
      return true;
    },
  };
}

export function makeKvChange(key: string, value: Uint8Array, revision: number, operation: KvOperation): KvChange {
  return {
    key,
    value,
    revision,
    operation,
    json: <T>() => decodeJson<T>(value),
    string: () => decodeString(value),
  };
}

export function makeKvEntry(key: string, value: Uint8Array, revision: number): KvEntry {
  const { operation: _op, ...entry } = makeKvChange(key, value, revision, 'PUT');
  return entry;
}
