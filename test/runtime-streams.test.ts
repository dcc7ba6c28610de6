// The actor runtime end to end over real HTTP: real worker processes, the embedded trickle server,
// clips published in real time, outputs read back and checked with ffprobe.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeClip, probeFramePts, tempDir } from './helpers/clips.ts';
import { meanAbsDiff, referenceCoverCrop } from './helpers/media.ts';
import { grabRgbFrame } from './helpers/clips.ts';
import { api, startBody, startNode, waitState, type TestNode } from './helpers/runtime-node.ts';
import { collectOutput, publishClip } from './helpers/stream-io.ts';

// Frame-exact runs: enough frames in flight to ride out a scheduling stall of a loaded CI box
// (the drop-oldest policy itself is covered by the slow-graph test).
const FRAME_EXACT = { actors: { maxFramesInFlight: 8 } };
const dir = tempDir('sf-runtime-');
let clip: string;
let inputPts: number[];
let node: TestNode | undefined;

beforeAll(async () => {
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 4, fps: 30, gop: 30, width: 160, height: 120 });
  inputPts = await probeFramePts(clip);
});
afterAll(() => dir.remove());
afterEach(async () => {
  if (!node) return;
  const { orphans } = await node.close();
  node = undefined;
  expect(orphans).toEqual([]);
});

function checkFrameExact(out: number[]): void {
  const inSet = new Set(inputPts);
  const outSet = new Set(out);
  for (const p of out) expect(inSet.has(p)).toBe(true);
  // Input frames (by index) missing from the output: none may be lost at 30 fps.
  expect(inputPts.flatMap((p, i) => (outSet.has(p) ? [] : [i]))).toEqual([]);
  expect(out.length).toBe(inputPts.length);
  for (let i = 1; i < out.length; i++) expect(out[i]).toBeGreaterThan(out[i - 1]);
}

describe('runtime: dedicated streams', () => {
  it('runs three dedicated streams at once in three processes, each output inverted and frame-exact', async () => {
    node = await startNode(FRAME_EXACT);
    const ids = ['alpha', 'bravo', 'charlie'];
    const starts = await Promise.all(ids.map((id) => api(node!.origin, 'POST', '/stream/start', startBody(node!, { id }))));
    for (const s of starts) expect(s.status, JSON.stringify(s.json)).toBe(200);
    const statuses = await Promise.all(ids.map((id) => api(node!.origin, 'GET', `/stream/${id}`)));
    const pids = statuses.map((s) => s.json.worker_status.pid as number);
    for (const s of statuses) {
      expect(s.json.state).toBe('running');
      expect(s.json.architecture).toBe('dedicated_worker_per_stream');
      expect(s.json.worker_status.state).toBe('running');
      expect(s.json.worker_status.restart_count).toBe(0);
    }
    expect(new Set(pids).size).toBe(3);
    for (const p of pids) expect(p).toBeGreaterThan(0);

    const dropReasons: Record<string, Record<string, number>> = {};
    node.runtime.onRuntimeEvent((e) => {
      if (e.type !== 'stats') return;
      const acc = (dropReasons[e.streamId] ??= {});
      for (const [k, v] of Object.entries(e.dropsByReason)) acc[k] = (acc[k] ?? 0) + v;
    });
    const outputs = ids.map((id) => collectOutput(`${node!.trickleBase}/${id}-out`, join(dir.path, `${id}.ts`)));
    // The input ends -> each stream ends by itself (input_ended) once its last frames are out.
    const ended = ids.map((id) => waitState(node!, id, 'terminated'));
    await Promise.all(ids.map((id) => publishClip(`${node!.trickleBase}/${id}-in`, clip, { close: true })));
    for (const [i, id] of ids.entries()) {
      const st = await ended[i];
      expect(st.end_reason).toBe('input_ended');
      expect(st.stats.frames_dropped, `drops of ${id}: ${JSON.stringify(dropReasons[id])}`).toBe(0);
      expect(st.worker_status.restart_count).toBe(0);
      expect(st.frame_count).toBe(inputPts.length);
    }
    const collected = await Promise.all(outputs);
    for (const c of collected) {
      const pts = await probeFramePts(c.path);
      checkFrameExact(pts);
      const got = await grabRgbFrame(c.path, 10);
      expect([got.width, got.height]).toEqual([128, 128]);
      const ref = await referenceCoverCrop(clip, 10, 128, 128);
      const inverted = Buffer.from(ref.map((v) => 255 - v));
      expect(meanAbsDiff(got.data, inverted)).toBeLessThan(12);
      expect(meanAbsDiff(got.data, ref)).toBeGreaterThan(40);
    }
    expect(node.runtime.processes()).toEqual([]);
  }, 120_000);
});

describe('runtime: graphs on an inference thread', () => {
  // The worker process is a bundle (actors/worker-bundle.ts); its inference thread is the bundled
  // graph-thread.mjs beside it, loaded without tsx. This runs a stream through that path.
  it('inference.graphThreads: the bundled worker runs its graphs on a worker_thread, frame-exact', async () => {
    node = await startNode({ ...FRAME_EXACT, inference: { graphThreads: true } });
    const s = await api(node.origin, 'POST', '/stream/start', startBody(node, { id: 'threaded' }));
    expect(s.status, JSON.stringify(s.json)).toBe(200);
    const output = collectOutput(`${node.trickleBase}/threaded-out`, join(dir.path, 'threaded.ts'));
    const ended = waitState(node, 'threaded', 'terminated');
    await publishClip(`${node.trickleBase}/threaded-in`, clip, { close: true });
    const st = await ended;
    expect(st.end_reason).toBe('input_ended');
    expect(st.worker_status.restart_count).toBe(0);
    checkFrameExact(await probeFramePts((await output).path));
  }, 120_000);
});
