// Input timestamps that restart or wrap, through a real worker process over real trickle: every
// frame comes out, output pts strictly increase, and the discontinuity is reported.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TsSegment } from '../src/media/segmenter.ts';
import { makeClip, probeFramePts, probePackets, tempDir } from './helpers/clips.ts';
import { startServer, type Running } from './helpers/trickle.ts';
import { clipSegments, invertPrompt, publishLive, pullChannel, startWorker, type WorkerProc, entry } from './helpers/worker-proc.ts';

const run = promisify(execFile);
const W = 320;
const H = 240;
const FPS = 30;

let trickle: Running;
let dir: { path: string; remove(): void };
const procs: WorkerProc[] = [];

beforeAll(async () => {
  trickle = await startServer();
  dir = tempDir('sf-pts-');
});

afterAll(async () => {
  await trickle?.server.close();
  dir?.remove();
});

afterEach(async () => {
  for (const p of procs.splice(0)) await p.stop();
});

/**
 * The file's own bytes cut at every video random access point (the helper segmenter re-muxes, which
 * would move timestamps that start just before the 2^33 wrap). Each cut starts a segment; the
 * program tables come once, at the start, as a continuous input needs.
 */
function rawSegments(data: Buffer, fps: number): TsSegment[] {
  const cuts: number[] = [0];
  const frames: number[] = [0];
  for (let o = 0; o + 188 <= data.length; o += 188) {
    const pid = ((data[o + 1] & 0x1f) << 8) | data[o + 2];
    const pusi = (data[o + 1] & 0x40) !== 0;
    const af = (data[o + 3] & 0x20) !== 0 && data[o + 4] > 0;
    if (pid !== 0x100 || !pusi) continue;
    frames[frames.length - 1]++;
    if (af && (data[o + 5] & 0x40) !== 0 && o > 0 && frames[frames.length - 1] > 1) {
      cuts.push(o);
      frames[frames.length - 1]--;
      frames.push(1);
    }
  }
  cuts.push(data.length);
  return cuts.slice(0, -1).map((start, i) => ({
    index: i,
    data: data.subarray(start, cuts[i + 1]),
    startPts: 0n,
    timeBase: { num: 1, den: 90_000 },
    startSeconds: 0,
    durationSeconds: frames[i] / fps,
    videoPackets: frames[i],
    audioPackets: 0,
  }));
}

function strictlyIncreasing(xs: number[]): boolean {
  return xs.every((x, i) => i === 0 || x > xs[i - 1]);
}

async function runStream(id: string, segs: TsSegment[]) {
  const w = await startWorker({ config: { inference: { workspace: join(dir.path, 'ws') }, actors: { maxFramesInFlight: 6 } } });
  procs.push(w);
  const events = w.events(id);
  await w.ok({
    type: 'open_stream',
    stream: { streamId: id, subscribeUrl: `${trickle.base}${id}`, publishUrl: `${trickle.base}${id}-out`, width: W, height: H, activePromptId: 'p0' },
  });
  await w.ok({ type: 'add_worker', streamId: id, workerId: 'w0', prompts: [entry('p0', invertPrompt())] });
  const pull = pullChannel(`${trickle.base}${id}-out`);
  await publishLive(`${trickle.base}${id}`, segs.map((s, i) => ({ ...s, index: i })));
  await events.waitFor((e) => e.type === 'input_ended', 30_000, 'input_ended');
  await w.ok({ type: 'close_stream', streamId: id });
  await pull.done;
  const out = join(dir.path, `${id}-out.ts`);
  await pull.writeTo(out);
  return { out, events: events.items };
}

describe('input timestamps that restart or wrap', () => {
  it('a publisher restarting its timestamps from 0 mid-stream: no frame lost, pts strictly increasing, reported', async () => {
    const a = await makeClip(join(dir.path, 'a.ts'), { seconds: 4, width: W, height: H, fps: FPS, audio: true });
    // The second half starts its clock over, as a restarted encoder does.
    const b = join(dir.path, 'b.ts');
    await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${W}x${H}:rate=${FPS}:duration=4`, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=4',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-g', '60', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', '-output_ts_offset', '0', '-f', 'mpegts', b]);
    const segs = [...(await clipSegments(a)), ...(await clipSegments(b))];
    const inFrames = (await probeFramePts(a)).length + (await probeFramePts(b)).length;
    const { out, events } = await runStream('restart', segs);
    const outPts = await probeFramePts(out);
    expect(outPts.length).toBe(inFrames);
    expect(strictlyIncreasing(outPts)).toBe(true);
    const d = events.filter((e) => e.type === 'discontinuity');
    expect(d.length).toBeGreaterThanOrEqual(1);
    expect(d[0]).toMatchObject({ type: 'discontinuity', kind: 'backward' });
    // Audio goes on, after the video of the first half, also strictly increasing.
    const audio = (await probePackets(out)).filter((p) => p.stream === 'audio').map((p) => p.pts);
    expect(audio.length).toBeGreaterThan(0);
    expect(strictlyIncreasing(audio)).toBe(true);
  });

  it('pts that wrap at 2^33 mid-stream: no frame lost, pts strictly increasing, the wrap reported', async () => {
    // 2^33 ticks at 90 kHz is 95443.7176 s: start 2 s before the wrap.
    const c = join(dir.path, 'wrap.ts');
    await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${W}x${H}:rate=${FPS}:duration=6`,
      '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-g', '60', '-pix_fmt', 'yuv420p', '-output_ts_offset', '95441.7', '-f', 'mpegts', c]);
    const segs = rawSegments(readFileSync(c), FPS);
    expect(segs.length).toBe(3);
    const inPts = await probeFramePts(c);
    // The input really wraps: its first pts are just below 2^33 (ffprobe shows them as negative).
    expect(inPts[0]).toBeLessThan(0);
    const { out, events } = await runStream('wrap', segs);
    const outPts = await probeFramePts(out);
    expect(outPts.length).toBe(inPts.length);
    expect(strictlyIncreasing(outPts)).toBe(true);
    // Across the wrap the output keeps the input's own spacing (a wrap is not a jump in time).
    expect(outPts).toEqual(inPts);
    expect(events.some((e) => e.type === 'discontinuity' && e.kind === 'wrap')).toBe(true);
  });
});
