// Connection bounds of the trickle server's own listener (TrickleConfig): request headers must arrive
// within requestHeadersTimeoutMs, a kept-alive connection may idle connectionIdleMs between
// requests, one client address may hold maxConnectionsPerClient connections. Request bodies and
// responses are never timed: a segment POST may stream for minutes and a GET may be parked for the
// next segment, so node's requestTimeout stays 0 and the socket timer is off while a request runs.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { JSON_ERRORS, jsonErrorBody, type JsonErrorCode, type ServerContext } from './server-context.ts';

export interface ConnectionGuard {
  /** A request has arrived (headers complete): its connection is no longer timed until it is
   *  answered (node then times the idle keep-alive). Returns false when the connection is over its
   *  client's cap, and must be refused. */
  admit(req: IncomingMessage): boolean;
}

/** The client address, with IPv4-mapped IPv6 folded into IPv4 so one host counts once. */
function clientAddress(socket: Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** A whole HTTP answer for a socket that has no response object (node's clientError). */
function rawAnswer(code: JsonErrorCode, message: string): string {
  const body = jsonErrorBody(code, message);
  const { status, error } = JSON_ERRORS[code];
  return (
    `HTTP/1.1 ${status} ${error}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** What a connection gets for a request node could not parse, or did not get in time. */
function clientErrorAnswer(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return rawAnswer('REQUEST_TIMEOUT', 'The request headers did not arrive in time');
    case 'HPE_HEADER_OVERFLOW':
      return rawAnswer('HEADERS_TOO_LARGE', 'The request headers are too large');
    default:
      return rawAnswer('BAD_REQUEST', 'The request is not valid HTTP/1.1');
  }
}

/** A node:http server with the trickle bounds in place; requests are the caller's to serve. */
export function createGuardedServer(ctx: ServerContext): { server: Server; guard: ConnectionGuard } {
  const { cfg, stats, log } = ctx;
  const perClient = new Map<string, number>();
  const overCap = new WeakSet<Socket>();
  // A connection may time out on two counts at once (our timer, node's headers check): count it once.
  const counted = new WeakSet<Socket>();
  const timedOut = (socket: Socket): void => {
    if (counted.has(socket)) return;
    counted.add(socket);
    stats.connectionsTimedOut++;
  };
  // node's own checks: a headers deadline from each request's first byte (checked every
  // connectionCheckIntervalMs), and the idle keep-alive timer it arms after each answer and clears
  // when the next request arrives. requestTimeout 0: bodies are not timed.
  const server = createServer({
    requestTimeout: 0,
    headersTimeout: cfg.requestHeadersTimeoutMs,
    connectionsCheckingInterval: cfg.connectionCheckIntervalMs,
    noDelay: true,
  });
  server.keepAliveTimeout = cfg.connectionIdleMs;

  server.on('connection', (socket: Socket) => {
    const addr = clientAddress(socket);
    const n = (perClient.get(addr) ?? 0) + 1;
    perClient.set(addr, n);
    if (n > cfg.maxConnectionsPerClient) overCap.add(socket);
    socket.once('close', () => {
      const left = (perClient.get(addr) ?? 1) - 1;
      if (left > 0) perClient.set(addr, left);
      else perClient.delete(addr);
    });
    // Until its first request arrives a connection is also timed by inactivity, so a silent one is
    // closed within the bound itself, not up to connectionCheckIntervalMs later.
    socket.setTimeout(cfg.requestHeadersTimeoutMs);
    socket.on('timeout', () => {
      // Here: silent since connect, or idle past connectionIdleMs after an answer (node's keep-alive
      // timer). A connection with a request in flight has no timer.
      timedOut(socket);
      socket.destroy();
    });
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') timedOut(socket);
    else stats.clientErrors++;
    log.debug({ err }, 'trickle client error');
    if (socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
      // Flush the answer, then close (destroying at once could cut it off).
      socket.end(clientErrorAnswer(err), () => socket.destroy());
      socket.setTimeout(cfg.requestHeadersTimeoutMs);
    } else socket.destroy();
  });

  const guard: ConnectionGuard = {
    admit(req) {
      req.socket.setTimeout(0);
      if (!overCap.has(req.socket)) return true;
      stats.rejectedConnections++;
      return false;
    },
  };
  return { server, guard };
}
