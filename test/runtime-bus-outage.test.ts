// A NATS outage with a node and its real worker processes on one real nats-server, killed by pid
// and started again on the same port with the same store. The data plane (trickle in, graph,
// trickle out) does not need the bus: no worker is restarted and no frame is lost, while the edge
// says so plainly (/readyz 503, the API 503 BUS_UNAVAILABLE at once); once the server is back the
// node reconnects, new starts work and the stream records are still there.
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { makeClip, probeFramePts, tempDir } from './helpers/clips.ts';
import { startNatsServer, type NatsServerHandle } from './helpers/nats-server.ts';
import { alive, api, startBody, startNode, waitEvent, waitState, waitStatus, type TestNode } from './helpers/runtime-node.ts';
import { collectOutput, publishClip } from './helpers/stream-io.ts';

const dir = tempDir('sf-outage-');
let node: TestNode | undefined;
let nats: NatsServerHandle | undefined;
afterAll(() => dir.remove());
afterEach(async () => {
  if (node) {
    const { orphans } = await node.close();
    node = undefined;
    expect(orphans).toEqual([]);
  }
  await nats?.stop();
  nats = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, pred: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** One API call and how long it took to answer. */
async function timed(n: TestNode, method: string, path: string, body?: unknown) {
  const t0 = performance.now();
  const r = await api(n.origin, method, path, body);
  return { ...r, ms: performance.now() - t0 };
}

/** Everything the edge must say while the bus is down: not ready, and 503 BUS_UNAVAILABLE at once. */
async function checkEdgeDuringOutage(n: TestNode, id: string): Promise<void> {
  const ready = await api(n.origin, 'GET', '/readyz');
  expect(ready.status).toBe(503);
  expect(ready.json.reasons).toContain('bus unavailable (reconnecting)');
  const calls = [
    await timed(n, 'GET', `/stream/${id}`),
    await timed(n, 'GET', '/streams'),
    await timed(n, 'POST', '/stream/start', startBody(n, { id: `${id}-during` })),
    await timed(n, 'POST', `/stream/${id}/stop`),
  ];
  for (const c of calls) {
    expect(c.status, JSON.stringify(c.json)).toBe(503);
    expect(c.json.code).toBe('BUS_UNAVAILABLE');
    expect(c.ms).toBeLessThan(1_000);
  }
}

/**
 * Streams a `seconds` clip through one dedicated stream with the bus down for `outageMs` from 3 s
 * in, and checks the stream, the edge and the records before, during and after.
 */
async function runOutage(seconds: number, outageMs: number): Promise<void> {
  const clip = await makeClip(join(dir.path, `in-${seconds}.ts`), { seconds, fps: 30, gop: 30, width: 160, height: 120 });
  const inputFrames = (await probeFramePts(clip)).length;
  nats = await startNatsServer();
  node = await startNode({ actors: { maxFramesInFlight: 8 }, bus: { natsUrl: nats.url, reconnectTimeWaitMs: 250 } });
  const n = node;
  const id = `steady${seconds}`;

  const started = await api(n.origin, 'POST', '/stream/start', startBody(n, { id }));
  expect(started.status, JSON.stringify(started.json)).toBe(200);
  const before = (await api(n.origin, 'GET', `/stream/${id}`)).json;
  const pid = before.worker_status.pid as number;
  expect(pid).toBeGreaterThan(0);

  const output = collectOutput(`${n.trickleBase}/${id}-out`, join(dir.path, `${id}.ts`));
  const ended = waitState(n, id, 'terminated', (seconds + 60) * 1000);
  const published = publishClip(`${n.trickleBase}/${id}-in`, clip, { close: true });

  await sleep(3_000);
  const killedAt = Date.now();
  await nats.kill();
  await until('node sees the bus down', () => n.bus.connection() === 'down', 5_000);
  await checkEdgeDuringOutage(n, id);
  // Again near the end of the outage: by then the old code had restarted the worker.
  await sleep(Math.max(0, killedAt + outageMs - 1_500 - Date.now()));
  await checkEdgeDuringOutage(n, id);
  await sleep(Math.max(0, killedAt + outageMs - Date.now()));
  await nats.restart();

  await until('/readyz ready again', async () => (await api(n.origin, 'GET', '/readyz')).status === 200, 15_000);
  const after = await api(n.origin, 'GET', `/stream/${id}`);
  expect(after.status, JSON.stringify(after.json)).toBe(200);
  expect(after.json.state).toBe('running');
  expect(after.json.worker_status).toMatchObject({ state: 'running', pid, restart_count: 0 });
  const kv = await n.bus.kv(n.config.bus.streamsBucket);
  expect(await kv.keys()).toContain(id);

  // A new start works, and so does its stop.
  const fresh = await api(n.origin, 'POST', '/stream/start', startBody(n, { id: `${id}-after` }));
  expect(fresh.status, JSON.stringify(fresh.json)).toBe(200);
  expect((await api(n.origin, 'DELETE', `/stream/${id}-after`)).status).toBe(200);

  await published;
  const st = await ended;
  expect(st.end_reason).toBe('input_ended');
  expect(st.worker_status.restart_count).toBe(0);
  expect(st.restart_count).toBe(0);
  expect(n.events.filter((e) => e.type === 'worker_restart')).toEqual([]);
  expect(st.stats.frames_dropped).toBe(0);
  expect(st.frame_count).toBe(inputFrames);
  expect((await probeFramePts((await output).path)).length).toBe(inputFrames);
}

describe('runtime: a NATS outage', () => {
  it('5 s: no worker restarted, no frame lost, the edge answers 503 BUS_UNAVAILABLE fast, all back after', async () => {
    await runOutage(12, 5_000);
  }, 90_000);

  it('a worker that really dies during the outage is restarted once, forked when the bus is back', async () => {
    const clip = await makeClip(join(dir.path, 'in-crash.ts'), { seconds: 10, fps: 30, gop: 30, width: 160, height: 120 });
    nats = await startNatsServer();
    node = await startNode({ bus: { natsUrl: nats.url, reconnectTimeWaitMs: 250 } });
    const n = node;
    expect((await api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'crasher' }))).status).toBe(200);
    const pid = (await api(n.origin, 'GET', '/stream/crasher')).json.worker_status.pid as number;
    const output = collectOutput(`${n.trickleBase}/crasher-out`, join(dir.path, 'crasher.ts'));
    const ended = waitState(n, 'crasher', 'terminated', 60_000);
    const published = publishClip(`${n.trickleBase}/crasher-in`, clip, { close: true });
    await sleep(2_000);

    await nats.kill();
    await until('node sees the bus down', () => n.bus.connection() === 'down', 5_000);
    const restarted = waitEvent(n, (e) => e.type === 'worker_restart' && e.streamId === 'crasher', 5_000);
    process.kill(pid, 'SIGKILL');
    expect(await restarted).toMatchObject({ reason: 'killed by signal SIGKILL' });
    // Reaped and backed off, but no new process while the bus is down.
    await sleep(2_000);
    expect(alive(pid)).toBe(false);
    expect(n.runtime.processes()).toEqual([]);
    expect(n.events.filter((e) => e.type === 'worker_restart')).toHaveLength(1);

    await nats.restart();
    const back = await waitStatus(n, 'crasher', (s) => s.worker_status.state === 'running', 30_000);
    expect(back.worker_status.restart_count).toBe(1);
    expect(back.worker_status.pid).not.toBe(pid);
    await published;
    expect((await ended).end_reason).toBe('input_ended');
    await output;
  }, 90_000);

  it('an input that ends during the outage ends the stream once the bus is back (its event was held)', async () => {
    const clip = await makeClip(join(dir.path, 'in-short.ts'), { seconds: 4, fps: 30, gop: 30, width: 160, height: 120 });
    const inputFrames = (await probeFramePts(clip)).length;
    nats = await startNatsServer();
    node = await startNode({ actors: { maxFramesInFlight: 8 }, bus: { natsUrl: nats.url, reconnectTimeWaitMs: 250 } });
    const n = node;
    expect((await api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'shortie' }))).status).toBe(200);
    const output = collectOutput(`${n.trickleBase}/shortie-out`, join(dir.path, 'shortie.ts'));
    const ended = waitState(n, 'shortie', 'terminated', 60_000);
    const published = publishClip(`${n.trickleBase}/shortie-in`, clip, { close: true });
    await sleep(1_000);
    await nats.kill();
    await until('node sees the bus down', () => n.bus.connection() === 'down', 5_000);
    await published;
    // The input is over and its frames are out, but the news waits for the bus.
    await sleep(3_000);
    const isEnd = (e: (typeof n.events)[number]) => e.type === 'state' && e.actor === 'stream' && e.streamId === 'shortie' && e.state === 'terminated';
    expect(n.events.some(isEnd)).toBe(false);
    await nats.restart();
    const st = await ended;
    expect(st.end_reason).toBe('input_ended');
    expect(st.worker_status.restart_count).toBe(0);
    expect(st.frame_count).toBe(inputFrames);
    expect((await probeFramePts((await output).path)).length).toBe(inputFrames);
  }, 90_000);

  it('60 s: the same over a minute (past the restart budget of the old behaviour)', async () => {
    await runOutage(70, 60_000);
  }, 150_000);
});
