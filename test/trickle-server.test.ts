import { afterEach, describe, expect, it } from 'vitest';
import {
  nextChunk,
  openGet,
  openPost,
  openRequest,
  postSegment,
  readAll,
  serverPool,
  startServer,
  waitEvent,
} from './helpers/trickle.ts';

const servers = serverPool();
const start = servers.start;
afterEach(() => servers.closeAll());

describe('trickle server routes', () => {
  it('round-trips a segment: POST /ch/0 then GET /ch/0 gives the same bytes and Lp-Trickle-Seq 0', async () => {
    const { base } = await start();
    const post = await postSegment(base, 'ch', 0, 'hello trickle', { 'content-type': 'video/mp2t' });
    expect(post.status).toBe(200);
    expect(post.headers.get('lp-trickle-seq')).toBe('0');
    const get = await fetch(`${base}ch/0`);
    expect(get.status).toBe(200);
    expect(get.headers.get('lp-trickle-seq')).toBe('0');
    expect(get.headers.get('content-type')).toBe('video/mp2t');
    expect(await get.text()).toBe('hello trickle');
  });

  it('parks a GET for -1 until the publisher starts the next segment', async () => {
    const { base, server } = await start();
    await postSegment(base, 'ch', 0, 'zero');
    const parked = openGet(`${base}ch/-1`);
    const opened = await waitEvent(server, 'get-open');
    expect(opened.seq).toBe(1);
    await postSegment(base, 'ch', 1, 'one');
    const res = await parked.response;
    expect(res.headers['lp-trickle-seq']).toBe('1');
    expect((await readAll(res)).body.toString()).toBe('one');
  });

  it('serves -2 (current) from byte 0 and then the live tail', async () => {
    const { base, server } = await start();
    const pub = openPost(`${base}ch/0`);
    const started = waitEvent(server, 'segment-start');
    pub.req.write('first-');
    await started;
    const reader = openGet(`${base}ch/-2`);
    const res = await reader.response;
    expect(res.headers['lp-trickle-seq']).toBe('0');
    expect((await nextChunk(res)).toString()).toBe('first-');
    pub.req.end('second');
    expect((await readAll(res)).body.toString()).toBe('second');
    expect((await pub.response).statusCode).toBe(200);
  });

  it('answers /next with the write head in the body and Lp-Trickle-Latest; POST -1 writes the next seq', async () => {
    const { base } = await start();
    await postSegment(base, 'ch', 0, 'a');
    const viaNext = await postSegment(base, 'ch', -1, 'b'); // -1 = the next write
    expect(viaNext.headers.get('lp-trickle-seq')).toBe('1');
    const res = await fetch(`${base}ch/next`);
    expect(res.headers.get('lp-trickle-latest')).toBe('2');
    expect(await res.text()).toBe('2');
    expect((await fetch(`${base}nope/next`)).status).toBe(404);
  });

  it('answers 470 with Latest and Seq for a seq that is too old or too far ahead', async () => {
    const { base } = await start({ ringSize: 5 });
    for (let i = 0; i < 7; i++) await postSegment(base, 'ch', i, `s${i}`);
    const old = await fetch(`${base}ch/0`);
    expect(old.status).toBe(470);
    expect(old.headers.get('lp-trickle-latest')).toBe('7');
    expect(old.headers.get('lp-trickle-seq')).toBe('0');
    expect((await old.text()).trim()).toBe('Entry not found');
    const ahead = await fetch(`${base}ch/20`);
    expect(ahead.status).toBe(470);
    expect(ahead.headers.get('lp-trickle-latest')).toBe('7');
    // the ring still holds the last five
    expect(await (await fetch(`${base}ch/2`)).text()).toBe('s2');
  });

  it('reusing a ring slot closes the old segment: a reader mid-way through it is cut off', async () => {
    const { base, server } = await start({ ringSize: 5 });
    const stalled = openPost(`${base}ch/0`);
    const started = waitEvent(server, 'segment-start');
    stalled.req.write('partial');
    await started;
    const reader = openGet(`${base}ch/0`);
    const res = await reader.response;
    expect((await nextChunk(res)).toString()).toBe('partial');
    const readDone = readAll(res);
    await postSegment(base, 'ch', 5, 'takes slot 0');
    const got = await readDone;
    expect(got.error).not.toBeNull();
    expect((await stalled.response).statusCode).toBe(200);
    stalled.req.destroy();
    expect((await fetch(`${base}ch/0`)).status).toBe(470);
  });

  it('gives a late reader every buffered byte and then the live tail', async () => {
    const { base, server } = await start();
    const pub = openPost(`${base}ch/0`);
    const early = openGet(`${base}ch/0`);
    await waitEvent(server, 'get-open');
    pub.req.write('aa-');
    const earlyRes = await early.response;
    expect((await nextChunk(earlyRes)).toString()).toBe('aa-');
    pub.req.write('bb-');
    expect((await nextChunk(earlyRes)).toString()).toBe('bb-');
    // a reader that joins mid-way
    const late = openGet(`${base}ch/0`);
    const lateRes = await late.response;
    const lateFirst = await nextChunk(lateRes);
    expect(lateFirst.toString().startsWith('aa-')).toBe(true);
    const lateRest = readAll(lateRes);
    pub.req.write('cc-');
    pub.req.end('dd');
    expect(Buffer.concat([lateFirst, (await lateRest).body]).toString()).toBe('aa-bb-cc-dd');
    expect((await readAll(earlyRes)).body.toString()).toBe('cc-dd');
  });

  it('DELETE /ch ends parked readers with Lp-Trickle-Closed (status 200); later GETs answer 404', async () => {
    const { base, server } = await start();
    await postSegment(base, 'ch', 0, 'x');
    const parked = openGet(`${base}ch/1`);
    await waitEvent(server, 'get-open');
    const del = await fetch(`${base}ch`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    const res = await parked.response;
    expect(res.statusCode).toBe(200);
    expect(res.headers['lp-trickle-closed']).toBe('terminated');
    await readAll(res);
    const after = await fetch(`${base}ch/1`);
    expect(after.status).toBe(404);
    expect((await after.text()).trim()).toBe('Stream not found');
    const again = await fetch(`${base}ch`, { method: 'DELETE' });
    expect(again.status).toBe(400);
    expect((await again.text()).trim()).toBe('Invalid stream');
    expect(server.channels()).not.toContain('ch');
  });

  it('DELETE /ch/seq answers 404 for an unknown channel, 400 Invalid idx / Nonexistent segment, and closes a pending POST', async () => {
    const { base, server } = await start();
    expect((await fetch(`${base}nope/0`, { method: 'DELETE' })).status).toBe(404);
    await postSegment(base, 'ch', 0, 'x');
    const bad = await fetch(`${base}ch/abc`, { method: 'DELETE' });
    expect(bad.status).toBe(400);
    expect((await bad.text()).trim()).toBe('Invalid idx');
    const none = await fetch(`${base}ch/3`, { method: 'DELETE' });
    expect(none.status).toBe(400);
    expect((await none.text()).trim()).toBe('Nonexistent segment');
    const pending = openPost(`${base}ch/1`);
    await waitEvent(server, 'post-open', (e) => e.seq === 1);
    expect((await fetch(`${base}ch/1`, { method: 'DELETE' })).status).toBe(200);
    const res = await pending.response;
    expect(res.statusCode).toBe(200);
    expect(res.headers['lp-trickle-seq']).toBe('1');
    pending.req.destroy();
  });

  it('with autoCreate off answers 404 Stream not found until the channel is created', async () => {
    const { base, server } = await start({ autoCreate: false });
    const post = await fetch(`${base}ch/0`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(404);
    expect((await post.text()).trim()).toBe('Stream not found');
    expect((await fetch(`${base}ch`, { method: 'POST' })).status).toBe(404);
    expect(server.createChannel('ch', 'video/MP2T')).toBe(true);
    expect((await postSegment(base, 'ch', 0, 'x')).status).toBe(200);
  });

  it('POST /ch creates a channel whose Content-Type comes from Expect-Content', async () => {
    const { base } = await start();
    expect((await fetch(`${base}ctl`, { method: 'POST', headers: { 'expect-content': 'application/json' } })).status).toBe(200);
    const pub = openRequest(`${base}ctl/0`, 'POST');
    pub.req.end('{"a":1}');
    await pub.response;
    const get = await fetch(`${base}ctl/0`);
    expect(get.headers.get('content-type')).toBe('application/json');
  });

  it('Lp-Trickle-Reset closes every segment with a lower seq, releasing its readers', async () => {
    const { base, server } = await start();
    const stalled = openPost(`${base}ch/2`);
    const started = waitEvent(server, 'segment-start');
    stalled.req.write('old run');
    await started;
    const reader = openGet(`${base}ch/2`);
    const res = await reader.response;
    expect((await nextChunk(res)).toString()).toBe('old run');
    const readDone = readAll(res);
    const reset = await postSegment(base, 'ch', 3, 'new run', { 'lp-trickle-reset': '1' });
    expect(reset.status).toBe(200);
    const got = await readDone;
    expect(got.body.length).toBe(0);
    expect(got.error).toBeNull(); // a clean end of body (go-livepeer), not a cut
    expect((await stalled.response).statusCode).toBe(200);
    stalled.req.destroy();
    expect(await (await fetch(`${base}ch/3`)).text()).toBe('new run');
  });

  it('honours Expect: 100-continue and sends 100 Continue keep-alives while a pre-opened POST has no data', async () => {
    const { base } = await start({ keepAliveMs: 30 });
    // Expect: 100-continue: the client holds the body until the server says go
    const exp = openRequest(`${base}ch/0`, 'POST', { expect: '100-continue', 'content-type': 'video/MP2T' });
    exp.req.on('continue', () => exp.req.end('after continue'));
    expect((await exp.response).statusCode).toBe(200);
    expect(await (await fetch(`${base}ch/0`)).text()).toBe('after continue');
    // keep-alives on a preconnected POST
    const pre = openPost(`${base}ch/1`);
    let infos = 0;
    await new Promise<void>((resolve) => {
      pre.req.on('information', (info) => {
        if (info.statusCode === 100 && ++infos === 2) resolve();
      });
    });
    pre.req.end('late data');
    expect((await pre.response).statusCode).toBe(200);
    expect(await (await fetch(`${base}ch/1`)).text()).toBe('late data');
  });

  it('sweeps idle channels but not names starting with _', async () => {
    const { base, server } = await start({ idleTimeoutMs: 40, sweepIntervalMs: 20 });
    await postSegment(base, 'ch', 0, 'x');
    await postSegment(base, '_changes', 0, 'y');
    const closed = await waitEvent(server, 'channel-closed');
    expect(closed).toEqual({ channel: 'ch', reason: 'idle' });
    expect(server.channels()).toEqual(['_changes']);
    expect(server.stats.channelsSwept).toBe(1);
  });

  it('enforces maxSegmentBytes (413) and maxChannels (503), and answers 400 to bad seqs', async () => {
    const { base } = await start({ maxSegmentBytes: 1000, maxChannels: 2 });
    const big = await fetch(`${base}ch/0`, { method: 'POST', body: Buffer.alloc(5000, 1) }).catch((e: unknown) => e);
    if (big instanceof Response) expect(big.status).toBe(413);
    else expect(big).toBeInstanceOf(Error); // the server may cut the socket before fetch has read the answer
    // the cut segment ends empty and the write head moved past it
    const cut = await fetch(`${base}ch/0`);
    expect(cut.status).toBe(200);
    expect(cut.headers.get('lp-trickle-latest')).toBe('1');
    expect(await cut.text()).toBe('');
    await postSegment(base, 'b', 0, 'x');
    const full = await fetch(`${base}c/0`, { method: 'POST', body: 'x' });
    expect(full.status).toBe(503);
    for (const [method, seq] of [
      ['POST', 'abc'],
      ['POST', '-2'],
      ['GET', '-3'],
      ['GET', '1.5'],
      ['GET', '0x10'],
      ['POST', '99999999999999999999'],
    ]) {
      const r = await fetch(`${base}b/${seq}`, { method, body: method === 'POST' ? 'x' : undefined });
      expect(r.status, `${method} ${seq}`).toBe(400);
      expect((await r.text()).trim()).toBe('Invalid idx');
    }
  });

  it('closes a segment whose publisher disconnects mid-way: readers get what arrived, then a cut-off end', async () => {
    const { base, server } = await start();
    const pub = openPost(`${base}ch/0`);
    const reader = openGet(`${base}ch/0`);
    await waitEvent(server, 'get-open');
    pub.req.write('half a gop');
    const res = await reader.response;
    expect((await nextChunk(res)).toString()).toBe('half a gop');
    const readDone = readAll(res);
    const ended = waitEvent(server, 'segment-end');
    pub.req.destroy();
    expect(await ended).toMatchObject({ seq: 0, aborted: true, bytes: 10 });
    expect((await readDone).error).not.toBeNull();
    // a late reader gets the bytes that arrived, then the same cut
    const late = await readAll(await openGet(`${base}ch/0`).response);
    expect(late.body.toString()).toBe('half a gop');
    expect(late.error).not.toBeNull();
    // the channel goes on
    expect((await postSegment(base, 'ch', 1, 'next')).status).toBe(200);
    expect(await (await fetch(`${base}ch/1`)).text()).toBe('next');
  });

  it('serves under a base path such as /ai/trickle/', async () => {
    const { origin, server } = await start({}, '/ai/trickle');
    expect(server.basePath).toBe('/ai/trickle/');
    expect((await postSegment(`${origin}/ai/trickle/`, 'ch', 0, 'x')).status).toBe(200);
    expect(await (await fetch(`${origin}/ai/trickle/ch/0`)).text()).toBe('x');
    expect((await fetch(`${origin}/ch/0`)).status).toBe(404);
  });

  it('an empty POST advances the write head (readers of it: test/trickle-interop.test.ts)', async () => {
    const { base } = await start();
    await postSegment(base, 'ch', 0, '');
    const next = await fetch(`${base}ch/next`);
    expect(await next.text()).toBe('1');
  });

  it('close() ends parked readers and pending POSTs and stops listening', async () => {
    const r = await startServer();
    r.server.createChannel('ch');
    const parked = openGet(`${r.base}ch/0`);
    await waitEvent(r.server, 'get-open');
    const pending = openPost(`${r.base}ch/0`);
    await waitEvent(r.server, 'post-open');
    await r.server.close();
    const res = await parked.response;
    expect(res.statusCode).toBe(200);
    expect(res.headers['lp-trickle-closed']).toBe('terminated');
    await pending.response.catch(() => null);
    pending.req.destroy();
    await expect(fetch(`${r.base}ch/0`)).rejects.toThrow();
  });
});
