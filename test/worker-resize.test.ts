// A size change mid-stream in a real forked worker: update_prompts with a new width/height while a
// clip is published live. Frames decoded at the old size must finish on the old graph (kept alive
// until none of that size is in flight), the new size starts with the next input segment in a fresh
// output segment, and no frame is lost or repeated.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeClip, probeFramePts, tempDir } from './helpers/clips.ts';
import { meanAbsDiff, probeFrameSizes } from './helpers/media.ts';
import { startServer, type Running } from './helpers/trickle.ts';
import { clipSegments, identityPrompt, invertPrompt, publishLive, pullChannel, startWorker, type WorkerProc, entry } from './helpers/worker-proc.ts';
import type { TsSegment } from '../src/media/segmenter.ts';
import type { WorkerHeartbeat } from '../src/transport/worker-protocol.ts';

const run = promisify(execFile);
const W = 320;
const H = 240;
const FPS = 30;
const SMALL = { width: 160, height: 120 };

let trickle: Running;
let dir: { path: string; remove(): void };
let clip: string;
let segments: TsSegment[];
let inputPts: number[];
const procs: WorkerProc[] = [];

beforeAll(async () => {
  trickle = await startServer();
  dir = tempDir('sf-worker-resize-');
  // Three 2-second segments: the update lands inside the first, so frames of the old size are
  // still being decoded and waiting when the new graphs are swapped in.
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 6, width: W, height: H, fps: FPS });
  segments = await clipSegments(clip);
  inputPts = await probeFramePts(clip);
});

afterAll(async () => {
  await trickle?.server.close();
  dir?.remove();
});

afterEach(async (ctx) => {
  if (process.env.SF_TEST_DEBUG && ctx.task.result?.state === 'fail') for (const p of procs) process.stderr.write(p.stderr());
  for (const p of procs.splice(0)) await p.stop();
});

/** Room for a scheduler stall of this shared machine, so only a real loss shows up as a drop. */
async function worker(): Promise<WorkerProc> {
  const p = await startWorker({
    config: { inference: { workspace: join(dir.path, 'ws') }, actors: { maxFramesInFlight: 6 }, ...(process.env.SF_TEST_DEBUG ? { logLevel: 'debug' } : {}) },
  });
  procs.push(p);
  return p;
}

function dropSummary(hbs: WorkerHeartbeat[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const h of hbs) for (const [r, n] of Object.entries(h.stats.dropsByReason)) if (n) out[r] = (out[r] ?? 0) + n;
  return out;
}

/** Every frame of a file as raw RGB24 at w x h (ffmpeg scales frames of another size to it). */
async function decodeFrames(path: string, w: number, h: number): Promise<Buffer[]> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', path, '-fps_mode', 'passthrough', '-vf', `scale=${w}:${h}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    encoding: 'buffer',
    maxBuffer: 512 * 1024 * 1024,
  });
  const buf = stdout as unknown as Buffer;
  const size = w * h * 3;
  const frames: Buffer[] = [];
  for (let off = 0; off + size <= buf.length; off += size) frames.push(buf.subarray(off, off + size));
  return frames;
}

async function resizeMidStream(id: string, newPromptId: string): Promise<void> {
  const w = await worker();
  const events = w.events(id);
  const hbs = w.heartbeats(id);
  await w.ok({
    type: 'open_stream',
    stream: { streamId: id, subscribeUrl: `${trickle.base}${id}`, publishUrl: `${trickle.base}${id}-out`, width: W, height: H, activePromptId: 'p0' },
  });
  await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: [entry('p0', invertPrompt())] });
  const pull = pullChannel(`${trickle.base}${id}-out`);
  const publishing = publishLive(`${trickle.base}${id}`, segments);

  // A few frames into the first segment: most of it is still to be decoded at the old size.
  await hbs.waitFor((h) => h.stats.frameCount >= 5, 30_000, '5 frames out');
  const upd = await w.ok({ type: 'update_prompts', streamId: id, workerId: 'w0', prompts: [entry(newPromptId, identityPrompt())], ...SMALL });
  expect(upd.warmupPerformed).toBe(true);
  const swapAfter = Number(upd.lastOutputPts);

  await publishing;
  await events.waitFor((e) => e.type === 'input_ended', 30_000, 'input_ended');
  await hbs.waitFor((h) => h.stats.lastOutputPts === String(inputPts[inputPts.length - 1]), 30_000, 'last frame out');
  await w.ok({ type: 'close_stream', streamId: id });
  await pull.done;
  expect(w.child.exitCode).toBeNull();

  // Nothing lost: no drop of any kind (graph_error is where a frame without a graph went).
  expect(dropSummary(hbs.items)).toEqual({});
  const out = join(dir.path, `${id}-out.ts`);
  await pull.writeTo(out);
  const outPts = await probeFramePts(out);
  // Every input pts once, in order (strictly increasing, since the input's are).
  expect(outPts).toEqual(inputPts);

  // Sizes: one run at the old size, then one at the new, switching at an input segment's start.
  const sizes = await probeFrameSizes(out);
  expect(sizes.length).toBe(outPts.length);
  const firstSmall = sizes.findIndex((s) => s.width === SMALL.width && s.height === SMALL.height);
  expect(firstSmall).toBeGreaterThan(0);
  expect(sizes.slice(0, firstSmall).every((s) => s.width === W && s.height === H)).toBe(true);
  expect(sizes.slice(firstSmall).every((s) => s.width === SMALL.width && s.height === SMALL.height)).toBe(true);
  const segmentStarts = new Set<number>();
  let k = 0;
  for (const s of segments) {
    segmentStarts.add(inputPts[k]);
    k += s.videoPackets;
  }
  expect(segmentStarts.has(outPts[firstSmall])).toBe(true);
  // Frames of the old size were still on their way at the swap, and they came out.
  expect(outPts.filter((p, i) => p > swapAfter && i < firstSmall).length).toBeGreaterThan(0);
  // The new size started a fresh output segment.
  expect(pull.segments.length).toBe(segments.length);

  // The old-size frames ran on the old graph (inverted), the new-size ones on the new (as they came).
  const inFrames = await decodeFrames(clip, SMALL.width, SMALL.height);
  const outFrames = await decodeFrames(out, SMALL.width, SMALL.height);
  expect(outFrames.length).toBe(outPts.length);
  const inverted = outFrames.map((b, i) => {
    const a = inFrames[i];
    return meanAbsDiff(Uint8Array.from(a, (v) => 255 - v), b) < meanAbsDiff(a, b);
  });
  expect(inverted.slice(0, firstSmall).every(Boolean)).toBe(true);
  expect(inverted.slice(firstSmall).some(Boolean)).toBe(false);
}

describe('worker process size change', () => {
  it('finishes frames of the old size on the old graph when an update with a new prompt changes the size', async () => {
    await resizeMidStream('rs1', 'p1');
  });

  it('finishes frames of the old size on the old graph when an update keeps the prompt id and changes the size', async () => {
    await resizeMidStream('rs2', 'p0');
  });
});
