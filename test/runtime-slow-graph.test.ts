// A graph slower than the input: the worker drops the oldest waiting frames (counted) instead of
// queueing them, so latency stays flat over a minute: the p99 of the last 10 s is within 1.5x of the
// first 10 s. Long by nature (60 s of real-time input); one stream only.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeClip, probeFramePts, tempDir } from './helpers/clips.ts';
import { api, startBody, startNode, type TestNode } from './helpers/runtime-node.ts';
import { publishClip } from './helpers/stream-io.ts';

const dir = tempDir('sf-slow-');
const SECONDS = 60;
let clip: string;
let node: TestNode | undefined;

/** The test-only TestHoldFrame (inference.testNodes) holding each frame 60 ms: at most ~16 frames/s
 *  against 30 frames/s in, slower than the input by construction on any machine. */
function slowPrompt(): Record<string, unknown> {
  return {
    '1': { class_type: 'LoadTensor', inputs: {} },
    hold: { class_type: 'TestHoldFrame', inputs: { image: ['1', 0], hold_ms: 60 } },
    out: { class_type: 'SaveTensor', inputs: { images: ['hold', 0] } },
  };
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)];
}

beforeAll(async () => {
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: SECONDS, fps: 30, gop: 30, width: 320, height: 240 });
});
afterAll(() => dir.remove());
afterEach(async () => {
  if (!node) return;
  const { orphans } = await node.close();
  node = undefined;
  expect(orphans).toEqual([]);
});

describe('runtime: slow graph', () => {
  it('keeps latency flat for a minute and counts the frames it drops', async () => {
    const frames = (await probeFramePts(clip)).length;
    node = await startNode({ inference: { testNodes: true } });
    const n = node;
    const start = await api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'slow', width: 512, height: 512, params: { prompts: [slowPrompt()] } }));
    expect(start.status, JSON.stringify(start.json)).toBe(200);
    const samples: Array<{ t: number; latencies: number[] }> = [];
    let drops: Record<string, number> = {};
    n.runtime.onRuntimeEvent((e) => {
      if (e.type !== 'stats' || e.streamId !== 'slow') return;
      samples.push({ t: performance.now(), latencies: e.latenciesMs });
      drops = e.dropsByReason;
    });
    const t0 = performance.now();
    await publishClip(`${n.trickleBase}/slow-in`, clip, { close: false });
    const end = performance.now();
    const st = (await api(n.origin, 'GET', '/stream/slow')).json;
    expect((await api(n.origin, 'DELETE', '/stream/slow')).status).toBe(200);

    const first = samples.filter((s) => s.t - t0 <= 10_000).flatMap((s) => s.latencies);
    const last = samples.filter((s) => end - s.t <= 10_000).flatMap((s) => s.latencies);
    expect(first.length).toBeGreaterThan(10);
    expect(last.length).toBeGreaterThan(10);
    expect(p99(last)).toBeLessThanOrEqual(1.5 * p99(first));
    // The graph could not keep up: frames were dropped, counted, and everything else was output.
    expect(st.stats.frames_dropped).toBeGreaterThan(0);
    expect(Object.values(drops).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(st.frame_count + st.stats.frames_dropped).toBeLessThanOrEqual(frames);
    expect(st.worker_status.restart_count).toBe(0);
  }, 180_000);
});
