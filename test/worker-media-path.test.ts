// The worker process end to end: a real forked worker over the embedded bus bridge, a real trickle
// server, a real clip published at real-time pace, and the output checked with ffprobe/ffmpeg.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { grabRgbFrame, makeClip, probeFramePts, probePackets, tempDir } from './helpers/clips.ts';
import { meanAbsDiff, probeFrameSizes } from './helpers/media.ts';
import { startServer, type Running } from './helpers/trickle.ts';
import { chainPrompt, clipSegments, identityPrompt, invertPrompt, publishLive, pullChannel, startWorker, type WorkerProc, entry } from './helpers/worker-proc.ts';
import type { WorkerHeartbeat } from '../src/transport/worker-protocol.ts';
import type { TsSegment } from '../src/media/segmenter.ts';

const run = promisify(execFile);
const W = 320;
const H = 240;
const FPS = 30;
/** TestHoldFrame's hold for the slow-graph test: twice the input's frame interval. */
const HOLD_MS = 2 * Math.ceil(1000 / FPS);

let trickle: Running;
let dir: { path: string; remove(): void };
let clip: string;
let segments: TsSegment[];
let inputPts: number[];
const procs: WorkerProc[] = [];

beforeAll(async () => {
  trickle = await startServer();
  dir = tempDir('sf-worker-');
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 4, width: W, height: H, fps: FPS, audio: true });
  segments = await clipSegments(clip);
  inputPts = await probeFramePts(clip);
});

afterAll(async () => {
  await trickle?.server.close();
  dir?.remove();
});

afterEach(async () => {
  for (const p of procs.splice(0)) await p.stop();
});

/**
 * For the tests that expect every frame out: a few more frames may wait than the default 2, so a
 * scheduler stall of this shared 2-core machine does not drop frames. (Without input pacing the
 * demuxer's ~20-frame bursts at each segment start would still overflow it.)
 */
const ROOMY = { maxFramesInFlight: 6 };

async function worker(actors: Record<string, unknown> = ROOMY, inference: Record<string, unknown> = {}): Promise<WorkerProc> {
  const p = await startWorker({ config: { inference: { workspace: join(dir.path, 'ws'), ...inference }, actors } });
  procs.push(p);
  return p;
}

/** Every frame of a file as raw RGB24 (file size). */
async function decodeFrames(path: string, w = W, h = H): Promise<Buffer[]> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', path, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 });
  const buf = stdout as unknown as Buffer;
  const size = w * h * 3;
  const frames: Buffer[] = [];
  for (let off = 0; off + size <= buf.length; off += size) frames.push(buf.subarray(off, off + size));
  return frames;
}

function drops(hbs: WorkerHeartbeat[], reason?: string): number {
  return hbs.reduce((n, h) => n + Object.entries(h.stats.dropsByReason).reduce((a, [r, v]) => a + (reason === undefined || r === reason ? v : 0), 0), 0);
}

/** Drops summed by reason over heartbeats (an empty object when none). */
function dropSummary(hbs: WorkerHeartbeat[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const h of hbs) for (const [r, n] of Object.entries(h.stats.dropsByReason)) if (n) out[r] = (out[r] ?? 0) + n;
  return out;
}

function expectStrictlyIncreasingSubset(outPts: number[], inPts: number[]): void {
  const all = new Set(inPts);
  for (const p of outPts) expect(all.has(p)).toBe(true);
  for (let i = 1; i < outPts.length; i++) expect(outPts[i]).toBeGreaterThan(outPts[i - 1]);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
};

function streamConfig(id: string, over: Record<string, unknown> = {}) {
  return {
    streamId: id,
    subscribeUrl: `${trickle.base}${id}`,
    publishUrl: `${trickle.base}${id}-out`,
    width: W,
    height: H,
    activePromptId: 'p0',
    ...over,
  };
}

describe('worker process media path', () => {
  it('inverts a live stream keeping every input pts, in order, with no drops, then ends and closes', async () => {
    const w = await worker();
    const id = 'inv1';
    const events = w.events(id);
    const hbs = w.heartbeats(id);
    await w.ok({ type: 'open_stream', stream: streamConfig(id) });
    const added = await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: [entry('p0', invertPrompt())] });
    expect(added.warmupMs).toBeTypeOf('number');

    const pull = pullChannel(`${trickle.base}${id}-out`);
    await publishLive(`${trickle.base}${id}`, segments);

    const ended = await events.waitFor((e) => e.type === 'input_ended', 30_000, 'input_ended');
    expect(ended).toMatchObject({ type: 'input_ended', reason: 'input_ended' });
    expect(events.items.some((e) => e.type === 'first_output')).toBe(true);

    // Every frame has been output once the last heartbeat says so.
    const last = inputPts[inputPts.length - 1];
    await hbs.waitFor((h) => h.stats.lastOutputPts === String(last), 30_000, 'heartbeat with the last pts');
    const r = await w.ok({ type: 'close_stream', streamId: id });
    expect(r.closed).toBe(true);
    await pull.done; // the output channel was DELETEd: the subscriber saw its end
    expect(pull.segments.length).toBe(segments.length);

    const out = join(dir.path, `${id}-out.ts`);
    await pull.writeTo(out);
    const outPts = await probeFramePts(out);
    expect({ missing: inputPts.filter((p) => !outPts.includes(p)), drops: dropSummary(hbs.items) }).toEqual({ missing: [], drops: {} });
    expect(outPts).toEqual(inputPts);

    // Audio passes through untouched: every input audio packet's pts comes out.
    const inAudio = (await probePackets(clip)).filter((p) => p.stream === 'audio').map((p) => p.pts);
    const outAudio = (await probePackets(out)).filter((p) => p.stream === 'audio').map((p) => p.pts);
    expect(outAudio.length).toBeGreaterThan(0);
    expect(outAudio.length).toBeGreaterThanOrEqual(inAudio.length - 2);
    const inAudioSet = new Set(inAudio);
    for (const p of outAudio) expect(inAudioSet.has(p)).toBe(true);

    // Pixels: output frame k is input frame k inverted (codec tolerance).
    for (const k of [0, 45, inputPts.length - 1]) {
      const a = await grabRgbFrame(clip, k);
      const b = await grabRgbFrame(out, k);
      expect(b.width).toBe(W);
      const inverted = Uint8Array.from(a.data, (v) => 255 - v);
      expect(meanAbsDiff(inverted, b.data)).toBeLessThan(8);
      expect(meanAbsDiff(a.data, b.data)).toBeGreaterThan(40);
    }

    await w.ok({ type: 'shutdown' });
    expect(await w.exited).toEqual({ code: 0, signal: null });
  });

  it('swaps prompts mid-stream within 5 frames, with no output gap and no process restart', async () => {
    const w = await worker();
    const id = 'upd1';
    const events = w.events(id);
    await w.ok({ type: 'open_stream', stream: streamConfig(id) });
    await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: [entry('p0', invertPrompt())] });
    const pull = pullChannel(`${trickle.base}${id}-out`);
    const publishing = publishLive(`${trickle.base}${id}`, segments);

    await events.waitFor((e) => e.type === 'first_output', 30_000, 'first_output');
    const hbs = w.heartbeats(id);
    // Well into the stream (a few frames out), swap to a prompt that gives the picture back as it is.
    await hbs.waitFor((h) => h.stats.frameCount >= 20, 30_000, '20 frames out');
    const upd = await w.ok({ type: 'update_prompts', streamId: id, workerId: 'w0', prompts: [entry('p0', identityPrompt())] });
    expect(upd.warmupPerformed).toBe(false);
    expect(upd.lastOutputPts).toMatch(/^\d+$/);
    const swapAfter = Number(upd.lastOutputPts);
    const ping = await w.ok({ type: 'ping' });
    expect(ping.pid).toBe(w.pid);

    await publishing;
    await events.waitFor((e) => e.type === 'input_ended', 30_000, 'input_ended');
    await hbs.waitFor((h) => h.stats.lastOutputPts === String(inputPts[inputPts.length - 1]), 30_000, 'last frame out');
    await w.ok({ type: 'close_stream', streamId: id });
    await pull.done;
    expect(w.child.exitCode).toBeNull();

    const out = join(dir.path, `${id}-out.ts`);
    await pull.writeTo(out);
    const outPts = await probeFramePts(out);
    expectStrictlyIncreasingSubset(outPts, inputPts);
    const interval = 90_000 / FPS;
    for (let i = 1; i < outPts.length; i++) expect(outPts[i] - outPts[i - 1]).toBeLessThanOrEqual(2 * interval + 1);

    const inFrames = await decodeFrames(clip);
    const outFrames = await decodeFrames(out);
    expect(outFrames.length).toBe(outPts.length);
    const index = new Map(inputPts.map((p, i) => [p, i]));
    const inverted = outPts.map((p, k) => {
      const a = inFrames[index.get(p)!];
      const b = outFrames[k];
      return meanAbsDiff(Uint8Array.from(a, (v) => 255 - v), b) < meanAbsDiff(a, b);
    });
    const before = outPts.map((p, k) => ({ p, inv: inverted[k] })).filter((x) => x.p <= swapAfter);
    const after = outPts.map((p, k) => ({ p, inv: inverted[k] })).filter((x) => x.p > swapAfter);
    expect(before.length).toBeGreaterThanOrEqual(20);
    expect(before.every((x) => x.inv)).toBe(true);
    const firstNew = after.findIndex((x) => !x.inv);
    expect(firstNew).toBeGreaterThanOrEqual(0);
    expect(firstNew).toBeLessThan(5);
    expect(after.slice(firstNew).every((x) => !x.inv)).toBe(true);
  });

  it('keeps latency flat under a graph slower than the input by dropping the oldest waiting frames', async () => {
    // Default: 2 frames in flight. The test-only TestHoldFrame holds each frame 60 ms, so the graph
    // serves at most ~16 frames/s against 30 frames/s in, on any machine.
    const w = await worker({}, { testNodes: true });
    const id = 'slow1';
    const events = w.events(id);
    const hbs = w.heartbeats(id);
    await w.ok({ type: 'open_stream', stream: streamConfig(id) });
    const slow = chainPrompt([{ class_type: 'TestHoldFrame', inputs: { hold_ms: HOLD_MS } }]);
    await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: [entry('p0', slow)] }, 120_000);
    const pull = pullChannel(`${trickle.base}${id}-out`);
    await publishLive(`${trickle.base}${id}`, segments);
    await events.waitFor((e) => e.type === 'input_ended', 60_000, 'input_ended');
    await w.ok({ type: 'close_stream', streamId: id }, 120_000);
    await pull.done;
    // The final heartbeat (sent on close) completes the figures: every input frame was either
    // output or counted as dropped.
    await hbs.waitFor((h) => h.stats.frameCount + drops(hbs.items) === inputPts.length, 30_000, 'frames out + drops = frames in');

    const out = join(dir.path, `${id}-out.ts`);
    await pull.writeTo(out);
    const outPts = await probeFramePts(out);
    expectStrictlyIncreasingSubset(outPts, inputPts);
    const slowDrops = drops(hbs.items, 'graph_slow');
    // At most one frame per hold goes out over the input's duration, so at least about half drop.
    expect(slowDrops).toBeGreaterThan(0);
    expect(outPts.length).toBeLessThan(inputPts.length);
    // Every input frame was either output or counted as dropped.
    expect(outPts.length + slowDrops).toBe(inputPts.length);

    // Latency does not grow with the stream's age: the late frames wait no longer than the early ones.
    const lat = hbs.items.flatMap((h) => h.stats.latenciesMs);
    expect(lat.length).toBe(outPts.length);
    const third = Math.floor(lat.length / 3);
    const early = median(lat.slice(0, third));
    const late = median(lat.slice(-third));
    expect(late).toBeLessThan(early * 2 + 50);
  });

  it('re-routes the next frames to another worker on switch_prompt (prompt_worker)', async () => {
    const w = await worker();
    const id = 'sw1';
    const events = w.events(id);
    const hbs = w.heartbeats(id);
    await w.ok({ type: 'open_stream', stream: streamConfig(id) });
    await w.ok({ type: 'add_worker', streamId: id, workerId: 'w-p0', prompts: [entry('p0', invertPrompt())] });
    await w.ok({ type: 'add_worker', streamId: id, workerId: 'w-p1', prompts: [entry('p1', identityPrompt())] });
    const pull = pullChannel(`${trickle.base}${id}-out`);
    const publishing = publishLive(`${trickle.base}${id}`, segments);
    await hbs.waitFor((h) => h.stats.frameCount >= 20, 30_000, '20 frames out');
    const sw = await w.ok({ type: 'switch_prompt', streamId: id, promptId: 'p1' });
    const switchAfter = Number(sw.lastOutputPts);
    await publishing;
    await events.waitFor((e) => e.type === 'input_ended', 30_000, 'input_ended');
    await w.ok({ type: 'close_stream', streamId: id });
    await pull.done;
    // Both workers sent heartbeats, and the later ones name the new active prompt.
    expect(new Set(hbs.items.map((h) => h.workerId))).toEqual(new Set(['w-p0', 'w-p1']));
    expect(hbs.items[hbs.items.length - 1].activePromptId).toBe('p1');

    const out = join(dir.path, `${id}-out.ts`);
    await pull.writeTo(out);
    const outPts = await probeFramePts(out);
    expect({ missing: inputPts.filter((p) => !outPts.includes(p)), drops: dropSummary(hbs.items) }).toEqual({ missing: [], drops: {} });
    expect(outPts).toEqual(inputPts);
    const inFrames = await decodeFrames(clip);
    const outFrames = await decodeFrames(out);
    const inverted = outFrames.map((b, k) => meanAbsDiff(Uint8Array.from(inFrames[k], (v) => 255 - v), b) < meanAbsDiff(inFrames[k], b));
    const after = outPts.map((p, k) => ({ p, inv: inverted[k] })).filter((x) => x.p > switchAfter);
    expect(outPts.filter((p, k) => p <= switchAfter && !inverted[k])).toEqual([]);
    const firstNew = after.findIndex((x) => !x.inv);
    expect(firstNew).toBeGreaterThanOrEqual(0);
    expect(firstNew).toBeLessThan(5);
    expect(after.slice(firstNew).every((x) => !x.inv)).toBe(true);
  });

  it('counts a segment that fails to decode and goes on with the next one', async () => {
    const w = await worker();
    const id = 'bad1';
    const events = w.events(id);
    await w.ok({ type: 'open_stream', stream: streamConfig(id) });
    await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: [entry('p0', invertPrompt())] });
    const pull = pullChannel(`${trickle.base}${id}-out`);
    // Not MPEG-TS at all: random bytes in 188-byte packets without a sync byte.
    const junk = Buffer.alloc(188 * 200);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) % 251;
    const garbage: TsSegment = { ...segments[0], index: 1, data: junk, durationSeconds: 0.2, videoPackets: 5, audioPackets: 0 };
    await publishLive(`${trickle.base}${id}`, [segments[0], garbage, { ...segments[1], index: 2 }]);
    await events.waitFor((e) => e.type === 'input_ended', 30_000, 'input_ended');
    await w.ok({ type: 'close_stream', streamId: id });
    await pull.done;
    expect(pull.segments.length).toBe(2);
    const out = join(dir.path, `${id}-out.ts`);
    await pull.writeTo(out);
    expect(await probeFramePts(out)).toEqual(inputPts);
  });

  it('keeps the configured size when the input resolution changes mid-stream', async () => {
    const w = await worker();
    const id = 'res2';
    const events = w.events(id);
    // Two seconds at 320x240, then two at 640x360 with timestamps that carry on.
    const a = await makeClip(join(dir.path, 'a.ts'), { seconds: 2, width: W, height: H, fps: FPS });
    const b = join(dir.path, 'b.ts');
    await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=${FPS}:duration=2`, '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-g', '60', '-pix_fmt', 'yuv420p', '-output_ts_offset', '2', '-f', 'mpegts', b]);
    const segs = [...(await clipSegments(a)), ...(await clipSegments(b))].map((x, i) => ({ ...x, index: i }));
    const expected = [...(await probeFramePts(a)), ...(await probeFramePts(b))];
    await w.ok({ type: 'open_stream', stream: streamConfig(id) });
    await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: [entry('p0', invertPrompt())] });
    const pull = pullChannel(`${trickle.base}${id}-out`);
    await publishLive(`${trickle.base}${id}`, segs);
    await events.waitFor((e) => e.type === 'input_ended', 30_000, 'input_ended');
    await w.ok({ type: 'close_stream', streamId: id });
    await pull.done;
    const out = join(dir.path, `${id}-out.ts`);
    await pull.writeTo(out);
    expect(await probeFramePts(out)).toEqual(expected);
    const sizes = await probeFrameSizes(out);
    expect(sizes.every((s) => s.width === W && s.height === H)).toBe(true);
  });

  it('resumes after a given pts without output at or before it', async () => {
    const w = await worker();
    const id = 'res1';
    const events = w.events(id);
    const resumeAfter = inputPts[40];
    await w.ok({ type: 'open_stream', stream: streamConfig(id, { resumeAfterPts: String(resumeAfter) }) });
    await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: [entry('p0', invertPrompt())] });
    const pull = pullChannel(`${trickle.base}${id}-out`);
    await publishLive(`${trickle.base}${id}`, segments);
    await events.waitFor((e) => e.type === 'input_ended', 30_000, 'input_ended');
    await w.heartbeats(id).waitFor((h) => h.stats.lastOutputPts === String(inputPts[inputPts.length - 1]), 30_000, 'last frame out');
    await w.ok({ type: 'close_stream', streamId: id });
    await pull.done;
    const out = join(dir.path, `${id}-out.ts`);
    await pull.writeTo(out);
    expect(await probeFramePts(out)).toEqual(inputPts.filter((p) => p > resumeAfter));
  });
});
