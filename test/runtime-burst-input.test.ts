// A gateway that posts each 2 s segment in one burst (the whole GOP at once, when its time comes)
// instead of streaming it: the worker paces the burst on the input's own clock, so with the default
// frames-in-flight bound nothing is dropped and every input frame comes out with its pts.
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { segmentFile } from '../src/media/segmenter.ts';
import { TricklePublisher } from '../src/transport/trickle/index.ts';
import { makeClip, probeFramePts, tempDir } from './helpers/clips.ts';
import { api, startBody, startNode, waitState, type TestNode } from './helpers/runtime-node.ts';
import { collectOutput } from './helpers/stream-io.ts';

const dir = tempDir('sf-burst-');
let node: TestNode | undefined;
afterAll(async () => {
  if (node) expect((await node.close()).orphans).toEqual([]);
  dir.remove();
});

async function publishInBursts(url: string, clip: string): Promise<void> {
  const pub = new TricklePublisher(url);
  const t0 = performance.now();
  let first: number | null = null;
  try {
    for await (const s of segmentFile(clip)) {
      first ??= s.startSeconds;
      const wait = t0 + (s.startSeconds - first) * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await pub.writeSegment(s.data);
    }
  } finally {
    await pub.close();
  }
}

it('runs a stream whose input arrives one whole segment at a time without dropping a frame', async () => {
  const clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 8, fps: 30, width: 320, height: 240 });
  const inputPts = await probeFramePts(clip);
  node = await startNode();
  expect(node.config.actors.maxFramesInFlight).toBe(2);
  expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id: 'bursty', width: 256, height: 256 }))).status).toBe(200);
  const out = collectOutput(`${node.trickleBase}/bursty-out`, join(dir.path, 'out.ts'));
  const ended = waitState(node, 'bursty', 'terminated', 60_000);
  await publishInBursts(`${node.trickleBase}/bursty-in`, clip);
  const st = await ended;
  expect(st.end_reason).toBe('input_ended');
  expect({ dropped: st.stats.frames_dropped, stats: st.stats }).toMatchObject({ dropped: 0 });
  expect(st.frame_count).toBe(inputPts.length);
  const outPts = await probeFramePts((await out).path);
  // Output pts are the input's (the 90 kHz clock both share), in order.
  expect(outPts).toEqual(inputPts);
}, 90_000);
