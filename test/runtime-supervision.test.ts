// Supervision over real processes: a worker killed with SIGKILL is restarted by its own actor and its
// stream resumes (strictly increasing output pts), while the other streams' outputs go on untouched;
// a worker that keeps crashing ends `failed` with its reason, and nothing else is affected.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeClip, probeFramePts, tempDir } from './helpers/clips.ts';
import { alive, api, startBody, startNode, waitEvent, waitState, type TestNode } from './helpers/runtime-node.ts';
import { collectOutput, publishClip } from './helpers/stream-io.ts';

// Frame-exact runs: enough frames in flight to ride out a scheduling stall of a loaded CI box
// (the drop-oldest policy itself is covered by the slow-graph test).
const FRAME_EXACT = { actors: { maxFramesInFlight: 8 } };
const dir = tempDir('sf-supervision-');
let clip: string;
let inputPts: number[];
let node: TestNode | undefined;
const FRAME = 3000; // 90 kHz ticks per frame at 30 fps

beforeAll(async () => {
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 8, fps: 30, gop: 30, width: 160, height: 120 });
  inputPts = await probeFramePts(clip);
});
afterAll(() => dir.remove());
afterEach(async () => {
  if (!node) return;
  const { orphans } = await node.close();
  node = undefined;
  expect(orphans).toEqual([]);
});

function maxGap(pts: number[]): number {
  let g = 0;
  for (let i = 1; i < pts.length; i++) g = Math.max(g, pts[i] - pts[i - 1]);
  return g;
}

describe('runtime: supervision', () => {
  it('restarts a SIGKILLed worker by itself; the other streams show no gap', async () => {
    node = await startNode(FRAME_EXACT);
    const ids = ['victim', 'calm1', 'calm2'];
    for (const id of ids) expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id }))).status).toBe(200);
    const before = Object.fromEntries(
      await Promise.all(ids.map(async (id) => [id, (await api(node!.origin, 'GET', `/stream/${id}`)).json.worker_status.pid as number])),
    );
    const outputs = ids.map((id) => collectOutput(`${node!.trickleBase}/${id}-out`, join(dir.path, `${id}.ts`)));
    // The input ends at the clip's end: each stream then ends by itself once its last frames are out.
    const ended = ids.map((id) => waitState(node!, id, 'terminated', 120_000));
    const publishing = Promise.all(ids.map((id) => publishClip(`${node!.trickleBase}/${id}-in`, clip, { close: true })));

    // Once the victim has output two seconds, kill its process outright.
    await waitEvent(node, (e) => e.type === 'stats' && e.streamId === 'victim' && e.frameCount >= 60);
    const restarted = waitEvent(node, (e) => e.type === 'worker_restart' && e.streamId === 'victim');
    process.kill(before.victim, 'SIGKILL');
    const r = await restarted;
    expect(r.type === 'worker_restart' && r.reason).toBe('killed by signal SIGKILL');
    const back = await waitState(node, 'victim', 'running', 30_000);
    expect(back.worker_status.restart_count).toBe(1);
    expect(back.restart_count).toBe(1);
    expect(back.worker_status.pid).not.toBe(before.victim);
    expect(alive(before.victim)).toBe(false);

    await publishing;
    for (const st of await Promise.all(ended)) expect(st.end_reason).toBe('input_ended');
    const collected = await Promise.all(outputs);
    const inSet = new Set(inputPts);
    for (const [i, c] of collected.entries()) {
      const pts = await probeFramePts(c.path);
      for (const p of pts) expect(inSet.has(p)).toBe(true);
      for (let k = 1; k < pts.length; k++) expect(pts[k]).toBeGreaterThan(pts[k - 1]);
      if (ids[i] === 'victim') {
        // It resumed and reached the end of the input.
        expect(pts[pts.length - 1]).toBe(inputPts[inputPts.length - 1]);
      } else {
        // The others never noticed: same process, every frame, no gap.
        const st = (await api(node.origin, 'GET', `/stream/${ids[i]}`)).json;
        expect(st.worker_status.restart_count).toBe(0);
        const outSet = new Set(pts);
        expect(inputPts.flatMap((p, k) => (outSet.has(p) ? [] : [k]))).toEqual([]);
        expect(pts.length).toBe(inputPts.length);
        expect(maxGap(pts)).toBeLessThanOrEqual(FRAME);
      }
    }
    for (const id of ['calm1', 'calm2']) expect(alive(before[id])).toBe(false); // stopped with their streams
  }, 180_000);

  it("a SIGKILLed shared process: each stream's own worker actor re-attaches it to one new shared process", async () => {
    node = await startNode();
    const ids = ['sh-a', 'sh-b'];
    for (const id of ids) expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id, params: { dedicated_worker: false } }))).status).toBe(200);
    const pid = (await api(node.origin, 'GET', '/stream/sh-a')).json.worker_status.pid as number;
    const restarted = ids.map((id) => waitEvent(node!, (e) => e.type === 'worker_restart' && e.streamId === id));
    process.kill(pid, 'SIGKILL');
    for (const r of await Promise.all(restarted)) expect(r.type === 'worker_restart' && r.reason).toBe('killed by signal SIGKILL');
    const back = await Promise.all(ids.map((id) => waitState(node!, id, 'running', 60_000)));
    for (const st of back) {
      expect(st.worker_status.restart_count).toBe(1);
      expect(st.worker_status.pid).not.toBe(pid);
    }
    expect(back[0].worker_status.pid).toBe(back[1].worker_status.pid);
    expect(node.runtime.processes().map((p) => p.key)).toEqual(['shared:node-1']);
    expect(alive(pid)).toBe(false);
  }, 120_000);

  it('a worker that keeps crashing ends failed with its reason; the neighbour runs on', async () => {
    node = await startNode({ actors: { maxRestarts: 1, restartWindowMs: 120_000 } });
    for (const id of ['crashy', 'steady']) expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id }))).status).toBe(200);
    const steady = (await api(node.origin, 'GET', '/stream/steady')).json.worker_status.pid as number;
    const failed = waitState(node, 'crashy', 'failed', 120_000);
    let kills = 0;
    for (; kills < 10; kills++) {
      const st = (await api(node.origin, 'GET', '/stream/crashy')).json;
      if (st.state === 'failed') break;
      const pid = st.worker_status.pid as number;
      const next = waitEvent(node, (e) => e.type === 'state' && e.actor === 'stream' && e.streamId === 'crashy' && (e.state === 'running' || e.state === 'failed'), 60_000);
      process.kill(pid, 'SIGKILL');
      await next;
    }
    const st = await failed;
    expect(kills).toBeGreaterThanOrEqual(2);
    expect(st.state).toBe('failed');
    expect(st.running).toBe(false);
    expect(st.fail_reason).toBe('killed by signal SIGKILL');
    expect(st.worker_status.state).toBe('failed');
    const other = (await api(node.origin, 'GET', '/stream/steady')).json;
    expect(other.state).toBe('running');
    expect(other.worker_status.pid).toBe(steady);
    expect(other.worker_status.restart_count).toBe(0);
    expect(node.runtime.processes().map((p) => p.pid)).toEqual([steady]);
  }, 180_000);
});
