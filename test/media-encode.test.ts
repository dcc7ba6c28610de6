import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import {
  decodeStream,
  encodeSegment,
  MediaError,
  mediaSelfTest,
  SegmentEncoder,
  segmentFile,
  transcodeSegment,
  type DecodedItem,
  type VideoFrame,
} from '../src/media/index.ts';
import { grabRgbFrame, makeClip, probeFramePts, probePackets, tempDir } from './helpers/clips.ts';
import { meanAbsDiff, memorySink, probeFrameSizes, referenceCoverCrop } from './helpers/media.ts';

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
    for (const seg of segs) {
      const inPath = join(dir.path, `in-${seg.index}.ts`);
      const outPath = join(dir.path, `out-${seg.index}.ts`);
      writeFileSync(inPath, seg.data);
      const sink = memorySink();
      const r = await transcodeSegment(seg.data, undefined, sink, { media });
      expect(r.inputError).toBeNull();
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

  it('a segment that never got a frame is aborted on the sink, not ended empty', async () => {
    const sink = memorySink();
    const r = await transcodeSegment(new Uint8Array(0), undefined, sink, {});
    expect(r.inputError?.code).toBe('MEDIA_DECODE_FAILED');
    expect(r.videoFrames).toBe(0);
    expect(sink.ended).toBe(false);
    expect(sink.aborted).toBeDefined();
    expect(sink.chunks.length).toBe(0);
  });

  it('runs the transform on every frame and a transform failure aborts the segment with a typed error', async () => {
    const bytes = new Uint8Array(readFileSync(clip));
    const seen: bigint[] = [];
    const invert = async (f: VideoFrame): Promise<VideoFrame> => {
      seen.push(f.pts);
      const data = new Uint8Array(f.data.length);
      for (let i = 0; i < data.length; i++) data[i] = 255 - f.data[i];
      return { ...f, data };
    };
    const media = loadConfig({ media: { width: 64, height: 64 } }).media;
    const sink = memorySink();
    const r = await transcodeSegment(bytes, invert, sink, { media });
    expect(r.videoFrames).toBe(seen.length);
    expect(seen.map(Number)).toEqual(await probeFramePts(clip));

    const failing = memorySink();
    let n = 0;
    const boom = async (f: VideoFrame): Promise<VideoFrame> => {
      if (++n === 20) throw new Error('graph exploded');
      return f;
    };
    await expect(transcodeSegment(bytes, boom, failing, { media })).rejects.toMatchObject({ code: 'MEDIA_ENCODE_FAILED' });
    expect(failing.ended).toBe(false);
    expect(failing.aborted).toBeDefined();
  });

  it('encodeSegment takes decoded items straight from decodeStream', async () => {
    const seg = (await segmentFile(clip).next()).value!;
    const items: DecodedItem[] = [];
    for await (const it of decodeStream(seg.data, { media: loadConfig({ media: { width: 96, height: 64 } }).media })) items.push(it);
    const sink = memorySink();
    const r = await encodeSegment(items, sink, {});
    expect(r.videoFrames).toBe(items.filter((i) => i.kind === 'video').length);
    expect(r.audioPackets).toBe(items.filter((i) => i.kind === 'audio').length);
    const out = join(dir.path, 'items.ts');
    writeFileSync(out, sink.bytes());
    expect((await probeFrameSizes(out))[0]).toEqual({ width: 96, height: 64 });
  });

  it('the picture survives decode -> rgb24 -> yuv420p -> x264 (colours not swapped, crop centred)', async () => {
    const media = loadConfig({ media: { width: 160, height: 160 } }).media;
    const sink = memorySink();
    await transcodeSegment(new Uint8Array(readFileSync(clip)), undefined, sink, { media });
    const out = join(dir.path, 'picture.ts');
    writeFileSync(out, sink.bytes());
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
