// The worker process's life around the media path: commands and their typed errors, input that
// never appears, input stalls (degraded), the control and events channels, shared graphs across
// streams, and the ways the process ends (shutdown, SIGTERM, the parent going away).
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeClip, tempDir } from './helpers/clips.ts';
import { startNatsServer } from './helpers/nats-server.ts';
import { startServer, waitEvent, type Running } from './helpers/trickle.ts';
import { clipSegments, identityPrompt, invertPrompt, publishLive, pullChannel, startWorker, type WorkerProc, entry } from './helpers/worker-proc.ts';
import type { TsSegment } from '../src/media/segmenter.ts';
import { TricklePublisher } from '../src/transport/trickle/publisher.ts';
import { TrickleSubscriber } from '../src/transport/trickle/subscriber.ts';

const W = 320;
const H = 240;

let trickle: Running;
let dir: { path: string; remove(): void };
let segments: TsSegment[];
const procs: WorkerProc[] = [];

beforeAll(async () => {
  trickle = await startServer();
  if (process.env.SF_TEST_DEBUG) for (const ev of ['channel-created', 'channel-closed', 'post-open', 'segment-end', 'get-open'] as const) trickle.server.events.on(ev, (e: unknown) => process.stderr.write(`${Date.now() % 100000} ${ev} ${JSON.stringify(e)}\n`));
  dir = tempDir('sf-worker-life-');
  const clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 4, width: W, height: H, fps: 30 });
  segments = await clipSegments(clip);
});

afterAll(async () => {
  await trickle?.server.close();
  dir?.remove();
});

afterEach(async (ctx) => {
  if (process.env.SF_TEST_DEBUG && ctx.task.result?.state === 'fail') for (const p of procs) process.stderr.write(p.stderr());
  for (const p of procs.splice(0)) await p.stop();
});

async function worker(actors: Record<string, unknown> = {}): Promise<WorkerProc> {
  const p = await startWorker({ config: { inference: { workspace: join(dir.path, 'ws') }, actors, ...(process.env.SF_TEST_DEBUG ? { logLevel: 'debug' } : {}) } });
  procs.push(p);
  return p;
}

function streamConfig(id: string, over: Record<string, unknown> = {}) {
  return { streamId: id, subscribeUrl: `${trickle.base}${id}`, publishUrl: `${trickle.base}${id}-out`, width: W, height: H, activePromptId: 'p0', ...over };
}

const p0 = [entry('p0', invertPrompt())];

describe('worker process commands', () => {
  it('answers malformed and impossible commands with typed errors and keeps serving', async () => {
    const w = await worker();
    expect(await w.send({ type: 'no_such_command' })).toMatchObject({ ok: false, code: 'BAD_COMMAND' });
    expect(await w.send({ type: 'add_worker', streamId: 'nope', workerId: 'w0', prompts: p0 })).toMatchObject({ ok: false, code: 'UNKNOWN_STREAM' });
    await w.ok({ type: 'open_stream', stream: streamConfig('cmd1') });
    expect(await w.ok({ type: 'open_stream', stream: streamConfig('cmd1') })).toEqual({ opened: false });
    // A worker does not validate prompts again: one that did not pass validation (no resolved graph)
    // is a malformed command, and a graph it cannot compile is refused as such.
    const bad = { id: 'p0', prompt: { '1': { class_type: 'LoadTensor', inputs: {} }, '2': { class_type: 'NoSuchNode', inputs: { image: ['1', 0] } } } };
    expect(await w.send({ type: 'add_worker', streamId: 'cmd1', workerId: 'w0', prompts: [bad] })).toMatchObject({ ok: false, code: 'BAD_COMMAND' });
    const uncompilable = entry('p0', invertPrompt());
    uncompilable.graph.nodes = uncompilable.graph.nodes.map((n) => (n.classType === 'ImageInvert' ? { ...n, classType: 'NoSuchNode' } : n));
    expect(await w.send({ type: 'add_worker', streamId: 'cmd1', workerId: 'w0', prompts: [uncompilable] })).toMatchObject({ ok: false, code: 'PROMPT_REJECTED' });
    await w.ok({ type: 'add_worker', streamId: 'cmd1', workerId: 'w0', prompts: p0 });
    expect(await w.send({ type: 'add_worker', streamId: 'cmd1', workerId: 'w0', prompts: p0 })).toMatchObject({ ok: false, code: 'WORKER_EXISTS' });
    expect(await w.send({ type: 'switch_prompt', streamId: 'cmd1', promptId: 'zz' })).toMatchObject({ ok: false, code: 'PROMPT_NOT_FOUND' });
    expect(await w.send({ type: 'remove_worker', streamId: 'cmd1', workerId: 'w9' })).toMatchObject({ ok: false, code: 'UNKNOWN_WORKER' });
    expect(await w.ok({ type: 'remove_worker', streamId: 'cmd1', workerId: 'w0' })).toEqual({ removed: true });
    expect(await w.ok({ type: 'ping' })).toMatchObject({ pid: w.pid, streams: ['cmd1'] });
  });

  it('shares one compiled graph between streams whose workers hold the same prompt at the same size', async () => {
    const w = await worker();
    await w.ok({ type: 'open_stream', stream: streamConfig('sh1') });
    await w.ok({ type: 'open_stream', stream: streamConfig('sh2') });
    const a = await w.ok({ type: 'add_worker', streamId: 'sh1', workerId: 'shared', prompts: p0 });
    const b = await w.ok({ type: 'add_worker', streamId: 'sh2', workerId: 'shared', prompts: p0 });
    expect(a.sharedGraphs).toBe(0);
    expect(b.sharedGraphs).toBe(1);
    // A different size is a different graph.
    await w.ok({ type: 'open_stream', stream: streamConfig('sh3', { width: 160, height: 120 }) });
    expect((await w.ok({ type: 'add_worker', streamId: 'sh3', workerId: 'shared', prompts: p0 })).sharedGraphs).toBe(0);
  });

  it('re-warms at a new size when an update changes width and height', async () => {
    const w = await worker();
    await w.ok({ type: 'open_stream', stream: streamConfig('size1') });
    await w.ok({ type: 'add_worker', streamId: 'size1', workerId: 'w0', prompts: p0 });
    const same = await w.ok({ type: 'update_prompts', streamId: 'size1', workerId: 'w0', prompts: [entry('p0', identityPrompt())] });
    expect(same.warmupPerformed).toBe(false);
    const resized = await w.ok({ type: 'update_prompts', streamId: 'size1', workerId: 'w0', prompts: p0, width: 160, height: 120 });
    expect(resized.warmupPerformed).toBe(true);
  });
});

describe('worker process input and side channels', () => {
  it('reports input_timeout when the input channel never appears', async () => {
    const w = await worker({ inputWaitMs: 1_500 });
    const events = w.events('nin1');
    await w.ok({ type: 'open_stream', stream: streamConfig('nin1') });
    await w.ok({ type: 'add_worker', streamId: 'nin1', workerId: 'w0', prompts: p0 });
    const e = await events.waitFor((x) => x.type === 'input_ended', 30_000, 'input_ended');
    expect(e).toMatchObject({ type: 'input_ended', reason: 'input_timeout' });
  });

  it('marks the stream degraded while the input stalls and recovers when it returns', async () => {
    const w = await worker({ degradedInputMs: 700 });
    const id = 'deg1';
    const events = w.events(id);
    await w.ok({ type: 'open_stream', stream: streamConfig(id) });
    await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: p0 });
    const pull = pullChannel(`${trickle.base}${id}-out`);
    await publishLive(`${trickle.base}${id}`, segments, { pauseBefore: (i) => (i === 1 ? 2_000 : 0) });
    await events.waitFor((e) => e.type === 'input_ended', 30_000, 'input_ended');
    const flags = events.items.filter((e) => e.type === 'degraded').map((e) => (e.type === 'degraded' ? e.degraded : null));
    expect(flags.slice(0, 2)).toEqual([true, false]);
    await w.ok({ type: 'close_stream', streamId: id });
    await pull.done;
  });

  it('relays control messages, ignores keep-alives, and ends on a closed control channel; posts status and trace events', async () => {
    const w = await worker({ eventsIntervalMs: 300 });
    const id = 'ctl1';
    const events = w.events(id);
    const controlUrl = `${trickle.base}${id}-control`;
    const eventsUrl = `${trickle.base}${id}-events`;
    const control = new TricklePublisher(controlUrl, { contentType: 'application/json' });
    await control.writeSegment(Buffer.from(JSON.stringify({ keep: 'alive' })));
    // The worker reads the control channel from its current segment.
    const gotEvents = new TrickleSubscriber(eventsUrl, { start: 0, waitForChannel: 60_000 });
    const posted: Array<{ event: Record<string, unknown>; queue_event_type: string }> = [];
    const reading = (async () => {
      for await (const seg of gotEvents) posted.push(JSON.parse((await seg.bytes()).toString()));
    })().catch(() => undefined);

    await w.ok({ type: 'open_stream', stream: streamConfig(id, { controlUrl, eventsUrl }) });
    await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: p0 });
    const pull = pullChannel(`${trickle.base}${id}-out`);
    const input = await publishLive(`${trickle.base}${id}`, segments.slice(0, 1), { close: false });
    await control.writeSegment(Buffer.from(JSON.stringify({ keep: 'alive' })));
    await control.writeSegment(Buffer.from(JSON.stringify({ prompts: { a: 1 }, extra: true })));
    const c = await events.waitFor((e) => e.type === 'control', 30_000, 'control event');
    expect(c).toEqual({ type: 'control', params: { prompts: { a: 1 }, extra: true } });

    const closed = waitEvent(trickle.server, 'channel-closed', (e) => e.channel === `${id}-control`);
    await control.close();
    await closed;
    const ended = await events.waitFor((e) => e.type === 'input_ended', 30_000, 'input_ended');
    expect(ended).toMatchObject({ reason: 'control_closed' });
    expect(events.items.filter((e) => e.type === 'control')).toHaveLength(1);

    await w.ok({ type: 'close_stream', streamId: id });
    await pull.done;
    await input.close();
    gotEvents.close();
    await reading;
    const status = posted.filter((p) => p.queue_event_type === 'ai_stream_events' && p.event.type === 'status');
    expect(status.length).toBeGreaterThan(0);
    expect(status.every((s) => typeof s.event.timestamp === 'number' && s.event.stream_id === id)).toBe(true);
    const traces = posted.filter((p) => p.queue_event_type === 'stream_trace').map((p) => p.event.type);
    expect(traces).toContain('runner_receive_first_ingest_segment');
    expect(traces).toContain('runner_send_first_processed_segment');
  });
});

describe('worker process output failure and NATS', () => {
  it('reports output_failed when the output channel refuses segments', async () => {
    // An orchestrator that does not create channels on POST: publishing to an unknown one is 404.
    const strict = await startServer({ autoCreate: false });
    try {
      const w = await worker();
      const id = 'of1';
      const events = w.events(id);
      await w.ok({ type: 'open_stream', stream: streamConfig(id, { publishUrl: `${strict.base}${id}-out` }) });
      await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: p0 });
      const input = await publishLive(`${trickle.base}${id}`, segments.slice(0, 1), { close: false });
      const e = await events.waitFor((x) => x.type === 'output_failed', 30_000, 'output_failed');
      expect(e.type === 'output_failed' && e.reason).toMatch(/^CHANNEL_NOT_FOUND: /);
      await w.ok({ type: 'close_stream', streamId: id });
      await input.close();
    } finally {
      await strict.server.close();
    }
  });

  it('joins a real nats-server when SF_NATS_URL is set', async () => {
    const nats = await startNatsServer();
    try {
      const w = await startWorker({ natsUrl: nats.url, config: { inference: { workspace: join(dir.path, 'ws') } } });
      procs.push(w);
      expect(await w.ok({ type: 'ping' })).toMatchObject({ pid: w.pid });
      const hbs = w.heartbeats('nats1');
      await w.ok({ type: 'open_stream', stream: streamConfig('nats1') });
      await w.ok({ type: 'add_worker', streamId: 'nats1', workerId: 'w0', prompts: p0 });
      const hb = await hbs.waitFor((h) => h.workerId === 'w0', 30_000, 'heartbeat');
      expect(hb).toMatchObject({ pid: w.pid, streamId: 'nats1', activePromptId: 'p0' });
      await w.ok({ type: 'shutdown' });
      expect(await w.exited).toEqual({ code: 0, signal: null });
    } finally {
      for (const p of procs.splice(0)) await p.stop();
      await nats.stop();
    }
  });
});

describe('worker process exit', () => {
  it('deletes the output channel on close_stream and exits 0 on shutdown', async () => {
    const w = await worker();
    const id = 'end1';
    // As an orchestrator does: the output channel exists before the worker publishes, so the reader parks on seq 0.
    trickle.server.createChannel(`${id}-out`);
    await w.ok({ type: 'open_stream', stream: streamConfig(id) });
    await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: p0 });
    const pull = pullChannel(`${trickle.base}${id}-out`);
    const events = w.events(id);
    const publishing = publishLive(`${trickle.base}${id}`, segments.slice(0, 1), { close: false });
    await events.waitFor((e) => e.type === 'first_output', 30_000, 'first_output');
    const deleted = waitEvent(trickle.server, 'channel-closed', (e) => e.channel === `${id}-out` && e.reason === 'deleted');
    await w.ok({ type: 'close_stream', streamId: id });
    await deleted;
    await pull.done;
    expect(pull.segments.length).toBe(1);
    await (await publishing).close();
    expect(trickle.server.channels()).not.toContain(`${id}-out`);
    await w.ok({ type: 'shutdown' });
    expect(await w.exited).toEqual({ code: 0, signal: null });
  });

  it('closes its streams and exits 0 on SIGTERM', async () => {
    const w = await worker();
    const id = 'term1';
    // As an orchestrator does: the output channel exists before the worker publishes, so the reader parks on seq 0.
    trickle.server.createChannel(`${id}-out`);
    await w.ok({ type: 'open_stream', stream: streamConfig(id) });
    await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: p0 });
    const events = w.events(id);
    const pull = pullChannel(`${trickle.base}${id}-out`);
    const publishing = publishLive(`${trickle.base}${id}`, segments.slice(0, 1), { close: false });
    await events.waitFor((e) => e.type === 'first_output', 30_000, 'first_output');
    const deleted = waitEvent(trickle.server, 'channel-closed', (e) => e.channel === `${id}-out`);
    w.child.kill('SIGTERM');
    expect(await w.exited).toEqual({ code: 0, signal: null });
    await deleted;
    await pull.done;
    await (await publishing).close();
  });

  it('exits when its parent goes away (the IPC channel closes)', async () => {
    const w = await worker();
    await w.ok({ type: 'open_stream', stream: streamConfig('orph1') });
    w.child.disconnect();
    expect(await w.exited).toEqual({ code: 0, signal: null });
  });
});
