// Many start/stop cycles leave nothing behind: no worker process, no trickle channel, no stream
// record, and the node's memory does not grow with them.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, api, startBody, startNode, waitEvent, type TestNode } from './helpers/runtime-node.ts';

let node: TestNode | undefined;
afterEach(async () => {
  if (!node) return;
  const { orphans } = await node.close();
  node = undefined;
  expect(orphans).toEqual([]);
});

const CYCLES = 50;
const PARALLEL = 5;

/** A real full GC (vitest's workers run without --expose-gc), so RSS compares live memory. */
setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;
function settledRss(): number {
  gc();
  gc();
  return process.memoryUsage().rss;
}

async function cycle(n: TestNode, id: string): Promise<number> {
  const s = await api(n.origin, 'POST', '/stream/start', startBody(n, { id }));
  expect(s.status, JSON.stringify(s.json)).toBe(200);
  const pid = (await api(n.origin, 'GET', `/stream/${id}`)).json.worker_status.pid as number;
  expect((await api(n.origin, 'DELETE', `/stream/${id}`)).status).toBe(200);
  return pid;
}

describe('runtime: start/stop cycles', () => {
  it('a stream stopped while it is still starting answers 504 with its state and leaves no process', async () => {
    node = await startNode();
    const n = node;
    const spawning = waitEvent(n, (e) => e.type === 'state' && e.actor === 'stream' && e.streamId === 'early' && e.state === 'spawning');
    const start = api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'early' }));
    await spawning;
    expect((await api(n.origin, 'DELETE', '/stream/early')).status).toBe(200);
    const r = await start;
    expect(r.status).toBe(504);
    expect(r.json.state).toBe('terminated');
    // The fork that was under way is ended once it has joined.
    const deadline = Date.now() + 30_000;
    while (n.runtime.processes().length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    expect(n.runtime.processes()).toEqual([]);
    expect([...n.pidsSeen].filter(alive)).toEqual([]);
  }, 60_000);

  it('with a spare pool, the next start takes the idle joined process instead of forking', async () => {
    node = await startNode({ actors: { spareWorkers: 1 } });
    const n = node;
    expect(n.runtime.processes({ spares: true })).toEqual([]); // an idle node forks nothing
    await cycle(n, 'first');
    const deadline = Date.now() + 30_000;
    const spare = () => n.runtime.processes({ spares: true }).find((p) => p.key === 'spare' && p.joined);
    while (!spare() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    const idle = spare();
    expect(idle).toBeDefined();
    expect((await api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'second' }))).status).toBe(200);
    expect((await api(n.origin, 'GET', '/stream/second')).json.worker_status.pid).toBe(idle!.pid);
    expect(n.runtime.processes().map((p) => p.key)).toEqual(['stream:second']);
    expect((await api(n.origin, 'DELETE', '/stream/second')).status).toBe(200);
    expect(alive(idle!.pid)).toBe(false);
  }, 120_000);

  it(`${CYCLES} start/stop cycles leave no process, no channel, no record, and RSS grows < 10%`, async () => {
    node = await startNode({ actors: { endedStreamRetentionMs: 0 } });
    const n = node;
    const pids: number[] = [];
    // Warm-up: module caches, JIT and pools settle before the baseline.
    for (let b = 0; b < 2; b++) pids.push(...(await Promise.all(Array.from({ length: PARALLEL }, (_, i) => cycle(n, `warm${b}-${i}`)))));
    const rss0 = settledRss();
    for (let b = 0; b < CYCLES / PARALLEL; b++) {
      pids.push(...(await Promise.all(Array.from({ length: PARALLEL }, (_, i) => cycle(n, `c${b}-${i}`)))));
    }
    const rss1 = settledRss();
    expect(new Set(pids).size).toBe(pids.length);
    expect(pids.filter(alive)).toEqual([]);
    expect(n.runtime.processes()).toEqual([]);
    expect(n.trickle.channels()).toEqual([]);
    // Ended streams are dropped (retention 0) along with their KV records.
    await new Promise((r) => setImmediate(r));
    expect((await api(n.origin, 'GET', '/streams')).json.count).toBe(0);
    const kv = await n.bus.kv(n.config.bus.streamsBucket);
    expect(await kv.keys()).toEqual([]);
    expect(n.runtime.inspectActors()).toEqual([]);
    expect(n.runtime.recentInspection().length).toBeLessThanOrEqual(n.config.http.inspectBufferSize);
    expect((rss1 - rss0) / rss0).toBeLessThan(0.1);
  }, 600_000);
});
