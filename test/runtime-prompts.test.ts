// Prompt changes on running streams over real worker processes: update-prompts swaps the graph at a
// frame boundary (no restart, no output gap); prompt-worker streams switch prompts; shared streams
// live in one process.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeClip, probeFramePts, tempDir } from './helpers/clips.ts';
import { meanAbsDiff } from './helpers/media.ts';
import { api, startBody, startNode, waitEvent, type TestNode } from './helpers/runtime-node.ts';
import { collectOutput, publishClip } from './helpers/stream-io.ts';
import { TricklePublisher } from '../src/transport/trickle/index.ts';

const run = promisify(execFile);
// Frame-exact runs: enough frames in flight to ride out a scheduling stall of a loaded CI box
// (the drop-oldest policy itself is covered by the slow-graph test).
const FRAME_EXACT = { actors: { maxFramesInFlight: 8 } };
const dir = tempDir('sf-prompts-');
const SIZE = 128;
const FRAME = 3000;
let clip: string;
let inputPts: number[];
let refFrames: Buffer[];
let node: TestNode | undefined;

const PASSTHROUGH = {
  '1': { class_type: 'LoadTensor', inputs: {} },
  '2': { class_type: 'SaveTensor', inputs: { images: ['1', 0] } },
};
const INVERT = {
  '1': { class_type: 'LoadTensor', inputs: {} },
  '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
  '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } },
};

/** Every frame of a file as raw RGB24 at SIZE x SIZE (cover-cropped like the worker does). */
async function rawFrames(path: string, cover: boolean): Promise<Buffer[]> {
  const vf = cover ? `scale=${SIZE}:${SIZE}:force_original_aspect_ratio=increase:flags=bilinear,crop=${SIZE}:${SIZE}` : 'null';
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', path, '-vf', vf, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    encoding: 'buffer',
    maxBuffer: 512 * 1024 * 1024,
  });
  const buf = stdout as unknown as Buffer;
  const n = SIZE * SIZE * 3;
  return Array.from({ length: Math.floor(buf.length / n) }, (_, i) => buf.subarray(i * n, (i + 1) * n));
}

beforeAll(async () => {
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 6, fps: 30, gop: 30, width: 160, height: 120 });
  inputPts = await probeFramePts(clip);
  refFrames = await rawFrames(clip, true);
});
afterAll(() => dir.remove());
afterEach(async () => {
  if (!node) return;
  const { orphans } = await node.close();
  node = undefined;
  expect(orphans).toEqual([]);
});

describe('runtime: prompts', () => {
  it('update-prompts takes effect within 5 frames, with no output gap and no restart', async () => {
    node = await startNode(FRAME_EXACT);
    const n = node;
    expect((await api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'swap', width: SIZE, height: SIZE }))).status).toBe(200);
    const pid = (await api(n.origin, 'GET', '/stream/swap')).json.worker_status.pid;
    const out = collectOutput(`${n.trickleBase}/swap-out`, join(dir.path, 'swap.ts'));
    const t0 = performance.now();
    const feeding = publishClip(`${n.trickleBase}/swap-in`, clip, { close: false });
    await waitEvent(n, (e) => e.type === 'stats' && e.streamId === 'swap' && e.frameCount >= 60);
    const r = await api(n.origin, 'POST', '/stream/swap/update-prompts', { prompts: [PASSTHROUGH] });
    const answeredAt = performance.now();
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.prompts_count).toBe(1);
    expect(r.json.warmup_performed).toBe(false);
    expect(r.json.parameters_updated).toBe(false);
    await feeding;
    await Promise.race([
      waitEvent(n, (e) => e.type === 'stats' && e.streamId === 'swap' && e.frameCount + e.stats.frames_dropped >= inputPts.length),
      new Promise((res) => setTimeout(res, 10_000)),
    ]);
    const st = (await api(n.origin, 'GET', '/stream/swap')).json;
    expect(st.worker_status.pid).toBe(pid);
    expect(st.restart_count).toBe(0);
    expect(n.events.some((e) => e.type === 'prompt_update' && e.streamId === 'swap')).toBe(true);
    expect((await api(n.origin, 'DELETE', '/stream/swap')).status).toBe(200);

    const { path } = await out;
    const pts = await probeFramePts(path);
    const frames = await rawFrames(path, false);
    expect(frames.length).toBe(pts.length);
    // Output gaps wider than two frame intervals, as input frame indexes.
    const gaps = pts.flatMap((p, k) => (k > 0 && p - pts[k - 1] > 2 * FRAME ? [`${inputPts.indexOf(pts[k - 1])}->${inputPts.indexOf(p)}`] : []));
    expect(gaps).toEqual([]);
    // Which graph made each output frame: inverted, or passed through.
    const kinds = pts.map((p, i) => {
      const ref = refFrames[inputPts.indexOf(p)];
      const inv = Buffer.from(ref.map((v) => 255 - v));
      return meanAbsDiff(frames[i], ref) < meanAbsDiff(frames[i], inv) ? 'plain' : 'inverted';
    });
    const firstPlain = kinds.indexOf('plain');
    expect(firstPlain).toBeGreaterThan(0);
    expect(kinds.slice(firstPlain).every((k) => k === 'plain')).toBe(true);
    // The input frame due when the update answered, by the publisher's real-time clock.
    const dueIndex = Math.floor(((answeredAt - t0) / 1000) * 30);
    const switchedAt = inputPts.indexOf(pts[firstPlain]);
    expect(switchedAt - dueIndex).toBeLessThanOrEqual(5);
  }, 120_000);

  it('a prompt-worker stream warms every prompt in its own worker and switches between them', async () => {
    node = await startNode();
    const n = node;
    const body = startBody(n, { id: 'multi', params: { use_prompt_worker: true, prompts: [INVERT, PASSTHROUGH] } });
    const started = await api(n.origin, 'POST', '/stream/start', body);
    expect(started.status, JSON.stringify(started.json)).toBe(200);
    const st = (await api(n.origin, 'GET', '/stream/multi')).json;
    expect(st.architecture).toBe('prompt_per_worker');
    expect(st.worker_status.workers).toHaveLength(2);
    // The prompt workers of one stream share its process.
    expect(new Set(st.worker_status.workers.map((w: { pid: number }) => w.pid)).size).toBe(1);
    const prompts = (await api(n.origin, 'GET', '/stream/multi/prompts')).json;
    expect(prompts.total_prompts).toBe(2);
    const other = prompts.prompts.find((p: string) => p !== prompts.active_prompt_id);
    const sw = await api(n.origin, 'POST', '/stream/multi/switch-prompt', { prompt_id: other });
    expect(sw.status, JSON.stringify(sw.json)).toBe(200);
    expect(sw.json.active_prompt_id).toBe(other);
    expect((await api(n.origin, 'GET', '/stream/multi/prompts')).json.active_prompt_id).toBe(other);
    expect((await api(n.origin, 'POST', '/stream/multi/switch-prompt', { prompt_id: 'nope' })).status).toBe(400);
    const ws = (await api(n.origin, 'GET', '/stream/multi/workspace-info')).json;
    expect(ws.workspace_info.total_workers).toBe(2);
    expect(ws.workspace_info.active_prompt_id).toBe(other);
  }, 120_000);

  it('a prompt sent on the control channel is validated and applied like an API update', async () => {
    node = await startNode();
    const n = node;
    expect((await api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'ctl', control: true }))).status).toBe(200);
    const before = (await api(n.origin, 'GET', '/stream/ctl')).json;
    const control = new TricklePublisher(`${n.trickleBase}/ctl-control`, { contentType: 'application/json', deleteChannel: false });
    const applied = waitEvent(n, (e) => e.type === 'prompt_update' && e.streamId === 'ctl');
    await control.writeSegment(Buffer.from(JSON.stringify({ keep: 'alive' })));
    // An invalid prompt is refused (logged) and changes nothing; the valid one after it applies.
    await control.writeSegment(Buffer.from(JSON.stringify({ prompts: [{ '1': { class_type: 'NoSuchNode', inputs: {} } }] })));
    await control.writeSegment(Buffer.from(JSON.stringify({ prompts: [PASSTHROUGH] })));
    await applied;
    const after = (await api(n.origin, 'GET', '/stream/ctl')).json;
    expect(after.prompt_ids).toHaveLength(1);
    expect(after.prompt_ids[0]).not.toBe(before.prompt_ids[0]);
    expect(after.worker_status.pid).toBe(before.worker_status.pid);
    expect(n.events.filter((e) => e.type === 'prompt_update' && e.streamId === 'ctl')).toHaveLength(1);
    control.removeAllListeners();
    await control.close();
  }, 120_000);

  it('shared streams run in one long-lived process per node', async () => {
    node = await startNode();
    const n = node;
    for (const id of ['s1', 's2']) {
      const r = await api(n.origin, 'POST', '/stream/start', startBody(n, { id, params: { dedicated_worker: false } }));
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
    const a = (await api(n.origin, 'GET', '/stream/s1')).json;
    const b = (await api(n.origin, 'GET', '/stream/s2')).json;
    expect(a.architecture).toBe('shared_single_process');
    expect(a.worker_status.pid).toBe(b.worker_status.pid);
    expect(n.runtime.processes().map((p) => p.key)).toEqual(['shared:node-1']);
    const upd = await api(n.origin, 'POST', '/stream/s1/update-prompts', { prompts: [PASSTHROUGH] });
    expect(upd.status, JSON.stringify(upd.json)).toBe(200);
    expect((await api(n.origin, 'DELETE', '/stream/s1')).status).toBe(200);
    expect((await api(n.origin, 'GET', '/stream/s2')).json.state).toBe('running');
    expect(n.runtime.processes().map((p) => p.pid)).toEqual([a.worker_status.pid]);
  }, 120_000);
});
