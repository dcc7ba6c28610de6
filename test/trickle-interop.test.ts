// What go-livepeer's 2026 trickle server does and ours must match (docs/trickle-protocol.md, "What
// go-livepeer changed in 2026"), checked with plain node:http and node:net clients.
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { nextChunk, openGet, openPost, postSegment, readAll, serverPool, waitEvent } from './helpers/trickle.ts';

const servers = serverPool();
const start = servers.start;
afterEach(() => servers.closeAll());

/** A GET over a raw socket: the exact bytes the server sent, once it ended the response
 *  (Connection: close, so the server closes the socket after a complete answer). */
function rawGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const sock = connect(port, '127.0.0.1', () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    });
    sock.on('data', (c: Buffer) => parts.push(c));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(parts).toString('latin1')));
  });
}

/** The payload of a chunked body; throws unless it ends with the final zero-size chunk. */
function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) throw new Error(`chunked body cut off: ${JSON.stringify(rest)}`);
    const size = parseInt(rest.slice(0, eol), 16);
    if (size === 0) {
      if (rest.slice(eol) !== '\r\n\r\n') throw new Error('no end after the final chunk');
      return out;
    }
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

describe('trickle server: go-livepeer 2026 interop', () => {
  it('a segment that ended with zero bytes answers 200 with an empty body, Lp-Trickle-Seq and Lp-Trickle-Latest', async () => {
    const { base, server } = await start();
    await postSegment(base, 'ch', 0, '');
    const done = await fetch(`${base}ch/0`);
    expect(done.status).toBe(200);
    expect(done.headers.get('lp-trickle-seq')).toBe('0');
    expect(done.headers.get('lp-trickle-latest')).toBe('1');
    expect(done.headers.get('lp-trickle-closed')).toBeNull();
    expect(await done.text()).toBe('');

    // a reader parked on the seq before it ended empty gets the same answer
    const parked = openGet(`${base}ch/1`);
    await waitEvent(server, 'get-open', (e) => e.seq === 1);
    await postSegment(base, 'ch', 1, '');
    const res = await parked.response;
    expect(res.statusCode).toBe(200);
    expect(res.headers['lp-trickle-seq']).toBe('1');
    expect(res.headers['lp-trickle-latest']).toBe('2');
    const got = await readAll(res);
    expect(got.error).toBeNull();
    expect(got.body.length).toBe(0);
  });

  it('Lp-Trickle-Reset ends the bodies of readers of older segments cleanly', async () => {
    const { base, server } = await start();
    const stalled = openPost(`${base}ch/2`);
    stalled.req.write('old run');
    await waitEvent(server, 'segment-start', (e) => e.seq === 2);
    const reader = openGet(`${base}ch/2`);
    const res = await reader.response;
    expect((await nextChunk(res)).toString()).toBe('old run');
    const readDone = readAll(res);
    const reset = await postSegment(base, 'ch', 3, 'new run', { 'lp-trickle-reset': '1' });
    expect(reset.status).toBe(200);
    const got = await readDone;
    expect(got.error).toBeNull(); // a complete chunked response, not a cut connection
    expect(got.body.length).toBe(0);
    expect((await stalled.response).statusCode).toBe(200);
    stalled.req.destroy();
    // a late reader of the reset segment gets its bytes and the same clean end
    const late = await readAll(await openGet(`${base}ch/2`).response);
    expect(late).toEqual({ body: Buffer.from('old run'), error: null });
  });

  it('DELETE /ch/seq ends the body of a reader mid-segment with a complete chunked response', async () => {
    const { base, port, server } = await start();
    const pub = openPost(`${base}ch/0`);
    pub.req.write('part of a gop');
    await waitEvent(server, 'segment-start', (e) => e.seq === 0);
    const isOpen = waitEvent(server, 'get-open', (e) => e.seq === 0);
    const raw = rawGet(port, '/ch/0');
    await isOpen;
    expect((await fetch(`${base}ch/0`, { method: 'DELETE' })).status).toBe(200);
    const bytes = await raw;
    expect(bytes).toMatch(/^HTTP\/1\.1 200/);
    expect(bytes).toMatch(/transfer-encoding: chunked/i);
    expect(dechunk(bytes.slice(bytes.indexOf('\r\n\r\n') + 4))).toBe('part of a gop');
    expect((await pub.response).statusCode).toBe(200);
    pub.req.destroy();
  });

  it('GET answers carry the channel content type, whatever a later POST says', async () => {
    const { base } = await start();
    // created by POST /ctl with Expect-Content; fetch posts a string as text/plain
    expect((await fetch(`${base}ctl`, { method: 'POST', headers: { 'expect-content': 'application/json' } })).status).toBe(200);
    expect((await fetch(`${base}ctl/0`, { method: 'POST', body: '{"a":1}' })).status).toBe(200);
    const ctl = await fetch(`${base}ctl/0`);
    expect(ctl.headers.get('content-type')).toBe('application/json');
    expect(await ctl.text()).toBe('{"a":1}');

    // created by its first POST: that POST's type is the channel's
    await postSegment(base, 'ch', 0, 'ts', { 'content-type': 'video/MP2T' });
    await postSegment(base, 'ch', 1, 'ts', { 'content-type': 'video/mp2t' });
    await postSegment(base, 'ch', 2, '', { 'content-type': 'application/octet-stream' });
    for (const seq of [0, 1, 2]) {
      const r = await fetch(`${base}ch/${seq}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type'), `seq ${seq}`).toBe('video/MP2T');
      await r.arrayBuffer();
    }
  });

  it('a publisher writing an older seq does not move Lp-Trickle-Latest back; an explicit reset does', async () => {
    const { base, server } = await start();
    for (let i = 0; i < 4; i++) await postSegment(base, 'ch', i, `s${i}`);
    const rewrite = openPost(`${base}ch/1`);
    rewrite.req.write('again');
    await waitEvent(server, 'segment-start', (e) => e.seq === 1);
    const next = await fetch(`${base}ch/next`);
    expect(next.headers.get('lp-trickle-latest')).toBe('4');
    expect(await next.text()).toBe('4');
    const parked = openGet(`${base}ch/-1`);
    expect((await waitEvent(server, 'get-open')).seq).toBe(4);
    rewrite.req.end();
    expect((await rewrite.response).statusCode).toBe(200);
    const edge = await fetch(`${base}ch/2`);
    expect(edge.headers.get('lp-trickle-latest')).toBe('4');
    await edge.arrayBuffer();

    // a restarted publisher says so with Lp-Trickle-Reset: then the head follows it back
    await postSegment(base, 'ch', 0, 'restart', { 'lp-trickle-reset': '1' });
    expect(await (await fetch(`${base}ch/next`)).text()).toBe('1');
    parked.req.destroy();
  });
});
