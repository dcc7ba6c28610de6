import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { MediaError, mediaSelfTest, SegmentEncoder, segmentFile, type VideoFrame } from '../src/media/index.ts';
import type { FrameGraphRunner } from '../src/runner/processing.ts';
import { grabRgbFrame, makeClip, probeFramePts, probePackets, tempDir } from './helpers/clips.ts';
import { meanAbsDiff, memorySink, probeFrameSizes, referenceCoverCrop } from './helpers/media.ts';
import { runSegments } from './helpers/runner-media.ts';

// Encoding as the runner does it: the processing part (runner/processing.ts) encodes one output
// segment per input segment (runner/output.ts over media/encode.ts).

const dir = tempDir('sf-media-encode-');
let clip: string; // 6 s, 3 GOPs of 2 s, irregular timestamps, audio

function solid(pts: bigint, timeBase = { num: 1, den: 90_000 }, size = 64, value = 128): VideoFrame {
  return { data: new Uint8Array(size * size * 3).fill(value), width: size, height: size, pts, timeBase };
}

beforeAll(async () => {
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 6, width: 320, height: 240, audio: true, vfr: true });
});
afterAll(() => dir.remove());

describe('segment encoding', () => {
  it('the self-test round-trips a tiny clip', async () => {
    const r = await mediaSelfTest();
    expect(r.frames).toBe(3);
  });

  it('each output segment starts with an IDR, decodes on its own, and carries the input pts and audio unchanged', async () => {
    const media = loadConfig({ media: { width: 128, height: 128 } }).media;
    const segs = [];
    for await (const s of segmentFile(clip, { media })) segs.push(s);
    expect(segs.length).toBe(3);
    // The three segments as one stream's input, as a publisher posts them.
    const r = await runSegments(
      segs.map((s) => s.data),
      { media },
    );
    expect(r.segments.map((s) => [s.problem, s.damaged])).toEqual(segs.map(() => [null, false]));
    expect(r.outputs.length).toBe(3);
    for (const seg of segs) {
      const inPath = join(dir.path, `in-${seg.index}.ts`);
      const outPath = join(dir.path, `out-${seg.index}.ts`);
      writeFileSync(inPath, seg.data);
      const sink = r.outputs[seg.index];
      expect(sink.ended).toBe(true);
      writeFileSync(outPath, sink.bytes());
      // Decodable alone: ffprobe reads it with no context from other segments.
      const outPkts = await probePackets(outPath);
      const inPkts = await probePackets(inPath);
      const video = outPkts.filter((p) => p.stream === 'video');
      expect(video[0].flags).toContain('K');
      expect(video.filter((p) => p.flags.includes('K')).length).toBe(1); // one GOP per segment
      expect(await probeFramePts(outPath)).toEqual(await probeFramePts(inPath));
      const sizes = await probeFrameSizes(outPath);
      expect(sizes.every((s) => s.width === 128 && s.height === 128)).toBe(true);
      // Audio: the same packets at the same pts.
      const aIn = inPkts.filter((p) => p.stream === 'audio').map((p) => [p.pts, p.size]);
      const aOut = outPkts.filter((p) => p.stream === 'audio').map((p) => [p.pts, p.size]);
      expect(aOut.length).toBeGreaterThan(0);
      expect(aOut).toEqual(aIn);
    }
  });

  it('encodes exactly the pts it is given, rescaling from the frame time base to 1/90000', async () => {
    const ms = [1000n, 1033n, 1061n, 1100n, 1167n, 1170n, 1234n];
    const sink = memorySink();
    const enc = new SegmentEncoder(sink, { media: loadConfig({ media: { width: 64, height: 64 } }).media, frameRate: 30 });
    for (const [i, p] of ms.entries()) await enc.writeVideo(solid(p, { num: 1, den: 1000 }, 64, 30 * i));
    const r = await enc.end();
    expect(r.videoFrames).toBe(ms.length);
    const out = join(dir.path, 'pts.ts');
    writeFileSync(out, sink.bytes());
    expect(await probeFramePts(out)).toEqual(ms.map((m) => Number(m) * 90));
  });

  it('refuses pts that do not increase and frames whose bytes do not match their size, with typed errors', async () => {
    const enc = new SegmentEncoder(memorySink(), {});
    await enc.writeVideo(solid(9000n));
    await expect(enc.writeVideo(solid(9000n))).rejects.toMatchObject({ code: 'MEDIA_ENCODE_FAILED' });
    const bad: VideoFrame = { ...solid(18000n), width: 65 };
    await expect(enc.writeVideo(bad)).rejects.toBeInstanceOf(MediaError);
    await enc.abort(new Error('test over'));
  });

  it('a segment that never got a frame is aborted on the sink, not ended empty; an input segment with no frame opens no output segment', async () => {
    const sink = memorySink();
    const r = await new SegmentEncoder(sink, {}).end();
    expect(r.videoFrames).toBe(0);
    expect(sink.ended).toBe(false);
    expect(sink.aborted).toBeDefined();
    expect(sink.chunks.length).toBe(0);

    const bytes = new Uint8Array(readFileSync(clip));
    const run = await runSegments([new Uint8Array(Buffer.from('not a TS segment'.repeat(100))), bytes], { media: loadConfig({ media: { width: 64, height: 64 } }).media });
    expect(run.segments[0].problem?.code).toBe('MEDIA_DECODE_FAILED');
    // Output segments follow the input segments that gave frames: only the second one opened one.
    expect(run.outputs.map((o) => o.ended)).toEqual([true]);
  });

  it('runs the graph on every frame; a frame the graph fails on is dropped and counted, the others go on', async () => {
    const bytes = new Uint8Array(readFileSync(clip));
    const media = loadConfig({ media: { width: 64, height: 64 } }).media;
    const seen: number[] = [];
    const invert: FrameGraphRunner = {
      size: { width: 64, height: 64 },
      hold: () => () => undefined,
      run: async (data, size) => {
        const out = new Uint8Array(data.length);
        for (let i = 0; i < out.length; i++) out[i] = 255 - data[i];
        seen.push(seen.length);
        return { data: out, width: size.width, height: size.height };
      },
    };
    const r = await runSegments([bytes], { media, graph: invert });
    expect(r.framesOut).toBe(seen.length);
    expect(r.frames.map((f) => Number(f.pts))).toEqual(await probeFramePts(clip));

    let n = 0;
    const boom: FrameGraphRunner = {
      ...invert,
      run: async (data, size) => {
        if (++n === 20) throw new Error('graph exploded');
        return { data, width: size.width, height: size.height };
      },
    };
    const failed = await runSegments([bytes], { media, graph: boom });
    expect(failed.drops).toEqual({ graph_error: 1 });
    expect(failed.framesOut).toBe(r.framesOut - 1);
    const out = join(dir.path, 'graph-failed.ts');
    writeFileSync(out, failed.file());
    const pts = await probeFramePts(out);
    expect(pts.length).toBe(r.framesOut - 1);
    expect(pts).toEqual(r.frames.filter((_, i) => i !== 19).map((f) => Number(f.pts)));
  });

  it('an output segment takes the size the graph gives back', async () => {
    const seg = (await segmentFile(clip).next()).value!;
    const media = loadConfig({ media: { width: 96, height: 64 } }).media;
    const half: FrameGraphRunner = {
      size: { width: 96, height: 64 },
      hold: () => () => undefined,
      run: async (data) => {
        // Every other pixel of every other row: 48x32.
        const out = new Uint8Array(48 * 32 * 3);
        for (let y = 0; y < 32; y++) for (let x = 0; x < 48; x++) out.set(data.subarray(((2 * y) * 96 + 2 * x) * 3, ((2 * y) * 96 + 2 * x) * 3 + 3), (y * 48 + x) * 3);
        return { data: out, width: 48, height: 32 };
      },
    };
    const r = await runSegments([seg.data], { media, graph: half });
    expect(r.framesOut).toBe(r.frames.length);
    const out = join(dir.path, 'items.ts');
    writeFileSync(out, r.file());
    const sizes = await probeFrameSizes(out);
    expect(sizes.length).toBe(r.frames.length);
    expect(sizes.every((s) => s.width === 48 && s.height === 32)).toBe(true);
  });

  it('the picture survives decode -> rgb24 -> yuv420p -> x264 (colours not swapped, crop centred)', async () => {
    const media = loadConfig({ media: { width: 160, height: 160 } }).media;
    const r = await runSegments([new Uint8Array(readFileSync(clip))], { media });
    const out = join(dir.path, 'picture.ts');
    writeFileSync(out, r.file());
    const got = await grabRgbFrame(out, 12);
    expect([got.width, got.height]).toEqual([160, 160]);
    const want = await referenceCoverCrop(clip, 12, 160, 160);
    expect(meanAbsDiff(got.data, want)).toBeLessThan(10);
    // Swapping red and blue would be caught: the reference with channels swapped is far off.
    const swapped = Buffer.from(want);
    for (let i = 0; i < swapped.length; i += 3) [swapped[i], swapped[i + 2]] = [swapped[i + 2], swapped[i]];
    expect(meanAbsDiff(got.data, swapped)).toBeGreaterThan(meanAbsDiff(got.data, want) * 2);
  });
});
