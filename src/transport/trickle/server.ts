// The trickle server (docs/trickle-protocol.md): channels of segments over plain node:http,
// interoperable with go-livepeer's `trickle/` server. POST bodies stream into append-only segments
// as they arrive; GETs stream those bytes out as they arrive. Every bound comes from TrickleConfig.
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { defaultConfig, type TrickleConfig } from '../../config.ts';
import { rootLogger, type Logger } from '../../log.ts';
import { Channel } from './channel.ts';
import { createGuardedServer } from './connection-guard.ts';
import { publishSegment } from './publish-handler.ts';
import { serveSegment } from './serve-handler.ts';
import { requestAuthoriser } from './server-auth.ts';
import { jsonError, newStats, plain, type ServerContext, type TrickleServerEvents, type TrickleServerStats } from './server-context.ts';
import {
  BODY_ENTRY_NOT_FOUND,
  BODY_INVALID_IDX,
  BODY_INVALID_STREAM,
  BODY_NONEXISTENT_SEGMENT,
  BODY_STREAM_NOT_FOUND,
  CLOSED_VALUE,
  H_CLOSED,
  H_LATEST,
  H_SEQ,
  STATUS_ENTRY_NOT_FOUND,
  parseSeq,
} from './protocol.ts';

export type { TrickleServerEvents, TrickleServerStats } from './server-context.ts';

export interface TrickleServerOptions {
  config?: TrickleConfig;
  /** URL prefix of every channel; `/` locally, `/ai/trickle/` on an orchestrator. */
  basePath?: string;
  logger?: Logger;
  /** The bearer token every request must carry when config.requireAuth is set (http.authToken). */
  authToken?: string;
}

export interface TrickleServer {
  listen(port?: number, host?: string): Promise<{ port: number }>;
  close(): Promise<void>;
  channels(): string[];
  /** Creates a channel regardless of autoCreate (what an orchestrator does before handing out URLs). */
  createChannel(name: string, mimeType?: string): boolean;
  /** Closes and removes a channel; false when it does not exist. */
  closeChannel(name: string): boolean;
  /** Serves a request whose path is under basePath (for embedding in another node:http server);
   *  false when the path is not ours. The bearer token applies; the connection bounds belong to the
   *  server that owns the connection (they apply to listen()). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  readonly stats: Readonly<TrickleServerStats>;
  readonly events: EventEmitter<TrickleServerEvents>;
  readonly basePath: string;
}

function normaliseBase(p: string): string {
  let b = p.startsWith('/') ? p : `/${p}`;
  if (!b.endsWith('/')) b += '/';
  return b;
}

export function createTrickleServer(opts: TrickleServerOptions = {}): TrickleServer {
  const cfg = opts.config ?? defaultConfig.trickle;
  const basePath = normaliseBase(opts.basePath ?? '/');
  const log = (opts.logger ?? rootLogger).child({ module: 'trickle-server' });
  const channels = new Map<string, Channel>();
  const events = new EventEmitter<TrickleServerEvents>();
  const stats = newStats();
  const ctx: ServerContext = { cfg, stats, events, log };
  const authorised = requestAuthoriser(cfg, opts.authToken);
  let httpServer: Server | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;
  let closing = false;

  // ---- channels ---------------------------------------------------------------------------------

  type Created = { channel: Channel } | { status: 404 | 503 };

  function getOrCreate(name: string, mimeType: string, force: boolean): Created {
    const existing = channels.get(name);
    if (existing) {
      if (!existing.mimeType && mimeType) existing.mimeType = mimeType;
      return { channel: existing };
    }
    if (!force && !cfg.autoCreate) return { status: 404 };
    if (channels.size >= cfg.maxChannels) {
      stats.rejectedCapacity++;
      return { status: 503 };
    }
    const channel = new Channel(name, mimeType, cfg.ringSize);
    channels.set(name, channel);
    stats.channelsCreated++;
    log.debug({ channel: name }, 'channel created');
    events.emit('channel-created', { channel: name });
    return { channel };
  }

  function closeChannel(name: string, reason: 'deleted' | 'idle' | 'shutdown'): boolean {
    const ch = channels.get(name);
    if (!ch) return false;
    channels.delete(name);
    ch.close();
    stats.channelsClosed++;
    log.debug({ channel: name, reason }, 'channel closed');
    events.emit('channel-closed', { channel: name, reason });
    return true;
  }

  function sweep(): void {
    const now = Date.now();
    for (const ch of [...channels.values()]) {
      if (ch.name.startsWith('_')) continue;
      if (now - ch.writeTime > cfg.idleTimeoutMs) {
        stats.channelsSwept++;
        closeChannel(ch.name, 'idle');
      }
    }
  }

  // ---- routing ----------------------------------------------------------------------------------

  type Route = { name: string; seq: string | null };

  /** Splits `/{base}{channel}[/{seq}]`; null = not under basePath, 'bad' = malformed. */
  function route(url: string | undefined): Route | null | 'bad' {
    if (!url) return null;
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    if (!path.startsWith(basePath)) return null;
    const parts = path.slice(basePath.length).split('/');
    if (parts.length > 2 || parts[0] === '') return 'bad';
    let name: string;
    try {
      name = decodeURIComponent(parts[0]);
    } catch {
      return 'bad';
    }
    if (name.length === 0 || name.length > cfg.maxChannelNameLength || name.includes('/')) return 'bad';
    return { name, seq: parts.length === 2 ? parts[1] : null };
  }

  function handle(req: IncomingMessage, res: ServerResponse): boolean {
    const r = route(req.url);
    if (r === null) return false;
    stats.requests++;
    try {
      if (authorised && !authorised(req)) {
        stats.unauthorized++;
        const close: Record<string, string> = req.method === 'POST' ? { connection: 'close' } : {};
        jsonError(res, 'UNAUTHORIZED', 'A valid bearer token is required (Authorization: Bearer <token>)', { 'www-authenticate': 'Bearer', ...close });
      } else if (r === 'bad') {
        stats.badRequests++;
        plain(res, 404, '404 page not found');
      } else if (closing) {
        plain(res, 503, 'Server closing', { connection: 'close' });
      } else if (r.seq === null) {
        if (req.method === 'POST') onCreate(req, res, r.name);
        else if (req.method === 'DELETE') onDeleteChannel(res, r.name);
        else plain(res, 405, 'Method Not Allowed', { allow: 'POST, DELETE' });
      } else if (req.method === 'GET' || req.method === 'HEAD') {
        if (r.seq === 'next') onNext(res, r.name);
        else onGet(req, res, r.name, r.seq);
      } else if (req.method === 'POST') onPost(req, res, r.name, r.seq);
      else if (req.method === 'DELETE') onDeleteSeq(res, r.name, r.seq);
      else plain(res, 405, 'Method Not Allowed', { allow: 'GET, POST, DELETE' });
    } catch (err) {
      // A bug must cost one request, never the process.
      stats.handlerErrors++;
      log.error({ err, url: req.url }, 'trickle handler failed');
      plain(res, 500, 'Server error');
    }
    // Bodies nobody reads must still be drained, or the connection stalls.
    if (req.method !== 'POST' && !req.complete) req.resume();
    return true;
  }

  // ---- handlers ---------------------------------------------------------------------------------

  function onCreate(req: IncomingMessage, res: ServerResponse, name: string): void {
    const got = getOrCreate(name, String(req.headers['expect-content'] ?? ''), false);
    if ('status' in got) {
      if (got.status === 503) plain(res, 503, 'Too many channels');
      else plain(res, 404, BODY_STREAM_NOT_FOUND);
    } else {
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    }
    req.resume();
  }

  function onDeleteChannel(res: ServerResponse, name: string): void {
    if (!closeChannel(name, 'deleted')) plain(res, 400, BODY_INVALID_STREAM);
    else {
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    }
  }

  function onDeleteSeq(res: ServerResponse, name: string, seqText: string): void {
    const ch = channels.get(name);
    if (!ch) return plain(res, 404, BODY_STREAM_NOT_FOUND);
    const seq = parseSeq(seqText);
    if (seq === null || seq < 0) return plain(res, 400, BODY_INVALID_IDX);
    const seg = ch.get(seq);
    if (!seg) return plain(res, 400, BODY_NONEXISTENT_SEGMENT);
    // Ends cleanly: its readers get the bytes it holds and a complete body, as from go-livepeer.
    seg.close();
    res.writeHead(200, { 'content-length': '0' });
    res.end();
  }

  function onNext(res: ServerResponse, name: string): void {
    const ch = channels.get(name);
    if (!ch) return plain(res, 404, BODY_STREAM_NOT_FOUND);
    const body = String(ch.nextWrite);
    res.writeHead(200, { [H_LATEST]: body, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length) });
    res.end(body);
  }

  function onPost(req: IncomingMessage, res: ServerResponse, name: string, seqText: string): void {
    // The seq is checked before the channel is auto-created, so junk requests cannot fill the server.
    const seq = parseSeq(seqText);
    if (seq === null || seq < -1) {
      stats.badRequests++;
      plain(res, 400, BODY_INVALID_IDX, { connection: 'close' });
      req.resume();
      return;
    }
    const contentType = String(req.headers['content-type'] ?? '');
    const got = getOrCreate(name, contentType, false);
    if ('status' in got) {
      // Connection: close wakes a preconnected client that is still holding its body back.
      if (got.status === 503) plain(res, 503, 'Too many channels', { connection: 'close' });
      else plain(res, 404, BODY_STREAM_NOT_FOUND, { connection: 'close' });
      req.resume();
      return;
    }
    const ch = got.channel;
    publishSegment(ctx, req, res, ch, seq, contentType);
  }

  function onGet(req: IncomingMessage, res: ServerResponse, name: string, seqText: string): void {
    const ch = channels.get(name);
    if (!ch) return plain(res, 404, BODY_STREAM_NOT_FOUND);
    const seq = parseSeq(seqText);
    if (seq === null || seq < -2) {
      stats.badRequests++;
      return plain(res, 400, BODY_INVALID_IDX);
    }
    const { idx, latest, segment } = ch.forRead(seq);
    if (!segment) {
      const headers = { [H_LATEST]: String(latest), [H_SEQ]: String(idx) };
      if (ch.closed) plain(res, 200, BODY_ENTRY_NOT_FOUND, { ...headers, [H_CLOSED]: CLOSED_VALUE });
      else {
        stats.entryNotFound++;
        plain(res, STATUS_ENTRY_NOT_FOUND, BODY_ENTRY_NOT_FOUND, headers);
      }
      return;
    }
    stats.gets++;
    events.emit('get-open', { channel: name, seq: idx });
    void serveSegment(ctx, req, res, ch, segment, latest).catch((err: unknown) => {
      stats.handlerErrors++;
      log.error({ err, channel: name, seq: idx }, 'trickle GET failed');
      res.destroy();
    });
  }

  // ---- lifecycle --------------------------------------------------------------------------------

  function startSweep(): void {
    if (sweepTimer) return;
    sweepTimer = setInterval(sweep, cfg.sweepIntervalMs);
    sweepTimer.unref();
  }

  return {
    basePath,
    stats,
    events,
    channels: () => [...channels.keys()],
    createChannel: (name, mimeType = '') => {
      const got = getOrCreate(name, mimeType, true);
      return 'channel' in got;
    },
    closeChannel: (name) => closeChannel(name, 'deleted'),
    handle: (req, res) => {
      startSweep();
      return handle(req, res);
    },
    listen(port = 0, host = '127.0.0.1') {
      if (httpServer) return Promise.reject(new Error('trickle server already listening'));
      const { server, guard } = createGuardedServer(ctx);
      httpServer = server;
      const serve = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void => {
        if (!guard.admit(req)) {
          jsonError(res, 'TOO_MANY_CONNECTIONS', `This client holds ${cfg.maxConnectionsPerClient} connections, the most allowed`, {
            connection: 'close',
          });
          req.resume();
          return;
        }
        // Expect: 100-continue (curl, Python clients): say go unless the answer is a refusal.
        if (expectsContinue && (!authorised || authorised(req))) res.writeContinue();
        if (!handle(req, res)) {
          plain(res, 404, '404 page not found');
          req.resume();
        }
      };
      server.on('request', (req: IncomingMessage, res: ServerResponse) => serve(req, res, false));
      server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => serve(req, res, true));
      startSweep();
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const addr = server.address();
          resolve({ port: typeof addr === 'object' && addr ? addr.port : port });
        });
      });
    },
    async close() {
      closing = true;
      if (sweepTimer) clearInterval(sweepTimer);
      sweepTimer = null;
      for (const name of [...channels.keys()]) closeChannel(name, 'shutdown');
      const server = httpServer;
      httpServer = null;
      if (!server) return;
      await new Promise<void>((resolve) => {
        const grace = setTimeout(() => server.closeAllConnections(), cfg.shutdownGraceMs);
        grace.unref();
        server.close(() => {
          clearTimeout(grace);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
