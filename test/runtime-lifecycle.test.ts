// How streams end, over real worker processes: input that never appears (input_timeout), input that
// ends (input_ended), an output nobody can reach (failed, with the reason), and a pause in the input
// (degraded, then flowing again). Ended streams stay readable for a while, then disappear.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeClip, tempDir } from './helpers/clips.ts';
import { freePort } from './helpers/ports.ts';
import { api, startBody, startNode, waitState, type TestNode } from './helpers/runtime-node.ts';
import { publishClip } from './helpers/stream-io.ts';
import type { InspectionRecord } from '../src/actors/types.ts';

const dir = tempDir('sf-lifecycle-');
let clip: string;
let node: TestNode | undefined;

beforeAll(async () => {
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 8, fps: 30, gop: 30, width: 320, height: 240 });
});
afterAll(() => dir.remove());
afterEach(async () => {
  if (!node) return;
  const { orphans } = await node.close();
  node = undefined;
  expect(orphans).toEqual([]);
});

function inspected(n: TestNode, streamId: string, type: string, timeoutMs = 60_000): Promise<InspectionRecord> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`no ${type} for ${streamId} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = n.runtime.onInspection((r) => {
      if (r.stream_id !== streamId || r.type !== '@xstate.event' || (r.event as { type?: string })?.type !== type) return;
      clearTimeout(t);
      off();
      resolve(r);
    });
  });
}

describe('runtime: how streams end', () => {
  it('ends with input_timeout, input_ended, a failed output, and reports degraded input', async () => {
    node = await startNode({
      actors: { inputWaitMs: 3_000, degradedInputMs: 1_500, endedStreamRetentionMs: 60_000 },
      trickle: { maxRetries: 1, retryBaseMs: 100, retryMaxMs: 200, headerTimeoutMs: 2_000 },
    });
    const deadPort = await freePort();
    const n = node;
    const starts = await Promise.all([
      api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'never' })),
      api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'ends' })),
      api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'pauses' })),
      api(n.origin, 'POST', '/stream/start', { ...startBody(n, { id: 'nowhere' }), publish_url: `http://127.0.0.1:${deadPort}/nowhere-out` }),
    ]);
    for (const s of starts) expect(s.status, JSON.stringify(s.json)).toBe(200);

    const stalled = inspected(n, 'pauses', 'INPUT_STALLED');
    const resumed = inspected(n, 'pauses', 'INPUT_RESUMED');
    const feeding = Promise.all([
      publishClip(`${n.trickleBase}/ends-in`, clip, { close: true }),
      publishClip(`${n.trickleBase}/pauses-in`, clip, { close: false, pauseBefore: { index: 2, ms: 4_000 } }),
      publishClip(`${n.trickleBase}/nowhere-in`, clip, { close: false }),
    ]);

    const never = await waitState(n, 'never', 'terminated');
    expect(never.end_reason).toBe('input_timeout');
    expect(never.running).toBe(false);

    await stalled;
    const degraded = (await api(n.origin, 'GET', '/stream/pauses')).json;
    expect(degraded.state).toBe('running');
    expect(degraded.degraded).toBe(true);
    await resumed;
    expect((await api(n.origin, 'GET', '/stream/pauses')).json.degraded).toBe(false);

    const nowhere = await waitState(n, 'nowhere', 'failed');
    expect(typeof nowhere.fail_reason).toBe('string');
    expect(nowhere.fail_reason.length).toBeGreaterThan(0);

    await feeding;
    const ends = await waitState(n, 'ends', 'terminated');
    expect(ends.end_reason).toBe('input_ended');

    // Ended streams are still listed (with why), and no process is left for them.
    const list = (await api(n.origin, 'GET', '/streams')).json;
    expect(Object.keys(list.streams).sort()).toEqual(['ends', 'never', 'nowhere', 'pauses']);
    expect(n.runtime.processes().map((p) => p.key)).toEqual(['stream:pauses']);
    expect((await api(n.origin, 'DELETE', '/stream/pauses')).status).toBe(200);
    expect(n.runtime.processes()).toEqual([]);
  }, 180_000);

  it('removes ended streams after the retention time, and frees the id for a new start', async () => {
    node = await startNode({ actors: { endedStreamRetentionMs: 500 } });
    const n = node;
    expect((await api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'again' }))).status).toBe(200);
    expect((await api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'again' }))).status).toBe(409);
    expect((await api(n.origin, 'DELETE', '/stream/again')).status).toBe(200);
    expect((await api(n.origin, 'GET', '/stream/again')).json.state).toBe('terminated');
    // Starting the same id again at once replaces the ended record.
    expect((await api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'again' }))).status).toBe(200);
    expect((await api(n.origin, 'POST', '/stream/stop')).status).toBe(200);
    const gone = new Promise<void>((resolve) => {
      const t = setInterval(async () => {
        if ((await api(n.origin, 'GET', '/stream/again')).status === 404) {
          clearInterval(t);
          resolve();
        }
      }, 100);
    });
    await gone;
    expect((await api(n.origin, 'POST', '/stream/stop')).status).toBe(404);
  }, 120_000);
});
