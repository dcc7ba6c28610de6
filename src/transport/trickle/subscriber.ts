// The trickle subscriber: an async iterable of segments, each with a streaming body. After segment
// N's headers arrive, the GET for N+1 is opened at once so it is parked at the server before N ends.
// 470 jumps to the live edge; 404 or `Lp-Trickle-Closed` end the iteration; transient errors are
// retried with bounded backoff, then the iteration throws RetriesExhaustedError.
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { defaultConfig, type TrickleConfig } from '../../config.ts';
import { rootLogger, type Logger } from '../../log.ts';
import {
  HeaderTimeoutError,
  RetriesExhaustedError,
  SegmentTruncatedError,
  TrickleClosedError,
  TrickleHttpError,
  isTransientNetworkError,
} from './errors.ts';
import { backoffMs, exchange, headerInt, pause, readText, transportFor, type ClientTransport, type Exchange } from './http-client.ts';
import { H_CLOSED, H_LATEST, H_SEQ, SEQ_CURRENT, SEQ_NEXT, STATUS_ENTRY_NOT_FOUND, joinUrl } from './protocol.ts';

export interface TrickleSubscriberOptions {
  /** Where to begin: 'next' (-1, the next segment the publisher starts), 'current' (-2), or a seq. */
  start?: 'next' | 'current' | number;
  config?: TrickleConfig;
  signal?: AbortSignal;
  logger?: Logger;
  /** Keep retrying a 404 for up to this many ms before the first segment (the channel may not
   *  exist yet: gateways start publishing after the stream start call). */
  waitForChannel?: number;
  /** Open the GET for N+1 when N's headers arrive (default true). */
  preconnect?: boolean;
}

export type SubscriberEndReason = 'closed' | 'not_found' | 'aborted' | 'error';

export interface TrickleSegment {
  /** The seq actually served (resolves -1 / -2). */
  readonly seq: number;
  readonly contentType: string;
  /** The live edge when the server answered, if it said. */
  readonly latest: number | null;
  /** The bytes as they arrive. A body cut off mid-way throws SegmentTruncatedError. Read it before
   *  asking for the next segment: moving on drops an unread body. */
  readonly body: AsyncIterable<Uint8Array>;
  /** Collects the whole body. */
  bytes(): Promise<Buffer>;
}

export interface TrickleSubscriberStats {
  segments: number;
  bytes: number;
  jumps: number;
  retries: number;
  headerTimeouts: number;
  truncated: number;
  preconnects: number;
  notFoundWaits: number;
}

export interface TrickleSubscriberEvents {
  segment: [{ seq: number; contentType: string }];
  jump: [{ from: number; to: number }];
  retry: [{ seq: number; attempt: number; error: Error }];
  truncated: [SegmentTruncatedError];
  /** The channel answered 404 and waitForChannel allows another try. */
  'waiting-for-channel': [{ attempt: number }];
  /** A GET got no headers within headerTimeoutMs and is re-issued. */
  'header-timeout': [{ seq: number }];
  end: [{ reason: SubscriberEndReason; error?: Error }];
}

interface GetAttempt extends Exchange {
  seq: number;
}

function startSeq(s: TrickleSubscriberOptions['start']): number {
  if (s === undefined || s === 'next') return SEQ_NEXT;
  if (s === 'current') return SEQ_CURRENT;
  return s;
}

class SegmentBody implements AsyncIterable<Uint8Array> {
  private used = false;
  finished = false;

  constructor(
    private readonly res: IncomingMessage,
    private readonly seq: number,
    private readonly sub: TrickleSubscriber,
  ) {}

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.used) throw new TrickleClosedError(`segment ${this.seq} body was already read`);
    this.used = true;
    let n = 0;
    try {
      for await (const chunk of this.res as AsyncIterable<Buffer>) {
        n += chunk.length;
        this.sub.stats.bytes += chunk.length;
        yield chunk;
      }
      if (!this.res.complete) throw new Error('response ended before its final chunk');
    } catch (cause) {
      const err = new SegmentTruncatedError(this.seq, n, cause);
      this.sub.stats.truncated++;
      this.sub.emit('truncated', err);
      throw err;
    } finally {
      this.finished = true;
      if (!this.res.complete) this.res.destroy();
    }
  }

  dispose(): void {
    if (!this.finished) this.res.destroy();
  }
}

export class TrickleSubscriber extends EventEmitter<TrickleSubscriberEvents> implements AsyncIterable<TrickleSegment> {
  readonly url: string;
  readonly stats: TrickleSubscriberStats = {
    segments: 0,
    bytes: 0,
    jumps: 0,
    retries: 0,
    headerTimeouts: 0,
    truncated: 0,
    preconnects: 0,
    notFoundWaits: 0,
  };
  /** Why iteration ended (null while it runs). */
  endReason: SubscriberEndReason | null = null;
  private readonly cfg: TrickleConfig;
  private readonly log: Logger;
  private readonly transport: ClientTransport;
  private readonly ac = new AbortController();
  private readonly opts: TrickleSubscriberOptions;
  private iterating = false;
  private closed = false;
  private pending: GetAttempt | null = null;
  private current: SegmentBody | null = null;

  constructor(url: string, opts: TrickleSubscriberOptions = {}) {
    super();
    this.url = url.replace(/\/+$/, '');
    this.opts = opts;
    this.cfg = opts.config ?? defaultConfig.trickle;
    this.log = (opts.logger ?? rootLogger).child({ module: 'trickle-subscriber', url: this.url });
    this.transport = transportFor(this.url);
    if (opts.signal) {
      if (opts.signal.aborted) this.close();
      else opts.signal.addEventListener('abort', () => this.close(), { once: true });
    }
  }

  /** Stops: in-flight requests are cut and iteration ends with endReason 'aborted'. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ac.abort();
    this.pending?.req.destroy();
    this.pending = null;
    this.current?.dispose();
    this.transport.agent.destroy();
  }

  [Symbol.asyncIterator](): AsyncIterator<TrickleSegment> {
    if (this.iterating) throw new TrickleClosedError('a TrickleSubscriber can be iterated once');
    this.iterating = true;
    return this.run();
  }

  private open(seq: number): GetAttempt {
    const ex = exchange(this.transport, joinUrl(this.url, seq), 'GET', {}, this.ac.signal, this.cfg.headerTimeoutMs, true);
    ex.req.end();
    return { ...ex, seq };
  }

  private finish(reason: SubscriberEndReason, error?: Error): void {
    if (this.endReason) return;
    this.endReason = reason;
    this.emit('end', error ? { reason, error } : { reason });
    // Only the iteration owns these sockets; once it ends nothing else will use them.
    this.pending?.req.destroy();
    this.pending = null;
    this.transport.agent.destroy();
  }

  private async *run(): AsyncGenerator<TrickleSegment> {
    let seq = startSeq(this.opts.start);
    let failures = 0;
    let lastJumpTo: number | null = null;
    const notFoundDeadline = this.opts.waitForChannel ? Date.now() + this.opts.waitForChannel : 0;
    try {
      while (!this.closed) {
        const att = this.pending && this.pending.seq === seq ? this.pending : this.open(seq);
        if (this.pending && this.pending !== att) this.pending.req.destroy();
        this.pending = null;
        const o = await att.outcome;
        if (this.closed) break;

        let transient: Error | null = null;
        if ('error' in o) {
          if (o.error instanceof HeaderTimeoutError) {
            // A parked GET with no headers yet: ask again (the Go client does the same).
            this.stats.headerTimeouts++;
            this.emit('header-timeout', { seq });
            continue;
          }
          if (!isTransientNetworkError(o.error)) throw o.error;
          transient = o.error;
        } else {
          const res = o.res;
          const status = res.statusCode ?? 0;
          // Any Lp-Trickle-Closed value on any answer means the channel ended (go-livepeer's
          // clients check only that the header is present).
          if (res.headers[H_CLOSED] !== undefined && res.headers[H_CLOSED] !== '') {
            await readText(res);
            return this.finish('closed');
          }
          if (status === 404) {
            await readText(res);
            // Waiting is for a channel that does not exist yet; one that vanished mid-stream is gone.
            if (notFoundDeadline && this.stats.segments === 0 && Date.now() < notFoundDeadline) {
              this.stats.notFoundWaits++;
              this.emit('waiting-for-channel', { attempt: this.stats.notFoundWaits });
              if (!(await pause(this.cfg.channelPollMs, this.ac.signal))) break;
              continue;
            }
            return this.finish('not_found');
          }
          if (status === STATUS_ENTRY_NOT_FOUND) {
            await readText(res);
            const latest = headerInt(res, H_LATEST);
            const to = latest ?? SEQ_NEXT;
            this.stats.jumps++;
            this.emit('jump', { from: seq, to });
            this.log.debug({ from: seq, to }, 'trickle subscriber jumps to the live edge');
            // The same jump twice in a row means the edge has not moved: wait rather than spin.
            if (lastJumpTo === to && !(await pause(this.cfg.retryBaseMs, this.ac.signal))) break;
            lastJumpTo = to;
            seq = to;
            failures = 0;
            continue;
          }
          if (status >= 500) transient = new TrickleHttpError(status, await readText(res), joinUrl(this.url, seq));
          else if (status !== 200) throw new TrickleHttpError(status, await readText(res), joinUrl(this.url, seq));
          else {
            failures = 0;
            lastJumpTo = null;
            const served = headerInt(res, H_SEQ) ?? seq;
            seq = served + 1;
            if (this.opts.preconnect ?? true) {
              this.pending = this.open(seq);
              this.stats.preconnects++;
            }
            const body = new SegmentBody(res, served, this);
            this.current = body;
            const contentType = String(res.headers['content-type'] ?? '');
            this.stats.segments++;
            this.emit('segment', { seq: served, contentType });
            yield {
              seq: served,
              contentType,
              latest: headerInt(res, H_LATEST),
              body,
              bytes: async () => {
                const parts: Buffer[] = [];
                for await (const c of body) parts.push(Buffer.from(c));
                return Buffer.concat(parts);
              },
            };
            body.dispose();
            this.current = null;
            continue;
          }
        }
        // transient failure: bounded retries with backoff
        failures++;
        if (failures > this.cfg.maxRetries) throw new RetriesExhaustedError(this.url, failures, transient);
        this.stats.retries++;
        this.emit('retry', { seq, attempt: failures, error: transient });
        this.log.debug({ seq, attempt: failures, err: transient }, 'trickle GET retry');
        if (!(await pause(backoffMs(this.cfg, failures), this.ac.signal))) break;
      }
      this.finish('aborted');
    } catch (err) {
      if (this.closed) {
        this.finish('aborted');
        return;
      }
      const e = err instanceof Error ? err : new Error(String(err));
      this.finish('error', e);
      throw e;
    } finally {
      // A consumer that stops early (break / return) ends the subscription.
      if (!this.endReason) this.finish('aborted');
      this.current?.dispose();
    }
  }
}
