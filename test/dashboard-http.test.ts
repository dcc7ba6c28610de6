// The dashboard's HTTP side on a real edge and runtime (embedded bus): the page and its assets are
// public, everything else needs the token or the read-only session cookie, the feed's first event,
// thumbnails served from what workers publish, and the machine JSON the diagrams are drawn from.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subjects } from '../src/transport/subjects.ts';
import { sessionValue } from '../src/http/session.ts';
// @ts-expect-error: a browser module (plain JS) with no type declarations
import { activeStateIds, layoutMachine } from '../src/http/ui/diagram.js';
import { call, startEdge, type TestEdge } from './helpers/http-app.ts';

const TOKEN = 't0ken';
let edge: TestEdge;
const bearer = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  edge = await startEdge({ http: { authToken: TOKEN }, logLevel: 'silent' });
});
afterAll(async () => edge.close());

/** Reads an SSE response until `events` events arrived, then aborts it. */
async function readEvents(path: string, headers: Record<string, string>, events: number): Promise<Array<{ event: string; data: any }>> {
  const ac = new AbortController();
  const res = await fetch(edge.origin + path, { headers, signal: ac.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const out: Array<{ event: string; data: any }> = [];
  let buf = '';
  const reader = res.body!.getReader();
  while (out.length < events) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += Buffer.from(value).toString('utf8');
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (ev && data) out.push({ event: ev, data: JSON.parse(data) });
    }
  }
  ac.abort();
  return out;
}

describe('the dashboard over HTTP', () => {
  it('serves the page and its assets without a token, under a self-only CSP', async () => {
    const page = await call(edge.origin, 'GET', '/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.text).toContain('/ui/app.js');
    for (const asset of ['/ui/app.js', '/ui/diagram.js', '/ui/style.css', '/ui/vendor/mpegts/mpegts.js']) {
      const r = await call(edge.origin, 'GET', asset);
      expect(r.status, asset).toBe(200);
    }
    // Only the player's own files are reachable under the vendor prefix.
    expect((await call(edge.origin, 'GET', '/ui/vendor/mpegts/package.json')).status).toBe(404);
    // A dot-dot path leaves /ui/ (the URL is normalised) and meets the auth hook.
    expect((await call(edge.origin, 'GET', '/ui/../config.ts')).status).toBe(401);
    expect((await call(edge.origin, 'GET', '/ui/nothing-here.js')).status).toBe(404);
  });

  it('needs the token for everything else, and trades it for a read-only session cookie', async () => {
    expect((await call(edge.origin, 'GET', '/dashboard/feed')).status).toBe(401);
    expect((await call(edge.origin, 'GET', '/dashboard/session')).status).toBe(401);
    expect((await call(edge.origin, 'POST', '/dashboard/session', undefined, { authorization: 'Bearer nope' })).status).toBe(401);
    const s = await call(edge.origin, 'POST', '/dashboard/session', undefined, bearer);
    expect(s.status).toBe(200);
    expect(s.json.auth).toBe('token');
    const setCookie = s.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^sf_session=v1\.\d+\.[\w-]+; Max-Age=43200; Path=\/; HttpOnly; SameSite=Strict$/);
    const cookie = { cookie: setCookie.split(';')[0] };
    expect((await call(edge.origin, 'GET', '/dashboard/session', undefined, cookie)).status).toBe(200);
    expect((await call(edge.origin, 'GET', '/streams', undefined, cookie)).status).toBe(200);
    // Read-only: no change goes through on the cookie alone.
    expect((await call(edge.origin, 'POST', '/stream/stop', {}, cookie)).status).toBe(401);
    expect((await call(edge.origin, 'DELETE', '/stream/x', undefined, cookie)).status).toBe(401);
    // Forged, expired, or made with another token: refused.
    const forged = { cookie: `sf_session=${setCookie.split(';')[0].split('=')[1].slice(0, -2)}xx` };
    expect((await call(edge.origin, 'GET', '/streams', undefined, forged)).status).toBe(401);
    expect((await call(edge.origin, 'GET', '/streams', undefined, { cookie: `sf_session=${sessionValue(TOKEN, Date.now() - 1)}` })).status).toBe(401);
    expect((await call(edge.origin, 'GET', '/streams', undefined, { cookie: `sf_session=${sessionValue('other', Date.now() + 60_000)}` })).status).toBe(401);
    const out = await call(edge.origin, 'DELETE', '/dashboard/session', undefined, bearer);
    expect(out.headers.get('set-cookie')).toMatch(/^sf_session=; Max-Age=0;/);
  });

  it('opens the feed with a snapshot of this node and its streams', async () => {
    const [snap] = await readEvents('/dashboard/feed', bearer, 1);
    expect(snap.event).toBe('snapshot');
    expect(snap.data.node).toMatchObject({ node_id: 'node-1', running: 0, ready: true, bus: 'local' });
    // Capacity is what the node measures it can carry, at most actors.maxStreams (16 by default).
    expect(snap.data.node.capacity).toBeGreaterThan(0);
    expect(snap.data.node.capacity).toBeLessThanOrEqual(16);
    expect(snap.data.nodes.map((n: { node_id: string }) => n.node_id)).toEqual(['node-1']);
    expect(typeof snap.data.node.heartbeat_at).toBe('number');
    expect(snap.data.streams).toEqual([]);
    expect(snap.data.interval_ms).toBe(1000);
  });

  it('serves the latest thumbnail a worker published, and announces it on the feed', async () => {
    expect((await call(edge.origin, 'GET', '/stream/cam/thumbnail/input', undefined, bearer)).json.code).toBe('THUMBNAIL_NOT_FOUND');
    const feed = readEvents('/dashboard/feed', bearer, 2);
    await new Promise((r) => setTimeout(r, 100));
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 1, 2, 3, 0xff, 0xd9]);
    edge.bus.publish(subjects.streamThumb('cam', 'input'), jpeg);
    await edge.bus.flush();
    const [, note] = await feed;
    expect(note.event).toBe('thumbnail');
    expect(note.data).toMatchObject({ stream_id: 'cam', side: 'input', bytes: jpeg.length });
    const res = await fetch(`${edge.origin}/stream/cam/thumbnail/input`, { headers: bearer });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(Number(res.headers.get('x-thumbnail-seq'))).toBe(note.data.seq);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(jpeg);
    expect((await call(edge.origin, 'GET', '/stream/cam/thumbnail/sideways', undefined, bearer)).status).toBe(400);
    expect((await call(edge.origin, 'GET', '/stream/nope/output.ts', undefined, bearer)).status).toBe(404);
  });

  it('serves machine definitions with their eventless transitions, which the diagrams draw', async () => {
    for (const name of ['stream', 'worker']) {
      const def = (await call(edge.origin, 'GET', `/inspect/machines/${name}`, undefined, bearer)).json;
      const layout = layoutMachine(def);
      const ids = new Set<string>();
      const walk = (n: any) => {
        ids.add(n.id);
        for (const c of Object.values(n.states ?? {})) walk(c);
      };
      walk(def);
      // A box per state, each inside its parent's box, siblings never overlapping.
      expect(new Set(layout.boxes.map((b: any) => b.id))).toEqual(ids);
      const byId = new Map(layout.boxes.map((b: any) => [b.id, b]));
      for (const b of layout.boxes as any[]) {
        const parentId = b.id.split('.').slice(0, -1).join('.');
        const p: any = byId.get(parentId);
        if (!p) continue;
        expect(b.x >= p.x && b.y >= p.y && b.x + b.w <= p.x + p.w + 0.01 && b.y + b.h <= p.y + p.h + 0.01, `${b.id} inside ${p.id}`).toBe(true);
        for (const o of layout.boxes as any[]) {
          if (o === b || o.id.split('.').slice(0, -1).join('.') !== parentId) continue;
          const apart = b.x + b.w <= o.x || o.x + o.w <= b.x || b.y + b.h <= o.y || o.y + o.h <= b.y;
          expect(apart, `${b.id} and ${o.id} overlap`).toBe(true);
        }
      }
      for (const e of layout.edges) expect(ids.has(e.from) && ids.has(e.to)).toBe(true);
    }
    const stream = (await call(edge.origin, 'GET', '/inspect/machines/stream', undefined, bearer)).json;
    expect(stream.states.active.states.spawning.always.map((t: any) => t.target[0])).toEqual(['#stream.active.running', '#stream.active.warmup']);
    const edges = layoutMachine(stream).edges;
    expect(edges.find((e: any) => e.from === 'stream.active.running' && e.to === 'stream.active.restarting')?.events).toEqual(['always [anyWorkerRestarting]']);
    expect(activeStateIds('worker', { live: { running: { liveness: 'watching', prompts: 'idle' } } })).toEqual([
      'worker.live',
      'worker.live.running',
      'worker.live.running.liveness',
      'worker.live.running.liveness.watching',
      'worker.live.running.prompts',
      'worker.live.running.prompts.idle',
    ]);
  });

  it('ends its live feeds at once when the edge closes', async () => {
    const other = await startEdge({ logLevel: 'silent' });
    const open = async (path: string) => {
      const res = await fetch(other.origin + path);
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      await reader.read();
      // Wrapped: an async function returning a promise would wait for it.
      return {
        done: (async () => {
          for (;;) if ((await reader.read()).done) return;
        })(),
      };
    };
    const feeds = [await open('/dashboard/feed'), await open('/inspect/events?replay=true')];
    const t0 = Date.now();
    await other.close();
    await Promise.all(feeds.map((f) => f.done));
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});
