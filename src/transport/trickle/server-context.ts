// What the trickle server's handlers share: config, counters, events, logger, and the two small
// HTTP helpers. Kept apart so each handler file has one job.
import type { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { TrickleConfig } from '../../config.ts';
import type { Logger } from '../../log.ts';

/** Counters for metrics and tests; monotonic unless named active*. */
export interface TrickleServerStats {
  requests: number;
  channelsCreated: number;
  channelsClosed: number;
  channelsSwept: number;
  posts: number;
  gets: number;
  segmentsCompleted: number;
  segmentsAborted: number;
  bytesIn: number;
  bytesOut: number;
  entryNotFound: number;
  keepAlives: number;
  badRequests: number;
  rejectedTooLarge: number;
  rejectedCapacity: number;
  clientErrors: number;
  handlerErrors: number;
  /** Connections closed for sending no request, or headers too slowly, or idling too long. */
  connectionsTimedOut: number;
  /** Requests refused because their client address holds maxConnectionsPerClient connections. */
  rejectedConnections: number;
  /** Requests refused for a missing or wrong bearer token (trickle.requireAuth). */
  unauthorized: number;
  activePosts: number;
  activeGets: number;
}

export interface TrickleServerEvents {
  'channel-created': [{ channel: string }];
  'channel-closed': [{ channel: string; reason: 'deleted' | 'idle' | 'shutdown' }];
  /** A POST for a segment has arrived (its body may not have started: a preconnect). */
  'post-open': [{ channel: string; seq: number }];
  /** The first byte of a segment arrived. */
  'segment-start': [{ channel: string; seq: number }];
  'segment-end': [{ channel: string; seq: number; bytes: number; aborted: boolean }];
  /** A GET has been mapped to a segment (it may park until data arrives). */
  'get-open': [{ channel: string; seq: number }];
  'keep-alive': [{ channel: string; seq: number }];
}

export interface ServerContext {
  cfg: TrickleConfig;
  stats: TrickleServerStats;
  events: EventEmitter<TrickleServerEvents>;
  log: Logger;
}

export function newStats(): TrickleServerStats {
  return {
    requests: 0,
    channelsCreated: 0,
    channelsClosed: 0,
    channelsSwept: 0,
    posts: 0,
    gets: 0,
    segmentsCompleted: 0,
    segmentsAborted: 0,
    bytesIn: 0,
    bytesOut: 0,
    entryNotFound: 0,
    keepAlives: 0,
    badRequests: 0,
    rejectedTooLarge: 0,
    rejectedCapacity: 0,
    clientErrors: 0,
    handlerErrors: 0,
    connectionsTimedOut: 0,
    rejectedConnections: 0,
    unauthorized: 0,
    activePosts: 0,
    activeGets: 0,
  };
}

/** Plain-text error answer in the shape go-livepeer's http.Error gives. */
export function plain(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', ...headers });
  res.end(body ? `${body}\n` : '');
}

/** The answers the trickle server adds to go-livepeer's (its protocol errors stay plain text, which
 *  gateways expect): JSON in the shape of the HTTP API's errors (src/errors.ts). */
export const JSON_ERRORS = {
  UNAUTHORIZED: { status: 401, error: 'Unauthorized' },
  REQUEST_TIMEOUT: { status: 408, error: 'Request Timeout' },
  TOO_MANY_CONNECTIONS: { status: 429, error: 'Too Many Requests' },
  HEADERS_TOO_LARGE: { status: 431, error: 'Request Header Fields Too Large' },
  BAD_REQUEST: { status: 400, error: 'Bad Request' },
} as const;
export type JsonErrorCode = keyof typeof JSON_ERRORS;

export function jsonErrorBody(code: JsonErrorCode, message: string): string {
  return JSON.stringify({ error: JSON_ERRORS[code].error, message, code });
}

/** Answers a request with one of JSON_ERRORS. */
export function jsonError(res: ServerResponse, code: JsonErrorCode, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = jsonErrorBody(code, message);
  res.writeHead(JSON_ERRORS[code].status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    ...headers,
  });
  res.end(body);
}

/** Waits until `res` can take more bytes, or is gone. */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
