// Every route of the API doc answered by a real running stream, under both prefixes: start (and its
// aliases), status, worker, update-prompts, restart-worker, prompts, switch-prompt, workspace-info,
// the lists, stop. Then /metrics after frames flowed, and /inspect/events while a worker is killed.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeClip, tempDir } from './helpers/clips.ts';
import { api, startBody, startNode, waitEvent, waitState, type TestNode } from './helpers/runtime-node.ts';
import { publishClip } from './helpers/stream-io.ts';

const INVERT = {
  '1': { class_type: 'LoadTensor', inputs: {} },
  '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
  '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } },
};
const BLUR = {
  '1': { class_type: 'LoadTensor', inputs: {} },
  '2': { class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 3, sigma: 1 } },
  '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } },
};

const dir = tempDir('sf-http-streams-');
let clip: string;
let node: TestNode;

beforeAll(async () => {
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 30, fps: 30, gop: 30, width: 160, height: 120 });
  node = await startNode({ actors: { maxFramesInFlight: 8 } });
});
afterAll(async () => {
  const { orphans } = await node.close();
  dir.remove();
  expect(orphans).toEqual([]);
});

describe.each(['', '/live'])('stream routes with a running stream (prefix "%s")', (prefix) => {
  const id = `api${prefix.replace('/', '-')}`;
  const abort = new AbortController();
  afterAll(() => abort.abort());

  it('starts a dedicated stream and answers with the documented config', async () => {
    void publishClip(`${node.trickleBase}/${id}-in`, clip, { signal: abort.signal }).catch(() => undefined);
    const r = await api(node.origin, 'POST', `${prefix}/stream/start`, startBody(node, { id, params: { prompt: JSON.stringify(INVERT) } }));
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      status: 'success',
      message: `Stream ${id} started successfully`,
      request_id: id,
      config: {
        subscribe_url: `${node.trickleBase}/${id}-in`,
        publish_url: `${node.trickleBase}/${id}-out`,
        width: 128,
        height: 128,
        dedicated_worker: true,
        use_prompt_worker: false,
        pipeline_type: 'ProcessPoolPipeline',
        architecture: 'dedicated_worker_per_stream',
        prompts_set: true,
        prompt_count: 1,
      },
    });
    const again = await api(node.origin, 'POST', `${prefix}/stream/start`, startBody(node, { id }));
    expect(again.status).toBe(409);
    expect(again.json).toMatchObject({ error: 'Conflict' });
  });

  it('answers status at /stream/{id} and /stream/{id}/status', async () => {
    await waitEvent(node, (e) => e.type === 'stats' && e.streamId === id && e.frameCount > 0, 30_000, true);
    for (const path of [`/stream/${id}`, `/stream/${id}/status`]) {
      const r = await api(node.origin, 'GET', prefix + path);
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({
        request_id: id,
        running: true,
        state: 'running',
        subscribe_url: `${node.trickleBase}/${id}-in`,
        publish_url: `${node.trickleBase}/${id}-out`,
        width: 128,
        height: 128,
        frame_count: expect.any(Number),
        pipeline_type: 'ProcessPoolPipeline',
        architecture: 'dedicated_worker_per_stream',
        worker_status: { pid: expect.any(Number), state: 'running', restart_count: 0 },
      });
    }
  });

  it('answers the lists and the global status', async () => {
    const list = await api(node.origin, 'GET', `${prefix}/streams`);
    expect(list.status).toBe(200);
    expect(list.json.streams[id]).toMatchObject({ request_id: id, running: true });
    expect(list.json.count).toBe(Object.keys(list.json.streams).length);
    const g = await api(node.origin, 'GET', `${prefix}/stream/status`);
    expect(g.json).toMatchObject({ processing_active: true, stream_count: list.json.count });
    expect(g.json.all_streams[id]).toBeDefined();
    expect(g.json.current_stream).toMatchObject({ running: true });
  });

  it('answers worker status at /worker and /workers', async () => {
    for (const path of ['worker', 'workers']) {
      const r = await api(node.origin, 'GET', `${prefix}/stream/${id}/${path}`);
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({
        request_id: id,
        architecture: 'dedicated_worker_per_stream',
        worker_status: { pid: expect.any(Number), state: 'running', restart_count: 0 },
      });
    }
  });

  it('updates prompts (prompt as a JSON string, then prompts with a size change)', async () => {
    const pid = (await api(node.origin, 'GET', `${prefix}/stream/${id}/worker`)).json.worker_status.pid;
    const a = await api(node.origin, 'POST', `${prefix}/stream/${id}/update-prompts`, { prompt: JSON.stringify(BLUR) });
    expect(a.status).toBe(200);
    expect(a.json).toEqual({
      status: 'success',
      message: `Prompts updated for stream ${id}`,
      request_id: id,
      prompts_count: 1,
      parameters_updated: false,
      warmup_performed: false,
    });
    const b = await api(node.origin, 'POST', `${prefix}/stream/${id}/update-prompts`, { prompts: [INVERT], parameters: { width: 96, height: 96 } });
    expect(b.status).toBe(200);
    expect(b.json).toMatchObject({ prompts_count: 1, parameters_updated: true, warmup_performed: true });
    const s = await api(node.origin, 'GET', `${prefix}/stream/${id}`);
    expect(s.json).toMatchObject({ width: 96, height: 96 });
    expect(s.json.worker_status.pid).toBe(pid);
    const bad = await api(node.origin, 'POST', `${prefix}/stream/${id}/update-prompts`, { prompts: [{ ...BLUR, '2': { class_type: 'ImageBlur', inputs: { image: ['1', 0] } } }] });
    expect(bad.status).toBe(400);
    expect(bad.json.validation_errors.length).toBeGreaterThan(0);
  });

  it('answers workspace-info', async () => {
    const r = await api(node.origin, 'GET', `${prefix}/stream/${id}/workspace-info`);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      success: true,
      stream_id: id,
      workspace_info: {
        workspace_path: node.config.inference.workspace,
        config_keys: expect.any(Array),
        total_workers: 1,
        active_prompt_id: expect.any(String),
      },
    });
  });

  it('refuses prompt-worker routes on a dedicated stream with 400', async () => {
    expect((await api(node.origin, 'GET', `${prefix}/stream/${id}/prompts`)).status).toBe(400);
    expect((await api(node.origin, 'POST', `${prefix}/stream/${id}/switch-prompt`, { prompt_id: 'abc' })).status).toBe(400);
    expect((await api(node.origin, 'POST', `${prefix}/stream/${id}/switch-prompt`, {})).status).toBe(400);
  });

  it('restarts the dedicated worker at /restart-worker and /restart-workers', async () => {
    for (const path of ['restart-worker', 'restart-workers']) {
      const before = (await api(node.origin, 'GET', `${prefix}/stream/${id}/worker`)).json.worker_status;
      const r = await api(node.origin, 'POST', `${prefix}/stream/${id}/${path}`);
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ status: 'success', message: `Dedicated worker restarted for stream ${id}` });
      const after = await waitState(node, id, 'running', 30_000);
      expect(after.worker_status.pid).not.toBe(before.pid);
    }
  });

  it('stops the stream at DELETE /stream/{id} or POST /stream/{id}/stop', async () => {
    const r = prefix
      ? await api(node.origin, 'POST', `${prefix}/stream/${id}/stop`)
      : await api(node.origin, 'DELETE', `${prefix}/stream/${id}`);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'success', message: `Stream ${id} stopped successfully` });
  });
});

describe('other architectures and aliases', () => {
  it('runs a prompt-worker stream started at POST /stream: lists its prompts and switches between them', async () => {
    const id = 'pw';
    const r = await api(node.origin, 'POST', '/stream', startBody(node, { id, params: { prompts: [INVERT, BLUR], dedicated_worker: false, use_prompt_worker: true } }));
    expect(r.status).toBe(200);
    expect(r.json.config).toMatchObject({ pipeline_type: 'PromptWorkerPipeline', architecture: 'prompt_per_worker', use_prompt_worker: true, prompt_count: 2 });
    for (const prefix of ['', '/live']) {
      const p = await api(node.origin, 'GET', `${prefix}/stream/${id}/prompts`);
      expect(p.status).toBe(200);
      expect(p.json).toMatchObject({ status: 'success', request_id: id, total_prompts: 2 });
      expect(p.json.prompts).toHaveLength(2);
      const target = p.json.prompts.find((x: string) => x !== p.json.active_prompt_id);
      const sw = await api(node.origin, 'POST', `${prefix}/stream/${id}/switch-prompt`, { prompt_id: target });
      expect(sw.status).toBe(200);
      expect(sw.json).toMatchObject({ status: 'success', request_id: id, active_prompt_id: target });
      const unknown = await api(node.origin, 'POST', `${prefix}/stream/${id}/switch-prompt`, { prompt_id: 'ffffffffffff' });
      expect(unknown.status).toBe(400);
    }
    const ws = await api(node.origin, 'GET', `/stream/${id}/workspace-info`);
    expect(ws.json.workspace_info.total_workers).toBe(2);
    expect((await api(node.origin, 'POST', `/stream/${id}/restart-worker`)).status).toBe(400);
    expect((await api(node.origin, 'DELETE', `/stream/${id}`)).status).toBe(200);
  });

  it('runs a shared stream started at POST /live-video-to-video and stops everything at POST /stream/stop', async () => {
    const r = await api(node.origin, 'POST', '/live-video-to-video', startBody(node, { id: 'sh1', params: { dedicated_worker: false } }));
    expect(r.status).toBe(200);
    expect(r.json.config).toMatchObject({ pipeline_type: 'Pipeline', architecture: 'shared_single_process', dedicated_worker: false, prompts_set: false });
    expect((await api(node.origin, 'POST', '/live/stream/start', startBody(node, { id: 'sh2', params: { dedicated_worker: false } }))).status).toBe(200);
    const a = (await api(node.origin, 'GET', '/stream/sh1/worker')).json.worker_status.pid;
    const b = (await api(node.origin, 'GET', '/stream/sh2/worker')).json.worker_status.pid;
    expect(a).toBe(b);
    const stop = await api(node.origin, 'POST', '/stream/stop');
    expect(stop.status).toBe(200);
    expect(stop.json).toEqual({ status: 'stopped', message: expect.stringMatching(/^Stopped [2-9]\d* stream\(s\)$/) });
  });
});

/** The value of the sample of `name` whose labels include `labels` (in any order), NaN if none. */
function metricValue(text: string, name: string, labels: Record<string, string>): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}

describe('metrics and inspection of a running stream', () => {
  it('shows the stream\'s fps and latency in /metrics, and streams its state changes on /inspect/events while its worker is killed and restarts', async () => {
    const id = 'watched';
    const abort = new AbortController();
    void publishClip(`${node.trickleBase}/${id}-in`, clip, { signal: abort.signal }).catch(() => undefined);
    expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id }))).status).toBe(200);
    await waitEvent(node, (e) => e.type === 'stats' && e.streamId === id && e.stats.fps_out > 0, 30_000, true);

    const metrics = await (await fetch(`${node.origin}/metrics`)).text();
    const fps = metricValue(metrics, 'sf_stream_output_fps', { stream: id, node: node.config.nodeId });
    expect(fps).toBeGreaterThan(0);
    const latencyCount = metricValue(metrics, 'sf_frame_latency_seconds_count', { stream: id, node: node.config.nodeId });
    expect(latencyCount).toBeGreaterThan(0);
    expect(metricValue(metrics, 'sf_streams', { state: 'running', node: node.config.nodeId })).toBeGreaterThanOrEqual(1);

    // Subscribe to the SSE feed, kill the worker, and read until the stream is running again.
    const sse = new AbortController();
    const res = await fetch(`${node.origin}/inspect/events?stream=${id}`, { signal: sse.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const pid = (await api(node.origin, 'GET', `/stream/${id}/worker`)).json.worker_status.pid;
    const seen: string[] = [];
    const reader = (async () => {
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (!data) continue;
          const rec = JSON.parse(data.slice(6));
          expect(rec.stream_id).toBe(id);
          if (rec.snapshot && rec.actor_id === id) seen.push(JSON.stringify(rec.snapshot.value));
          if (seen.some((v) => v.includes('restarting')) && seen.at(-1)?.includes('running')) return;
        }
      }
    })();
    process.kill(pid, 'SIGKILL');
    await reader;
    sse.abort();
    const firstRestart = seen.findIndex((v) => v.includes('restarting'));
    expect(firstRestart).toBeGreaterThanOrEqual(0);
    expect(seen.slice(firstRestart).some((v) => v.includes('running'))).toBe(true);
    const after = await api(node.origin, 'GET', `/stream/${id}`);
    expect(after.json.restart_count).toBe(1);
    const m2 = await (await fetch(`${node.origin}/metrics`)).text();
    expect(metricValue(m2, 'sf_worker_restarts_total', { stream: id, node: node.config.nodeId })).toBe(1);
    abort.abort();
    await api(node.origin, 'DELETE', `/stream/${id}`);
  });
});

describe('capacity', () => {
  it('answers 503 to a start beyond actors.maxStreams, and /readyz turns 503 until a stream ends', async () => {
    const small = await startNode({ actors: { maxStreams: 1 } });
    try {
      expect((await api(small.origin, 'GET', '/readyz')).status).toBe(200);
      expect((await api(small.origin, 'POST', '/stream/start', startBody(small, { id: 'only' }))).status).toBe(200);
      const full = await api(small.origin, 'POST', '/stream/start', startBody(small, { id: 'second' }));
      expect(full.status).toBe(503);
      expect(full.json).toMatchObject({ error: 'Service Unavailable' });
      const ready = await api(small.origin, 'GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.json).toMatchObject({ ready: false, capacity: 1, running: 1 });
      expect((await api(small.origin, 'GET', '/stream/second')).status).toBe(404);
      expect((await api(small.origin, 'DELETE', '/stream/only')).status).toBe(200);
      expect((await api(small.origin, 'GET', '/readyz')).status).toBe(200);
    } finally {
      const { orphans } = await small.close();
      expect(orphans).toEqual([]);
    }
  });
});
