import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { coverCrop, decodeStream, FrameRateCap, newDecodeStats, releaseItem, transcodeSegment, type DecodedItem } from '../src/media/index.ts';
import { makeClip, probeFramePts, tempDir } from './helpers/clips.ts';
import { meanAbsDiff, memorySink, probeFrameSizes, referenceCoverCrop } from './helpers/media.ts';

const dir = tempDir('sf-media-decode-');
let wide: string; // 320x240, 2 s, audio
let wideBytes: Uint8Array;

async function collect(src: Parameters<typeof decodeStream>[0], opts: Parameters<typeof decodeStream>[1] = {}) {
  const items: DecodedItem[] = [];
  for await (const item of decodeStream(src, opts)) items.push(item);
  for (const i of items) releaseItem(i);
  return {
    frames: items.flatMap((i) => (i.kind === 'video' ? [i.frame] : [])),
    audio: items.filter((i) => i.kind === 'audio').length,
    errors: items.flatMap((i) => (i.kind === 'error' ? [i.error] : [])),
    last: items[items.length - 1],
  };
}

beforeAll(async () => {
  wide = await makeClip(join(dir.path, 'wide.ts'), { seconds: 2, width: 320, height: 240, audio: true });
  wideBytes = new Uint8Array(readFileSync(wide));
});
afterAll(() => dir.remove());

describe('decodeStream', () => {
  it('yields every frame at the target size with the pts it had in the input, plus the audio packets', async () => {
    const media = loadConfig({ media: { width: 128, height: 96 } }).media;
    const r = await collect(wideBytes, { media });
    expect(r.errors).toEqual([]);
    const expected = await probeFramePts(wide);
    expect(r.frames.map((f) => Number(f.pts))).toEqual(expected);
    for (const f of r.frames) {
      expect([f.width, f.height, f.data.length]).toEqual([128, 96, 128 * 96 * 3]);
      expect(f.timeBase).toEqual({ num: 1, den: 90_000 });
    }
    expect(r.audio).toBeGreaterThan(80); // 2 s of 48 kHz AAC is ~94 packets
  });

  it('scales to cover the target then keeps the centre, like ai-runner (matches ffmpeg scale+crop)', async () => {
    for (const [w, h] of [
      [96, 96],
      [200, 100],
    ]) {
      const media = loadConfig({ media: { width: w, height: h } }).media;
      const r = await collect(wideBytes, { media });
      const ref = await referenceCoverCrop(wide, 10, w, h);
      // Same picture up to interpolation and rounding differences (a wrong crop differs by ~40+).
      const diff = meanAbsDiff(r.frames[10].data, ref);
      expect(diff).toBeLessThan(8);
      // ...and not a plain stretch, which this comparison tells apart.
      const stretched = await referenceCoverCrop(wide, 10, w, h, 'stretch');
      expect(meanAbsDiff(r.frames[10].data, stretched)).toBeGreaterThan(diff * 2);
    }
    expect(coverCrop(320, 240, 512, 512)).toEqual({ x: 40, y: 0, width: 240, height: 240 });
    expect(coverCrop(240, 320, 512, 256)).toEqual({ x: 0, y: 100, width: 240, height: 120 });
    expect(coverCrop(640, 360, 640, 360)).toEqual({ x: 0, y: 0, width: 640, height: 360 });
  });

  it('starts producing frames before the whole segment has arrived', async () => {
    // A segment several times the 128 KiB probe, as a 2 s GOP of live video is, arriving in 16 KiB
    // chunks a few milliseconds apart as from the network: the first frame must come out once the
    // probe has been read, long before the segment's last byte.
    const big = await makeClip(join(dir.path, 'big.ts'), { seconds: 2, width: 1280, height: 720, fps: 30, audio: true, x264Preset: 'veryfast', crf: 12 });
    const bytes = new Uint8Array(readFileSync(big));
    expect(bytes.length).toBeGreaterThan(6 * 128 * 1024);
    let handedOut = 0;
    const source = {
      async *[Symbol.asyncIterator]() {
        for (let off = 0; off < bytes.length; off += 16 * 1024) {
          const chunk = bytes.subarray(off, Math.min(bytes.length, off + 16 * 1024));
          handedOut += chunk.length;
          yield chunk;
          await new Promise((r) => setTimeout(r, 3));
        }
      },
    };
    let atFirstFrame = -1;
    let frames = 0;
    for await (const item of decodeStream(source, {})) {
      if (item.kind === 'video' && frames++ === 0) atFirstFrame = handedOut;
      releaseItem(item);
    }
    expect(frames).toBe(60);
    expect(atFirstFrame).toBeGreaterThan(0);
    expect(atFirstFrame).toBeLessThan(bytes.length / 2);
  });

  it('caps the input frame rate by dropping frames that come too soon, and counts them', async () => {
    const media = loadConfig({ media: { width: 64, height: 64, maxInputFps: 15 } }).media;
    const stats = newDecodeStats();
    const r = await collect(wideBytes, { media, stats });
    expect(r.frames.length).toBe(30); // 60 frames at 30 fps -> 15 per second
    expect(stats.droppedByFpsCap).toBe(30);
    const gaps = r.frames.slice(1).map((f, i) => Number(f.pts - r.frames[i].pts) / 90_000);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1 / 15 - 0.005);

    const at24 = await collect(wideBytes, { media: { ...media, maxInputFps: 24 } });
    expect(at24.frames.length).toBe(48); // 24 per second, not 15
  });

  it('FrameRateCap keeps a stream already at the cap intact and restarts when time goes back', () => {
    const cap = new FrameRateCap(30);
    const kept = Array.from({ length: 90 }, (_, i) => cap.admit(i / 30 + (i % 2 ? 0.001 : -0.001))).filter(Boolean).length;
    expect(kept).toBe(90);
    const c2 = new FrameRateCap(10);
    expect([c2.admit(5), c2.admit(5.01), c2.admit(0), c2.admit(0.05), c2.admit(0.1)]).toEqual([true, false, true, false, true]);
    expect(new FrameRateCap(0).admit(1)).toBe(true);
  });

  it('bad segments (not TS, zero length, truncated) give a typed error for that segment and the next one decodes', async () => {
    const cut = wideBytes.length >> 1;
    const segments: Array<[string, Uint8Array, string | null]> = [
      ['good', wideBytes, null],
      ['not TS', new Uint8Array(Buffer.from('<html>502 bad gateway</html>'.repeat(400))), 'MEDIA_DECODE_FAILED'],
      ['good', wideBytes, null],
      ['zero length', new Uint8Array(0), 'MEDIA_DECODE_FAILED'],
      ['good', wideBytes, null],
      ['truncated mid-packet', wideBytes.subarray(0, cut + 7), 'MEDIA_SEGMENT_TRUNCATED'],
      ['truncated on a packet boundary', wideBytes.subarray(0, cut - (cut % 188)), 'MEDIA_DECODE_FAILED'],
      ['good', wideBytes, null],
    ];
    const media = loadConfig({ media: { width: 64, height: 48 } }).media;
    for (const [name, bytes, code] of segments) {
      const r = await collect(bytes, { media });
      if (code === null) {
        expect(r.errors, name).toEqual([]);
        expect(r.frames.length, name).toBe(60);
      } else {
        expect(r.errors.map((e) => e.code), name).toEqual([code]);
        expect(r.last.kind, name).toBe('error');
        if (name.startsWith('truncated')) {
          // What arrived before the cut was still delivered.
          expect(r.frames.length, name).toBeGreaterThan(10);
          expect(r.frames.length, name).toBeLessThan(60);
        }
      }
    }
  });

  it('an input stream that fails mid-way delivers what arrived, then a truncation error carrying the cause', async () => {
    const cause = new Error('segment cut off by the publisher');
    const failing = {
      async *[Symbol.asyncIterator]() {
        for (let off = 0; off < 64 * 1024; off += 8 * 1024) yield wideBytes.subarray(off, off + 8 * 1024);
        throw cause;
      },
    };
    const r = await collect(failing, { media: loadConfig({ media: { width: 64, height: 48 } }).media });
    expect(r.frames.length).toBeGreaterThan(0);
    expect(r.errors.map((e) => e.code)).toEqual(['MEDIA_SEGMENT_TRUNCATED']);
    expect(r.errors[0].cause).toBe(cause);
    expect((await collect(wideBytes, {})).errors).toEqual([]);
  });

  it('keeps producing target-size frames when the input resolution changes mid-stream', async () => {
    const a = await makeClip(join(dir.path, 'small.ts'), { seconds: 1, width: 320, height: 240 });
    const b = await makeClip(join(dir.path, 'large.ts'), { seconds: 1, width: 640, height: 360 });
    const joined = new Uint8Array(Buffer.concat([readFileSync(a), readFileSync(b)]));
    const media = loadConfig({ media: { width: 160, height: 160 } }).media;
    const r = await collect(joined, { media });
    expect(r.errors).toEqual([]);
    expect(r.frames.length).toBe(60);
    for (const f of r.frames) expect([f.width, f.height, f.data.length]).toEqual([160, 160, 160 * 160 * 3]);
    // The second half really came from the 640x360 picture: its centre crop differs from the first.
    expect(meanAbsDiff(r.frames[29].data, r.frames[30].data)).toBeGreaterThan(1);
    const ref = await referenceCoverCrop(b, 5, 160, 160);
    expect(meanAbsDiff(r.frames[35].data, ref)).toBeLessThan(8);
  });

  it('a segment whose resolution changes half-way is encoded whole at the target size', async () => {
    const a = await makeClip(join(dir.path, 'first.ts'), { seconds: 1, width: 320, height: 240, audio: true });
    const b = await makeClip(join(dir.path, 'second.ts'), { seconds: 1, width: 640, height: 360, audio: true });
    // The second picture size continues the first one's clock, as a live source switching would.
    const shifted = join(dir.path, 'second-later.ts');
    await promisify(execFile)('ffmpeg', ['-v', 'error', '-y', '-i', b, '-c', 'copy', '-output_ts_offset', '1', '-f', 'mpegts', shifted]);
    const joined = new Uint8Array(Buffer.concat([readFileSync(a), readFileSync(shifted)]));
    const media = loadConfig({ media: { width: 128, height: 128 } }).media;
    const sink = memorySink();
    const r = await transcodeSegment(joined, undefined, sink, { media });
    expect(r.inputError).toBeNull();
    expect(r.videoFrames).toBe(60);
    const out = join(dir.path, 'switched-out.ts');
    writeFileSync(out, sink.bytes());
    const sizes = await probeFrameSizes(out);
    expect(sizes.length).toBe(60);
    expect(sizes.every((s) => s.width === 128 && s.height === 128)).toBe(true);
  });
});
