// The trickle publisher: one POST per segment, body streamed while it is produced. Preconnect: when
// segment N starts, the POST for N+1 is opened at once with no body yet, so the next segment has no
// connection set-up on its critical path. Transient failures are retried with bounded backoff by
// replaying what was written (a segment is at most maxSegmentBytes).
import { EventEmitter } from 'node:events';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { defaultConfig, type TrickleConfig } from '../../config.ts';
import { rootLogger, type Logger } from '../../log.ts';
import {
  EndOfStreamError,
  RetriesExhaustedError,
  SegmentTooLargeError,
  ChannelNotFoundError,
  TrickleAbortedError,
  TrickleClosedError,
  TrickleError,
  TrickleHttpError,
  isTransientNetworkError,
} from './errors.ts';
import { backoffMs, exchange, pause, readText, simpleRequest, transportFor, type ClientTransport, type Exchange } from './http-client.ts';
import { H_CLOSED, H_RESET, H_SEQ, joinUrl } from './protocol.ts';

export interface TricklePublisherOptions {
  config?: TrickleConfig;
  /** Content-Type of every segment (default video/MP2T). */
  contentType?: string;
  signal?: AbortSignal;
  logger?: Logger;
  /** First seq written (default 0). */
  start?: number;
  /** Send Lp-Trickle-Reset on the first segment: this publisher restarts a channel that had another. */
  reset?: boolean;
  /** Open the POST for N+1 when N starts (default true). */
  preconnect?: boolean;
  /** close() deletes the channel (default true); false leaves it for another publisher. */
  deleteChannel?: boolean;
}

export interface SegmentWriter {
  readonly seq: number;
  /** Sends a chunk now; resolves when the socket took it (back-pressure). The chunk is kept, not
   *  copied, until the segment ends (a retry replays it): do not modify it after writing. */
  write(chunk: Uint8Array): Promise<void>;
  /** Ends the body and resolves once the server answered 200. */
  end(): Promise<void>;
  /** Gives the segment up: a started body is cut (readers see it truncated); an empty one is sent
   *  as an empty segment so readers move on. */
  abort(err?: unknown): void;
}

export interface TricklePublisherStats {
  segments: number;
  bytes: number;
  retries: number;
  errors: number;
  preconnects: number;
  aborted: number;
}

export interface TricklePublisherEvents {
  segment: [{ seq: number; bytes: number; ms: number }];
  error: [Error];
  retry: [{ seq: number; attempt: number; error: Error }];
}

/** One POST attempt for one seq. */
interface Attempt extends Exchange {
  seq: number;
  startHeaderTimer(): void;
  /** Response headers arrived (possibly early: the server cut the segment). */
  early: IncomingMessage | null;
  failed: Error | null;
}

export class TricklePublisher extends EventEmitter<TricklePublisherEvents> {
  readonly url: string;
  readonly stats: TricklePublisherStats = { segments: 0, bytes: 0, retries: 0, errors: 0, preconnects: 0, aborted: 0 };
  private readonly cfg: TrickleConfig;
  private readonly contentType: string;
  private readonly log: Logger;
  private readonly transport: ClientTransport;
  private readonly ac = new AbortController();
  private readonly preconnectOn: boolean;
  private seq: number;
  private resetPending: boolean;
  private pre: Attempt | null = null;
  private closed = false;
  private readonly deleteChannel: boolean;

  constructor(url: string, opts: TricklePublisherOptions = {}) {
    super();
    this.url = url.replace(/\/+$/, '');
    this.cfg = opts.config ?? defaultConfig.trickle;
    this.contentType = opts.contentType ?? 'video/MP2T';
    this.log = (opts.logger ?? rootLogger).child({ module: 'trickle-publisher', url: this.url });
    this.transport = transportFor(this.url);
    this.seq = opts.start ?? 0;
    this.resetPending = opts.reset ?? false;
    this.preconnectOn = opts.preconnect ?? true;
    this.deleteChannel = opts.deleteChannel ?? true;
    // An 'error' event with no listener would throw; failures also reject the call that hit them.
    this.on('error', () => {});
    if (opts.signal) {
      if (opts.signal.aborted) void this.close();
      else opts.signal.addEventListener('abort', () => void this.close(), { once: true });
    }
  }

  /** The seq the next segment will get. */
  get nextSeq(): number {
    return this.seq;
  }

  /** Starts the next segment; its body streams as you write. */
  next(): SegmentWriter {
    if (this.closed) throw new TrickleClosedError('trickle publisher is closed');
    const seq = this.seq++;
    let first: Attempt;
    if (this.pre && this.pre.seq === seq && !this.pre.failed && !this.pre.early) first = this.pre;
    else {
      if (this.pre) this.pre.req.destroy();
      first = this.open(seq);
    }
    this.pre = null;
    if (this.preconnectOn) {
      this.pre = this.open(seq + 1);
      this.stats.preconnects++;
    }
    return new Writer(this, seq, first);
  }

  /** Writes one whole segment; resolves with its seq once the server answered. */
  async writeSegment(data: Uint8Array | AsyncIterable<Uint8Array>): Promise<number> {
    const w = this.next();
    try {
      if (data instanceof Uint8Array) await w.write(data);
      else for await (const chunk of data) await w.write(chunk);
      await w.end();
      return w.seq;
    } catch (err) {
      w.abort(err);
      throw err;
    }
  }

  /** Drops the dangling preconnected POST and deletes the channel. The channel DELETE goes first:
   *  it closes every segment, so parked subscribers see `Lp-Trickle-Closed` rather than a 470 for a
   *  seq that will never come. The dangling seq is DELETEd on its own only when the channel stays
   *  (deleteChannel false, or the channel DELETE failed), so its readers are released either way. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pre = this.pre;
    this.pre = null;
    pre?.req.destroy();
    const deleted = this.deleteChannel ? (await this.simple('DELETE', this.url)) === 200 : false;
    if (pre && !deleted) await this.simple('DELETE', joinUrl(this.url, pre.seq));
    this.ac.abort();
    this.transport.agent.destroy();
  }

  /** Stops at once without touching the channel (another publisher owns it now): no DELETE, no
   *  closing marker; the POSTs in flight and the preconnected one are cut. */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    this.pre?.req.destroy();
    this.pre = null;
    this.ac.abort();
    this.transport.agent.destroy();
  }

  // ---- internals used by Writer -----------------------------------------------------------------

  /** @internal */
  open(seq: number): Attempt {
    const headers: Record<string, string> = { 'content-type': this.contentType, 'transfer-encoding': 'chunked' };
    if (this.resetPending) {
      headers[H_RESET] = '1';
      this.resetPending = false;
    }
    const ex = exchange(this.transport, joinUrl(this.url, seq), 'POST', headers, this.ac.signal, this.cfg.headerTimeoutMs, false);
    const a: Attempt = { ...ex, seq, early: null, failed: null };
    void ex.outcome.then((o) => {
      if ('error' in o) a.failed = o.error;
      else a.early = o.res;
    });
    // Send the headers now: the server sees the POST (and parks it) before any body exists.
    ex.req.flushHeaders();
    return a;
  }

  /** @internal */
  reopenWithReset(seq: number, hadReset: boolean): Attempt {
    if (hadReset) this.resetPending = true;
    return this.open(seq);
  }

  /** @internal */
  get config(): TrickleConfig {
    return this.cfg;
  }

  /** @internal */
  get signal(): AbortSignal {
    return this.ac.signal;
  }

  /** @internal */
  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal */
  logger(): Logger {
    return this.log;
  }

  private async simple(method: string, url: string): Promise<number | null> {
    const r = await simpleRequest(url, method, { headerTimeoutMs: this.cfg.headerTimeoutMs, transport: this.transport });
    if ('error' in r) {
      this.log.debug({ err: r.error, method, url }, 'trickle request failed');
      return null;
    }
    return r.status;
  }
}

class Writer implements SegmentWriter {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private state: 'open' | 'ending' | 'done' | 'aborted' = 'open';
  private failures = 0;
  private readonly started = Date.now();
  private readonly sentReset: boolean;

  constructor(
    private readonly pub: TricklePublisher,
    readonly seq: number,
    private attempt: Attempt,
  ) {
    this.sentReset = attempt.req.getHeader(H_RESET) !== undefined;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new TrickleClosedError(`segment ${this.seq} is ${this.state}`);
    if (chunk.length === 0) return;
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.bytes + buf.length > this.pub.config.maxSegmentBytes) {
      const err = new SegmentTooLargeError(this.seq, this.pub.config.maxSegmentBytes);
      this.abort(err);
      throw err;
    }
    this.chunks.push(buf);
    this.bytes += buf.length;
    await this.push(buf);
  }

  /** Sends one chunk on the current attempt; on a transient failure reconnects and replays. */
  private async push(buf: Buffer): Promise<void> {
    for (;;) {
      const a = this.attempt;
      if (a.early || this.pub.isClosed) return; // the server already ended this segment; the rest is moot
      if (!a.failed) {
        const ok = a.req.write(buf);
        if (ok) return;
        await drainOrClose(a.req);
        if (!a.failed) return;
      }
      // the attempt failed: buf is already in this.chunks, so a retry replays it
      await this.retry(a.failed ?? new TrickleError('HTTP_STATUS', 'POST failed'));
      return;
    }
  }

  /** Opens a fresh attempt after backoff and replays every chunk written so far. */
  private async retry(cause: Error): Promise<void> {
    for (;;) {
      if (!isTransientNetworkError(cause)) throw this.fail(cause);
      this.failures++;
      if (this.failures > this.pub.config.maxRetries) throw this.fail(new RetriesExhaustedError(this.pub.url, this.failures, cause));
      this.pub.stats.retries++;
      this.pub.emit('retry', { seq: this.seq, attempt: this.failures, error: cause });
      this.pub.logger().debug({ seq: this.seq, attempt: this.failures, err: cause }, 'trickle POST retry');
      this.attempt.req.destroy();
      if (!(await pause(backoffMs(this.pub.config, this.failures), this.pub.signal))) throw this.fail(new TrickleAbortedError());
      const a = this.pub.reopenWithReset(this.seq, this.sentReset);
      this.attempt = a;
      let broke: Error | null = null;
      for (const c of this.chunks) {
        if (a.failed) break;
        if (!a.req.write(c)) {
          await drainOrClose(a.req);
        }
      }
      broke = a.failed;
      if (!broke) return;
      cause = broke;
    }
  }

  async end(): Promise<void> {
    if (this.state !== 'open') throw new TrickleClosedError(`segment ${this.seq} is ${this.state}`);
    this.state = 'ending';
    for (;;) {
      const a = this.attempt;
      if (!a.failed && !a.early) {
        a.req.end();
        a.startHeaderTimer();
      }
      const o = await a.outcome;
      let err: Error;
      if ('error' in o) err = o.error;
      else {
        const res = o.res;
        const status = res.statusCode ?? 0;
        const body = await readText(res);
        if (res.headers[H_CLOSED] !== undefined && res.headers[H_CLOSED] !== '') {
          // The channel ended under this segment (DELETE /ch, idle sweep): nothing to retry.
          throw this.fail(new EndOfStreamError(this.pub.url));
        }
        if (status === 200) {
          this.state = 'done';
          this.pub.stats.segments++;
          this.pub.stats.bytes += this.bytes;
          const served = Number(res.headers[H_SEQ] ?? this.seq);
          this.pub.emit('segment', { seq: Number.isFinite(served) ? served : this.seq, bytes: this.bytes, ms: Date.now() - this.started });
          return;
        }
        err = status === 404 ? new ChannelNotFoundError(this.pub.url) : new TrickleHttpError(status, body, joinUrl(this.pub.url, this.seq));
      }
      if (this.pub.isClosed) throw this.fail(new TrickleAbortedError('publisher closed', err));
      await this.retry(err);
    }
  }

  abort(err?: unknown): void {
    if (this.state === 'done' || this.state === 'aborted') return;
    this.state = 'aborted';
    this.pub.stats.aborted++;
    this.pub.logger().debug({ seq: this.seq, err }, 'trickle segment aborted');
    const a = this.attempt;
    if (this.bytes === 0 && !a.failed && !a.early) {
      // Nothing was sent: end it as an empty segment, which moves the server's write head past this
      // seq, rather than leave readers parked on it.
      a.req.end();
      void a.outcome.then((o) => ('res' in o ? readText(o.res) : undefined));
    } else a.req.destroy();
  }

  private fail(err: Error): Error {
    this.state = 'aborted';
    this.attempt.req.destroy();
    this.pub.stats.errors++;
    this.pub.emit('error', err);
    return err;
  }
}

/** Resolves when a request body can take more bytes again, or the request is gone. */
function drainOrClose(req: ClientRequest): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
}
