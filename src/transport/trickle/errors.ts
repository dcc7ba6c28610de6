// Typed trickle errors. Callers branch on `code` (never on message text); HTTP answers from a trickle
// server become one of these at exactly one place in each client.
import type { CodeOf } from '../../errors.ts';

/** The codes (src/errors.ts registry, layer trickle; ABORTED is shared). */
export type TrickleErrorCode = CodeOf<'trickle'> | 'ABORTED';

export class TrickleError extends Error {
  readonly code: TrickleErrorCode;
  constructor(code: TrickleErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TrickleError';
    this.code = code;
  }
}

/** 404 `Stream not found`: the channel does not exist (or is gone). */
export class ChannelNotFoundError extends TrickleError {
  constructor(readonly url: string) {
    super('CHANNEL_NOT_FOUND', `trickle channel not found: ${url}`);
    this.name = 'ChannelNotFoundError';
  }
}

/** 470 `Entry not found`: the seq is too old or too far ahead; `latest` is the live edge. */
export class SequenceNonexistentError extends TrickleError {
  constructor(
    readonly seq: number,
    readonly latest: number,
  ) {
    super('SEQUENCE_NONEXISTENT', `trickle seq ${seq} does not exist (latest ${latest})`);
    this.name = 'SequenceNonexistentError';
  }
}

/** 200 with `Lp-Trickle-Closed`: the channel has ended. */
export class EndOfStreamError extends TrickleError {
  constructor(readonly url: string) {
    super('END_OF_STREAM', `trickle channel ended: ${url}`);
    this.name = 'EndOfStreamError';
  }
}

/** An HTTP answer the client does not expect (5xx counts as transient, 4xx as final). */
export class TrickleHttpError extends TrickleError {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly url: string,
  ) {
    super('HTTP_STATUS', `trickle ${url} answered ${status}: ${body.slice(0, 200)}`);
    this.name = 'TrickleHttpError';
  }
  get transient(): boolean {
    return this.status >= 500;
  }
}

/** No response headers within headerTimeoutMs. */
export class HeaderTimeoutError extends TrickleError {
  constructor(readonly url: string, readonly ms: number) {
    super('HEADER_TIMEOUT', `no response headers from ${url} within ${ms} ms`);
    this.name = 'HeaderTimeoutError';
  }
}

/** More transient errors in a row than maxRetries allows; `cause` is the last one. */
export class RetriesExhaustedError extends TrickleError {
  constructor(readonly url: string, readonly attempts: number, cause: unknown) {
    super('RETRIES_EXHAUSTED', `trickle ${url}: gave up after ${attempts} attempts`, { cause });
    this.name = 'RetriesExhaustedError';
  }
}

/** A segment body that broke off before its end (the publisher died mid-segment, or the link). */
export class SegmentTruncatedError extends TrickleError {
  constructor(readonly seq: number, readonly bytes: number, cause?: unknown) {
    super('SEGMENT_TRUNCATED', `trickle segment ${seq} broke off after ${bytes} bytes`, { cause });
    this.name = 'SegmentTruncatedError';
  }
}

export class SegmentTooLargeError extends TrickleError {
  constructor(readonly seq: number, readonly limit: number) {
    super('SEGMENT_TOO_LARGE', `trickle segment ${seq} exceeds ${limit} bytes`);
    this.name = 'SegmentTooLargeError';
  }
}

export class TrickleAbortedError extends TrickleError {
  constructor(message = 'trickle operation aborted', cause?: unknown) {
    super('ABORTED', message, { cause });
    this.name = 'TrickleAbortedError';
  }
}

export class TrickleClosedError extends TrickleError {
  constructor(message = 'trickle client is closed') {
    super('CLOSED', message);
    this.name = 'TrickleClosedError';
  }
}

/** Connection-level failures worth retrying (refused, reset, timed out, DNS hiccup). */
export function isTransientNetworkError(e: unknown): boolean {
  if (e instanceof TrickleHttpError) return e.transient;
  if (e instanceof HeaderTimeoutError) return true;
  if (e instanceof TrickleError) return false;
  const code = (e as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET'].includes(code)
  );
}
