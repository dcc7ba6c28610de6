// What both trickle clients share: one keep-alive agent per client, requests whose outcome is a
// settled value (never an unhandled rejection), header timeouts, bounded exponential backoff.
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as sleepMs } from 'node:timers/promises';
import type { TrickleConfig } from '../../config.ts';
import { HeaderTimeoutError } from './errors.ts';

export type Outcome = { res: IncomingMessage } | { error: Error };

export interface Exchange {
  req: ClientRequest;
  /** Settles when response headers arrive or the request fails; never rejects. */
  outcome: Promise<Outcome>;
}

export interface ClientTransport {
  agent: HttpAgent;
  secure: boolean;
}

export function transportFor(url: string): ClientTransport {
  const secure = new URL(url).protocol === 'https:';
  // Every parked GET and preconnected POST holds its own socket; keep-alive reuses the finished ones.
  const agent = secure ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  return { agent, secure };
}

/** Starts a request; the header timer runs from `startHeaderTimer()` (for a POST that is when its
 *  body has ended, for a GET at once). */
export function exchange(
  t: ClientTransport,
  url: string,
  method: string,
  headers: OutgoingHttpHeaders,
  signal: AbortSignal,
  headerTimeoutMs: number,
  timerNow: boolean,
): Exchange & { startHeaderTimer(): void } {
  const make = t.secure ? httpsRequest : httpRequest;
  const req = make(url, { method, headers, agent: t.agent, signal });
  let timer: NodeJS.Timeout | null = null;
  let settled = false;
  let settle!: (o: Outcome) => void;
  const outcome = new Promise<Outcome>((resolve) => {
    settle = (o) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve(o);
    };
  });
  req.on('response', (res) => settle({ res }));
  req.on('error', (error) => settle({ error }));
  const startHeaderTimer = (): void => {
    if (timer || settled) return;
    timer = setTimeout(() => {
      const error = new HeaderTimeoutError(url, headerTimeoutMs);
      settle({ error });
      req.destroy(error);
    }, headerTimeoutMs);
    timer.unref();
  };
  if (timerNow) startHeaderTimer();
  return { req, outcome, startHeaderTimer };
}

/** Reads a (small) response body as text, at most `limit` bytes; never throws. */
export async function readText(res: IncomingMessage, limit = 4096): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res as AsyncIterable<Buffer>) {
      if (n < limit) parts.push(c.subarray(0, limit - n));
      n += c.length;
    }
  } catch {
    // a broken error body still leaves us the status
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped. */
export function backoffMs(cfg: TrickleConfig, attempt: number): number {
  return Math.min(cfg.retryMaxMs, cfg.retryBaseMs * 2 ** Math.max(0, attempt - 1));
}

/** Sleeps, or returns early (false) when `signal` aborts. */
export async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleepMs(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

export function headerInt(res: IncomingMessage, name: string): number | null {
  const v = res.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined || !/^-?\d+$/.test(s.trim())) return null;
  return Number(s.trim());
}

export interface SimpleAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/**
 * One small request (on its own connection unless a client's `transport` is given):
 * `{ status, headers, body }` or `{ error }`, never a rejection. Like every request of the trickle clients it goes through node:http, which never
 * follows a redirect: a 3xx is an answer like any other, so no request reaches a host that the
 * allow-list did not pass.
 */
export async function simpleRequest(
  url: string,
  method: string,
  o: { headerTimeoutMs: number; headers?: OutgoingHttpHeaders; transport?: ClientTransport },
): Promise<SimpleAnswer | { error: Error }> {
  const t = o.transport ?? transportFor(url);
  try {
    const ex = exchange(t, url, method, { ...(method === 'GET' ? {} : { 'content-length': '0' }), ...o.headers }, new AbortController().signal, o.headerTimeoutMs, true);
    ex.req.end();
    const out = await ex.outcome;
    if ('error' in out) return out;
    return { status: out.res.statusCode ?? 0, headers: out.res.headers, body: await readText(out.res) };
  } finally {
    if (!o.transport) t.agent.destroy();
  }
}
