// Random requests (methods, paths, seqs, headers, bodies, raw bytes, cut-offs) against a live trickle
// server: none may crash it, and a channel being published and read meanwhile must be unaffected.
import { request } from 'node:http';
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { TricklePublisher } from '../src/transport/trickle/publisher.ts';
import { TrickleSubscriber } from '../src/transport/trickle/subscriber.ts';
import { postSegment, startServer, waitEvent, type Running } from './helpers/trickle.ts';

const REQUESTS = 2000;
const CONCURRENCY = 16;
/** A fuzz request still open after this long (a parked GET, a stalled POST) is cut by the client. */
const CUT_AFTER_MS = 80;

let running: Running | null = null;
afterEach(async () => {
  await running?.server.close();
  running = null;
});

type Fuzz =
  | { kind: 'raw'; bytes: Uint8Array }
  | {
      kind: 'http';
      method: string;
      path: string;
      headers: [string, string][];
      body: Uint8Array | null;
      chunked: boolean;
      cutAfterBytes: number | null;
    };

const channelName = fc.constantFrom('a', 'b', '_c', 'd%20e', '%E0%A4%A', '..', 'x'.repeat(300), '', '%2F', 'ü');
const seqText = fc.oneof(
  fc.integer({ min: -5, max: 12 }).map(String),
  fc.constantFrom('next', 'abc', '1e3', '0x1', ' 1', '-0', '99999999999999999999', '', '1/2', '%31'),
);
const path = fc.oneof(
  fc.tuple(channelName, seqText).map(([c, s]) => `/${c}/${s}`),
  channelName.map((c) => `/${c}`),
  fc.constantFrom('/', '//', '/a/1/2', '/a/0?x=1', '*', '/a/-1#f'),
  fc.string({ maxLength: 40 }).map((s) => `/${encodeURI(s)}`),
);
const header = fc.oneof(
  fc.constantFrom<[string, string]>(
    ['lp-trickle-reset', '1'],
    ['expect-content', 'video/MP2T'],
    ['content-type', 'application/json'],
    ['expect', '100-continue'],
    ['lp-trickle-seq', '-7'],
    ['content-length', '5'],
  ),
  fc.tuple(fc.stringMatching(/^[a-z][a-z-]{0,10}$/), fc.stringMatching(/^[ -~]{0,20}$/)),
);
const fuzz: fc.Arbitrary<Fuzz> = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ kind: 'raw' as const, bytes })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('GET', 'POST', 'DELETE'), path, fc.constantFrom(' HTTP/1.1', ' HTTP/1.0', ' HTTP/9', ''), fc.uint8Array({ maxLength: 100 }))
      .map(([m, p, v, junk]) => ({
        kind: 'raw' as const,
        bytes: Buffer.concat([Buffer.from(`${m} ${p}${v}\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`), Buffer.from(junk)]),
      })),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('http' as const),
      method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'HEAD', 'OPTIONS', 'PATCH'),
      path,
      headers: fc.array(header, { maxLength: 4 }),
      body: fc.option(fc.uint8Array({ maxLength: 2000 }), { nil: null }),
      chunked: fc.boolean(),
      cutAfterBytes: fc.option(fc.nat({ max: 1500 }), { nil: null }),
    }),
  },
);

function sendRaw(port: number, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1', () => sock.end(bytes));
    const timer = setTimeout(() => sock.destroy(), CUT_AFTER_MS);
    sock.on('data', () => undefined);
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function sendHttp(port: number, f: Extract<Fuzz, { kind: 'http' }>): Promise<number | null> {
  return new Promise((resolve) => {
    let req;
    try {
      const headers: Record<string, string> = {};
      for (const [k, v] of f.headers) headers[k] = v;
      if (f.chunked) headers['transfer-encoding'] = 'chunked';
      req = request({ host: '127.0.0.1', port, method: f.method, path: f.path, headers, agent: false });
    } catch {
      resolve(null); // a path or header node refuses to send
      return;
    }
    const timer = setTimeout(() => req.destroy(), CUT_AFTER_MS);
    req.on('error', () => resolve(null));
    req.on('response', (res) => {
      res.on('data', () => undefined);
      res.on('error', () => resolve(res.statusCode ?? null));
      res.on('close', () => {
        clearTimeout(timer);
        resolve(res.statusCode ?? null);
      });
    });
    req.on('close', () => resolve(null));
    const body = f.body ? Buffer.from(f.body) : null;
    try {
      if (body && f.cutAfterBytes !== null && f.cutAfterBytes < body.length) {
        req.write(body.subarray(0, f.cutAfterBytes));
        setImmediate(() => req.destroy());
      } else if (body) req.end(body);
      else req.end();
    } catch {
      req.destroy();
    }
  });
}

describe('trickle server under random input', () => {
  it(`survives ${REQUESTS} random requests while another channel keeps serving`, async () => {
    running = await startServer({ maxSegmentBytes: 1500, maxChannels: 50 });
    const { server, port, base } = running;
    server.createChannel('healthy');

    // a real publisher and subscriber on a channel the fuzz never names
    const sub = new TrickleSubscriber(`${base}healthy`, { start: 0 });
    const received: string[] = [];
    const reading = (async () => {
      for await (const seg of sub) received.push((await seg.bytes()).toString());
    })();
    await waitEvent(server, 'get-open', (e) => e.channel === 'healthy');
    const pub = new TricklePublisher(`${base}healthy`);
    const sent: string[] = [];

    const cases = fc.sample(fuzz, { numRuns: REQUESTS, seed: 20261127 });
    const statuses = new Map<number | null, number>();
    let i = 0;
    async function worker(): Promise<void> {
      while (i < cases.length) {
        const n = i++;
        const f = cases[n];
        if (n % 100 === 0) {
          const text = `healthy-${n}`;
          await pub.writeSegment(Buffer.from(text));
          sent.push(text);
        }
        const status = f.kind === 'raw' ? (await sendRaw(port, f.bytes), -1) : await sendHttp(port, f);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    // the healthy channel got every segment, in order, untouched
    await pub.close();
    await reading;
    expect(received).toEqual(sent);
    expect(sub.endReason).toBe('closed');

    // the server still answers, and no handler ever threw
    expect((await postSegment(base, 'after', 0, 'still here')).status).toBe(200);
    expect(await (await fetch(`${base}after/0`)).text()).toBe('still here');
    expect(server.stats.handlerErrors).toBe(0);
    // the fuzz reached the server's interesting answers, not just connection errors
    for (const s of [200, 400, 404, 470]) expect(statuses.get(s) ?? 0, `status ${s}`).toBeGreaterThan(0);
  });
});
