// Connection bounds of the trickle server, seen from outside over raw sockets: a connection must send
// its request headers in time and may idle between requests only so long, one client address holds
// at most so many connections; segment bodies (a POST that streams for minutes, a GET parked for the
// next segment, a preconnected POST with no body yet) are never cut by those bounds.
import { request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { nextChunk, openGet, openPost, readAll, serverPool, waitEvent, type OpenRequest } from './helpers/trickle.ts';

/** How long a test waits for the server to enforce a bound of a few hundred ms before failing. */
const BOUND_MS = 3_000;

const servers = serverPool();
const start = servers.start;
let sockets: Socket[] = [];
let requests: OpenRequest[] = [];
afterEach(async () => {
  for (const s of sockets) s.destroy();
  for (const r of requests) r.req.destroy();
  sockets = [];
  requests = [];
  await servers.closeAll();
});

function rawSocket(port: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(sock));
    sockets.push(sock);
    sock.on('error', reject);
  });
}

/** Resolves with every byte the server sent once it closes `sock`; rejects after `ms`. */
function closedByServer(sock: Socket, ms = BOUND_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`the server still holds the connection after ${ms} ms`)), ms);
    sock.on('data', (c: Buffer) => parts.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(parts).toString('latin1'));
    });
  });
}

/** Waits until the server has cut a fresh silent connection and an idle keep-alive one: proof that
 *  both bounds have passed (and been enforced) meanwhile. */
async function outlastBounds(port: number): Promise<void> {
  const silentClosed = closedByServer(await rawSocket(port));
  const kept = await rawSocket(port);
  const keptClosed = closedByServer(kept);
  kept.write('GET /ch/next HTTP/1.1\r\nHost: x\r\n\r\n');
  await silentClosed;
  expect(await keptClosed).toMatch(/^HTTP\/1\.1 200/);
}

function getFrom(url: string, localAddress: string): OpenRequest {
  const req = request(url, { method: 'GET', agent: false, localAddress });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
  });
  response.catch(() => undefined);
  req.end();
  const r = { req, response };
  requests.push(r);
  return r;
}

const fast = { connectionCheckIntervalMs: 20 };

describe('trickle server connection bounds', () => {
  it('closes connections that send no request within requestHeadersTimeoutMs', async () => {
    const { port, server } = await start({ ...fast, requestHeadersTimeoutMs: 200 });
    // each is watched from the moment it connects, so none can be closed unseen
    await Promise.all(Array.from({ length: 200 }, async () => closedByServer(await rawSocket(port))));
    expect(server.stats.connectionsTimedOut).toBe(200);
  });

  it('closes a keep-alive connection idle for connectionIdleMs after its last answer', async () => {
    const { port, server } = await start({ ...fast, requestHeadersTimeoutMs: 60_000, connectionIdleMs: 200 });
    server.createChannel('ch');
    const sock = await rawSocket(port);
    const closed = closedByServer(sock);
    sock.write('GET /ch/next HTTP/1.1\r\nHost: x\r\n\r\n');
    const got = await closed;
    expect(got).toMatch(/^HTTP\/1\.1 200/);
    expect(got).toMatch(/\r\n\r\n0$/); // the answer came whole, then the server closed the idle connection
  });

  it('cuts a client that sends its request headers slowly (slowloris) with 408', async () => {
    const { port } = await start({ ...fast, requestHeadersTimeoutMs: 300, connectionIdleMs: 60_000 });
    const sock = await rawSocket(port);
    const closed = closedByServer(sock);
    sock.write('GET /ch/0 HTTP/1.1\r\nHost: x\r\n');
    let n = 0;
    const drip = setInterval(() => {
      if (!sock.destroyed) sock.write(`X-Drip-${n++}: y\r\n`);
    }, 40);
    try {
      const got = await closed;
      expect(got).toMatch(/^HTTP\/1\.1 408/);
      expect(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'REQUEST_TIMEOUT' });
    } finally {
      clearInterval(drip);
    }
  });

  it('never cuts a streaming POST, a preconnected POST or a parked GET, however long they last', async () => {
    const { base, port, server } = await start({ ...fast, requestHeadersTimeoutMs: 150, connectionIdleMs: 150 });
    server.createChannel('ch');
    const parked = openGet(`${base}ch/0`);
    requests.push(parked);
    await waitEvent(server, 'get-open', (e) => e.seq === 0);
    const pre = openPost(`${base}ch/1`);
    requests.push(pre);
    await waitEvent(server, 'post-open', (e) => e.seq === 1);
    await outlastBounds(port);

    const pub = openPost(`${base}ch/0`);
    requests.push(pub);
    await waitEvent(server, 'post-open', (e) => e.seq === 0);
    await outlastBounds(port);
    pub.req.write('a-');
    const res = await parked.response;
    expect((await nextChunk(res)).toString()).toBe('a-');
    await outlastBounds(port);
    pub.req.write('b-');
    expect((await nextChunk(res)).toString()).toBe('b-');
    pub.req.end('c');
    const rest = await readAll(res);
    expect(rest.error).toBeNull();
    expect(rest.body.toString()).toBe('c');
    expect((await pub.response).statusCode).toBe(200);

    pre.req.end('one');
    expect((await pre.response).statusCode).toBe(200);
    expect(await (await fetch(`${base}ch/1`)).text()).toBe('one');
  });

  it('refuses a client over maxConnectionsPerClient with 429 and JSON, leaving its open requests and other clients alone', async () => {
    const { base, server } = await start({ maxConnectionsPerClient: 3 });
    server.createChannel('ch');
    let opened = 0;
    const allParked = waitEvent(server, 'get-open', () => ++opened === 3);
    const parked = [0, 1, 2].map(() => getFrom(`${base}ch/0`, '127.0.0.2'));
    await allParked;

    const over = await getFrom(`${base}ch/next`, '127.0.0.2').response;
    expect(over.statusCode).toBe(429);
    expect(over.headers['content-type']).toMatch(/^application\/json/);
    expect(over.headers.connection).toBe('close');
    const body = JSON.parse((await readAll(over)).body.toString()) as Record<string, unknown>;
    expect(body).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
    expect(server.stats.rejectedConnections).toBe(1);

    const other = await getFrom(`${base}ch/next`, '127.0.0.3').response;
    expect(other.statusCode).toBe(200);
    await readAll(other);

    const post = await fetch(`${base}ch/0`, { method: 'POST', body: 'for all three' });
    expect(post.status).toBe(200);
    for (const p of parked) {
      const got = await readAll(await p.response);
      expect(got.error).toBeNull();
      expect(got.body.toString()).toBe('for all three');
    }
  });
});
