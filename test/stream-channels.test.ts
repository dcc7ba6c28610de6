// A stream's trickle channels as a downstream reader and a hostile URL see them, over plain
// node:http (not our client): the output and events channels exist as soon as start answers; every
// end of the stream (failed after a crash loop, stopped, input ended) closes them at once; a URL's
// query string is kept on every request; no request follows a redirect to a host that is not allowed.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { joinUrl } from '../src/transport/trickle/protocol.ts';
import { makeClip, probeFramePts, tempDir } from './helpers/clips.ts';
import { api, startBody, startNode, waitEvent, waitState, type TestNode } from './helpers/runtime-node.ts';
import { collectOutput, publishClip } from './helpers/stream-io.ts';

const dir = tempDir('sf-channels-');
let clip: string;
let node: TestNode | undefined;
const servers: Server[] = [];

beforeAll(async () => {
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 2, fps: 30, gop: 30, width: 160, height: 120 });
});
afterAll(() => dir.remove());
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
  if (!node) return;
  const { orphans } = await node.close();
  node = undefined;
  expect(orphans).toEqual([]);
});

/** GET `url` with a plain client: status and headers (the body is drained), or 0 on a socket error. */
function get(url: string, timeoutMs = 2_000): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, headers: {} }));
    req.end();
  });
}

/** The channel is over for a reader: 404, or an answer carrying Lp-Trickle-Closed. */
const closedFor = (r: { status: number; headers: Record<string, unknown> }) => r.status === 404 || r.headers['lp-trickle-closed'] !== undefined;

async function expectClosedWithin(url: string, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  let last = await get(`${url}/next`);
  while (!closedFor(last) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    last = await get(`${url}/next`);
  }
  expect(closedFor(last), `${url}/next answered ${last.status} ${JSON.stringify(last.headers)}`).toBe(true);
}

async function listen(s: Server, host: string): Promise<number> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  return (s.address() as AddressInfo).port;
}

describe('stream channels: created at start, closed at every end', () => {
  it('the output and events channels exist as soon as start answers 200, before any input', async () => {
    node = await startNode();
    const s = await api(node.origin, 'POST', '/stream/start', startBody(node, { id: 'early', events: true }));
    expect(s.status, JSON.stringify(s.json)).toBe(200);
    for (const ch of ['early-out', 'early-events']) {
      const r = await get(`${node.trickleBase}/${ch}/next`);
      expect(r.status, ch).toBe(200);
      expect(r.headers['lp-trickle-closed'], ch).toBeUndefined();
    }
    expect((await api(node.origin, 'DELETE', '/stream/early')).status).toBe(200);
  }, 60_000);

  it('a stream that ends failed after a crash loop closes its output and events channels within 1 s', async () => {
    node = await startNode({ actors: { maxRestarts: 1, restartWindowMs: 120_000 } });
    expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id: 'crashy', events: true }))).status).toBe(200);
    const failed = waitState(node, 'crashy', 'failed', 120_000);
    for (let kills = 0; kills < 10; kills++) {
      const st = (await api(node.origin, 'GET', '/stream/crashy')).json;
      if (st.state === 'failed') break;
      const next = waitEvent(node, (e) => e.type === 'state' && e.actor === 'stream' && e.streamId === 'crashy' && (e.state === 'running' || e.state === 'failed'), 60_000);
      process.kill(st.worker_status.pid as number, 'SIGKILL');
      await next;
    }
    await failed;
    await expectClosedWithin(`${node.trickleBase}/crashy-out`, 1_000);
    await expectClosedWithin(`${node.trickleBase}/crashy-events`, 1_000);
  }, 180_000);

  it('a stopped stream and a stream whose input ended close their channels within 1 s', async () => {
    node = await startNode();
    for (const id of ['stopped', 'ended']) expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id, events: true }))).status).toBe(200);
    const ended = waitState(node, 'ended', 'terminated', 60_000);
    await publishClip(`${node.trickleBase}/ended-in`, clip, { close: true });
    expect((await ended).end_reason).toBe('input_ended');
    expect((await api(node.origin, 'DELETE', '/stream/stopped')).status).toBe(200);
    for (const ch of ['stopped-out', 'stopped-events', 'ended-out', 'ended-events']) await expectClosedWithin(`${node.trickleBase}/${ch}`, 1_000);
  }, 120_000);

  it('a node that shuts down closes the channels of every stream it ran', async () => {
    node = await startNode();
    for (const id of ['down1', 'down2']) expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id, events: true }))).status).toBe(200);
    // The runtime's own close (what SIGTERM on `serve` runs); the trickle server stays up to be asked.
    await node.runtime.close();
    for (const ch of ['down1-out', 'down1-events', 'down2-out', 'down2-events']) await expectClosedWithin(`${node.trickleBase}/${ch}`, 1_000);
  }, 60_000);
});

describe('stream URLs: query strings and redirects', () => {
  it('joinUrl keeps the query, drops the fragment, never doubles a slash', () => {
    expect(joinUrl('http://h:1/ch?x=', 'next')).toBe('http://h:1/ch/next?x=');
    expect(joinUrl('http://h:1/a/ch/?t=1&u=2#frag', 7)).toBe('http://h:1/a/ch/7?t=1&u=2');
    expect(joinUrl('http://h:1/ch', -1)).toBe('http://h:1/ch/-1');
  });

  it('channel URLs with a query string carry it on every request, and the stream runs frame-exact', async () => {
    node = await startNode({ actors: { maxFramesInFlight: 8 } });
    const seen: string[] = [];
    // A recording pass-through in front of the node's trickle server.
    const target = new URL(node.trickleBase);
    const proxy = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    const base = `http://127.0.0.1:${await listen(proxy, '127.0.0.1')}`;
    const body = {
      ...startBody(node, { id: 'q' }),
      subscribe_url: `${base}/q-in?token=abc`,
      publish_url: `${base}/q-out?token=abc`,
      events_url: `${base}/q-events?token=abc`,
    };
    const s = await api(node.origin, 'POST', '/stream/start', body);
    expect(s.status, JSON.stringify(s.json)).toBe(200);
    const out = collectOutput(`${node.trickleBase}/q-out`, join(dir.path, 'q.ts'));
    const ended = waitState(node, 'q', 'terminated', 60_000);
    await publishClip(`${node.trickleBase}/q-in`, clip, { close: true });
    await ended;
    expect((await probeFramePts((await out).path)).length).toBe((await probeFramePts(clip)).length);
    expect(seen.length).toBeGreaterThan(3);
    for (const line of seen) expect(line, line).toMatch(/^\w+ \/q-(in|out|events)(\/[-\w]+)?\?token=abc$/);
  }, 120_000);

  it('a 302 from an allowed host to one that is not is never followed', async () => {
    node = await startNode({ http: { allowedHosts: ['127.0.0.1'] } });
    const hits: string[] = [];
    const forbidden = createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'lp-trickle-latest': '0' }).end('0');
    });
    const fport = await listen(forbidden, '127.0.0.2');
    const redirector = createServer((req, res) => {
      res.writeHead(302, { location: `http://127.0.0.2:${fport}${req.url}` }).end();
    });
    const base = `http://127.0.0.1:${await listen(redirector, '127.0.0.1')}`;
    // Output and events on the redirecting host; the input on the node's own server, so the worker runs.
    const body = { ...startBody(node, { id: 'redir' }), publish_url: `${base}/redir-out`, events_url: `${base}/redir-events` };
    await api(node.origin, 'POST', '/stream/start', body);
    const pub = publishClip(`${node.trickleBase}/redir-in`, clip, { close: true });
    await pub;
    await api(node.origin, 'DELETE', '/stream/redir');
    expect(hits).toEqual([]);
  }, 120_000);
});
