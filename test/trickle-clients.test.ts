import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TricklePublisher } from '../src/transport/trickle/publisher.ts';
import { createTrickleServer } from '../src/transport/trickle/server.ts';
import { TrickleSubscriber, type TrickleSegment } from '../src/transport/trickle/subscriber.ts';
import { EndOfStreamError, RetriesExhaustedError, SegmentTruncatedError, ChannelNotFoundError } from '../src/transport/trickle/errors.ts';
import { freePort } from './helpers/ports.ts';
import { nextChunk, openGet, openPost, postSegment, readAll, startServer, trickleConfig, waitEvent, type Running } from './helpers/trickle.ts';

let running: Running[] = [];
let cleanups: (() => unknown)[] = [];
async function start(...args: Parameters<typeof startServer>): Promise<Running> {
  const r = await startServer(...args);
  running.push(r);
  return r;
}
function pub(url: string, opts: ConstructorParameters<typeof TricklePublisher>[1] = {}): TricklePublisher {
  const p = new TricklePublisher(url, opts);
  cleanups.push(() => p.close());
  return p;
}
function sub(url: string, opts: ConstructorParameters<typeof TrickleSubscriber>[1] = {}): TrickleSubscriber {
  const s = new TrickleSubscriber(url, opts);
  cleanups.push(() => s.close());
  return s;
}
afterEach(async () => {
  for (const c of cleanups) await c();
  cleanups = [];
  await Promise.all(running.map((r) => r.server.close()));
  running = [];
});

/** Reads segments as `seq:text` until the iteration ends or `n` were read. */
async function collect(s: TrickleSubscriber, n = Infinity): Promise<string[]> {
  const out: string[] = [];
  for await (const seg of s) {
    out.push(`${seg.seq}:${(await seg.bytes()).toString()}`);
    if (out.length >= n) break;
  }
  return out;
}

const fast = trickleConfig({ retryBaseMs: 5, retryMaxMs: 20, maxRetries: 2 });

describe('trickle publisher and subscriber', () => {
  it('carry a stream of segments, each streamed in chunks, with its Content-Type', async () => {
    const { base, server } = await start();
    server.createChannel('ch');
    const s = sub(`${base}ch`, { start: 0 });
    const got = collect(s, 6);
    await waitEvent(server, 'get-open');
    const p = pub(`${base}ch`, { contentType: 'video/mp2t' });
    for (let i = 0; i < 6; i++) {
      const w = p.next();
      expect(w.seq).toBe(i);
      await w.write(Buffer.from(`gop${i}-`));
      await w.write(Buffer.from('end'));
      await w.end();
    }
    expect(await got).toEqual([0, 1, 2, 3, 4, 5].map((i) => `${i}:gop${i}-end`));
    expect(p.stats).toMatchObject({ segments: 6, bytes: 6 * 8 });
    expect(s.stats.segments).toBe(6);
  });

  it('writeSegment takes bytes or an async iterable and resolves with the seq written', async () => {
    const { base } = await start();
    const p = pub(`${base}ch`);
    expect(await p.writeSegment(Buffer.from('one'))).toBe(0);
    async function* gen(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('tw');
      yield Buffer.from('o');
    }
    expect(await p.writeSegment(gen())).toBe(1);
    expect(await (await fetch(`${base}ch/1`)).text()).toBe('two');
  });

  it('publisher preconnects: the server sees the POST for N+1 open before N ends', async () => {
    const { base, server } = await start();
    const order: string[] = [];
    server.events.on('post-open', (e) => order.push(`open ${e.seq}`));
    server.events.on('segment-end', (e) => order.push(`end ${e.seq}`));
    const p = pub(`${base}ch`);
    const w0 = p.next();
    await w0.write(Buffer.from('zero'));
    await waitEvent(server, 'post-open', (e) => e.seq === 1);
    await w0.end();
    expect(order.indexOf('open 1')).toBeLessThan(order.indexOf('end 0'));
    // the preconnected POST carries segment 1 (and opens 2)
    const w1 = p.next();
    await w1.write(Buffer.from('one'));
    await w1.end();
    expect(server.stats.posts).toBe(3);
    expect(await (await fetch(`${base}ch/1`)).text()).toBe('one');
  });

  it('subscriber preconnects: the GET for N+1 is parked at the server while N is read', async () => {
    const { base, server } = await start();
    await postSegment(base, 'ch', 0, 'zero');
    const s = sub(`${base}ch`, { start: 0 });
    const it = s[Symbol.asyncIterator]();
    const first = (await it.next()).value as TrickleSegment;
    expect(first.seq).toBe(0);
    await waitEvent(server, 'get-open', (e) => e.seq === 1);
    expect((await first.bytes()).toString()).toBe('zero');
    await postSegment(base, 'ch', 1, 'one');
    const second = (await it.next()).value as TrickleSegment;
    expect(second.seq).toBe(1);
    expect((await second.bytes()).toString()).toBe('one');
    expect(s.stats.preconnects).toBeGreaterThanOrEqual(2);
  });

  it('subscriber jumps to the live edge on 470', async () => {
    const { base, server } = await start();
    for (let i = 0; i < 8; i++) await postSegment(base, 'ch', i, `s${i}`);
    const s = sub(`${base}ch`, { start: 0 });
    const jumped = new Promise((resolve) => s.once('jump', resolve));
    const got = collect(s, 1);
    expect(await jumped).toEqual({ from: 0, to: 8 });
    await waitEvent(server, 'get-open', (e) => e.seq === 8);
    await postSegment(base, 'ch', 8, 'live');
    expect(await got).toEqual(['8:live']);
    expect(s.stats.jumps).toBe(1);
  });

  it('subscriber starting at current gets the segment in progress from byte 0', async () => {
    const { base, server } = await start();
    await postSegment(base, 'ch', 0, 'old');
    const open = openPost(`${base}ch/1`);
    const started = waitEvent(server, 'segment-start', (e) => e.seq === 1);
    open.req.write('head-');
    await started;
    const s = sub(`${base}ch`, { start: 'current' });
    const got = collect(s, 1);
    await waitEvent(server, 'get-open', (e) => e.seq === 2);
    open.req.end('tail');
    expect(await got).toEqual(['1:head-tail']);
  });

  it('subscriber ends on 404 with endReason not_found', async () => {
    const { base } = await start();
    const s = sub(`${base}missing`);
    expect(await collect(s)).toEqual([]);
    expect(s.endReason).toBe('not_found');
  });

  it('subscriber with waitForChannel keeps asking until the channel appears', async () => {
    const { base, server } = await start();
    const s = sub(`${base}late`, { start: 0, waitForChannel: 30_000, config: trickleConfig({ retryBaseMs: 10 }) });
    const got = collect(s, 1);
    await new Promise<void>((resolve) => s.on('waiting-for-channel', (e) => e.attempt === 2 && resolve()));
    server.createChannel('late');
    await waitEvent(server, 'get-open');
    await postSegment(base, 'late', 0, 'finally');
    expect(await got).toEqual(['0:finally']);
  });

  it('subscriber ends with endReason closed when the channel is deleted (200 + Lp-Trickle-Closed)', async () => {
    const { base, server } = await start();
    await postSegment(base, 'ch', 0, 'a');
    const s = sub(`${base}ch`, { start: 0 });
    const got = collect(s);
    await waitEvent(server, 'get-open', (e) => e.seq === 1);
    await fetch(`${base}ch`, { method: 'DELETE' });
    expect(await got).toEqual(['0:a']);
    expect(s.endReason).toBe('closed');
  });

  it('a publisher that dies mid-segment: that segment body throws SegmentTruncatedError, the next one arrives', async () => {
    const { base, server } = await start();
    server.createChannel('ch');
    const s = sub(`${base}ch`, { start: 0 });
    const results: string[] = [];
    const done = (async () => {
      for await (const seg of s) {
        try {
          results.push(`${seg.seq}:${(await seg.bytes()).toString()}`);
        } catch (err) {
          expect(err).toBeInstanceOf(SegmentTruncatedError);
          expect((err as SegmentTruncatedError).code).toBe('SEGMENT_TRUNCATED');
          results.push(`${seg.seq}:truncated after ${(err as SegmentTruncatedError).bytes}`);
        }
        if (results.length === 2) break;
      }
    })();
    await waitEvent(server, 'get-open', (e) => e.seq === 0);
    const dying = openPost(`${base}ch/0`);
    dying.req.write('half');
    await waitEvent(server, 'get-open', (e) => e.seq === 1); // the subscriber got seg 0's headers
    dying.req.destroy();
    await postSegment(base, 'ch', 1, 'whole');
    await done;
    expect(results).toEqual(['0:truncated after 4', '1:whole']);
    expect(s.stats.truncated).toBe(1);
  });

  it('publisher retries transient errors with backoff and succeeds when the server comes up', async () => {
    const port = await freePort();
    const p = pub(`http://127.0.0.1:${port}/ch`, { config: trickleConfig({ retryBaseMs: 20, maxRetries: 5 }) });
    p.once('retry', () => {
      // the server comes up on the port the publisher keeps trying
      const srv = createTrickleServer();
      running.push({ server: srv, origin: '', base: '', port });
      void srv.listen(port, '127.0.0.1');
    });
    expect(await p.writeSegment(Buffer.from('eventually'))).toBe(0);
    expect(p.stats.retries).toBeGreaterThanOrEqual(1);
    expect(await (await fetch(`http://127.0.0.1:${port}/ch/0`)).text()).toBe('eventually');
  });

  it('publisher retries then fails with RetriesExhaustedError on a dead server', async () => {
    const port = await freePort();
    const p = pub(`http://127.0.0.1:${port}/ch`, { config: fast });
    const errors: Error[] = [];
    p.on('error', (e) => errors.push(e));
    const err = await p.writeSegment(Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetriesExhaustedError);
    expect((err as RetriesExhaustedError).code).toBe('RETRIES_EXHAUSTED');
    expect(p.stats.retries).toBe(2);
    expect(errors).toHaveLength(1);
  });

  it('publisher fails at once with ChannelNotFoundError when the server does not auto-create', async () => {
    const { base } = await start({ autoCreate: false });
    const p = pub(`${base}ch`, { config: fast });
    const err = await p.writeSegment(Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChannelNotFoundError);
    expect(p.stats.retries).toBe(0);
  });

  it('subscriber retries then throws RetriesExhaustedError on a dead server', async () => {
    const port = await freePort();
    const s = sub(`http://127.0.0.1:${port}/ch`, { config: fast });
    const err = await collect(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetriesExhaustedError);
    expect(s.endReason).toBe('error');
    expect(s.stats.retries).toBe(2);
  });

  it('subscriber re-issues a GET that got no headers within headerTimeoutMs', async () => {
    // a parked GET sends no headers until data arrives, so the client re-asks every 50 ms
    const { base, server } = await start();
    server.createChannel('ch');
    const s = sub(`${base}ch`, { start: 0, config: trickleConfig({ headerTimeoutMs: 50 }) });
    const got = collect(s, 1);
    let opens = 0;
    await waitEvent(server, 'get-open', () => ++opens === 3);
    expect(s.stats.headerTimeouts).toBeGreaterThanOrEqual(2);
    await postSegment(base, 'ch', 0, 'at last');
    expect(await got).toEqual(['0:at last']);
  });

  it('a silent TCP peer counts as a header timeout, not a hang', async () => {
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((sock) => sockets.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const so of sockets) so.destroy();
      return new Promise((r) => silent.close(r));
    });
    const port = (silent.address() as { port: number }).port;
    const s = sub(`http://127.0.0.1:${port}/ch`, { config: trickleConfig({ headerTimeoutMs: 30 }) });
    const got = collect(s);
    await new Promise<void>((resolve) => s.on('header-timeout', () => s.stats.headerTimeouts === 2 && resolve()));
    s.close();
    expect(await got).toEqual([]);
    expect(s.endReason).toBe('aborted');
  });

  it('Lp-Trickle-Reset from a restarted publisher releases readers of the old run', async () => {
    const { base, server } = await start();
    const old = openPost(`${base}ch/4`);
    old.req.write('stale');
    await waitEvent(server, 'segment-start', (e) => e.seq === 4);
    const reader = openGet(`${base}ch/4`);
    const res = await reader.response;
    await nextChunk(res);
    const released = readAll(res);
    const p = pub(`${base}ch`, { start: 5, reset: true });
    expect(await p.writeSegment(Buffer.from('fresh'))).toBe(5);
    expect((await released).error).toBeNull(); // the old segment's body ends cleanly
    old.req.destroy();
  });

  it('publisher reports EndOfStreamError when the channel is deleted under an open segment', async () => {
    const { base, server } = await start();
    const p = pub(`${base}ch`);
    const w = p.next();
    const started = waitEvent(server, 'segment-start');
    await w.write(Buffer.from('part'));
    await started;
    expect((await fetch(`${base}ch`, { method: 'DELETE' })).status).toBe(200);
    const err = await w.end().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EndOfStreamError);
    expect((err as EndOfStreamError).code).toBe('END_OF_STREAM');
  });

  it('close() deletes the channel, so parked subscribers end with endReason closed', async () => {
    const { base, server } = await start();
    const p = pub(`${base}ch`);
    await p.writeSegment(Buffer.from('a'));
    await waitEvent(server, 'post-open', (e) => e.seq === 1);
    const s = sub(`${base}ch`, { start: 0 });
    const got = collect(s);
    await waitEvent(server, 'get-open', (e) => e.seq === 1);
    await p.close();
    expect(await got).toEqual(['0:a']);
    expect(s.endReason).toBe('closed');
    expect(server.channels()).toEqual([]);
    expect(server.stats.activePosts).toBe(0);
  });

  it('close() with deleteChannel false DELETEs only the dangling preconnected seq', async () => {
    const { base, server } = await start();
    const p = pub(`${base}ch`, { deleteChannel: false });
    await p.writeSegment(Buffer.from('a'));
    await waitEvent(server, 'post-open', (e) => e.seq === 1);
    const parked = openGet(`${base}ch/1`);
    await waitEvent(server, 'get-open', (e) => e.seq === 1);
    await p.close();
    const res = await parked.response;
    // the seq was dropped: it ends empty (200, go-livepeer 2026) and the live edge is past it
    expect(res.statusCode).toBe(200);
    expect(res.headers['lp-trickle-seq']).toBe('1');
    expect(res.headers['lp-trickle-latest']).toBe('2');
    expect((await readAll(res)).body.length).toBe(0);
    expect(server.channels()).toEqual(['ch']);
  });

  it('aborting an unwritten segment sends it empty so subscribers move on', async () => {
    const { base, server } = await start();
    server.createChannel('ch');
    const s = sub(`${base}ch`, { start: 0 });
    const got = collect(s, 2);
    await waitEvent(server, 'get-open');
    const p = pub(`${base}ch`);
    p.next().abort();
    expect(await p.writeSegment(Buffer.from('real'))).toBe(1);
    expect(await got).toEqual(['0:', '1:real']); // an empty 200, then the next segment
  });

  it('an AbortSignal ends the subscription with endReason aborted', async () => {
    const { base, server } = await start();
    server.createChannel('ch');
    const ac = new AbortController();
    const s = sub(`${base}ch`, { signal: ac.signal });
    const got = collect(s);
    await waitEvent(server, 'get-open');
    ac.abort();
    expect(await got).toEqual([]);
    expect(s.endReason).toBe('aborted');
  });
});
