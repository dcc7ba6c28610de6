import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import type { MediaConfig } from '../src/config.ts';
import { coverCrop, FrameRateCap } from '../src/media/index.ts';
import { makeClip, probeFramePts, probePackets, tempDir } from './helpers/clips.ts';
import { meanAbsDiff, probeFrameSizes, referenceCoverCrop } from './helpers/media.ts';
import { runSegments } from './helpers/runner-media.ts';

// Decoding as the runner does it (input.ts: one continuous TS demux over the input's segments;
// processing.ts: the low-delay decoder at the stream's size, then the timeline and the graph),
// checked on the frames that reach the graph and on what comes out.
const dir = tempDir('sf-media-decode-');
let wide: string; // 320x240, 2 s, audio
let wideBytes: Uint8Array;

/** One input segment (or several) through the runner's parts: the frames the graph got, and each segment's problem. */
async function collect(src: Uint8Array | AsyncIterable<Uint8Array> | Array<Uint8Array | AsyncIterable<Uint8Array>>, media?: MediaConfig, keepData = true) {
  const r = await runSegments(Array.isArray(src) ? src : [src], { media, keepData });
  return {
    ...r,
    errors: r.segments.flatMap((s) => (s.problem ? [s.problem] : s.damaged ? [{ code: 'MEDIA_DECODE_FAILED' }] : [])),
  };
}

beforeAll(async () => {
  wide = await makeClip(join(dir.path, 'wide.ts'), { seconds: 2, width: 320, height: 240, audio: true });
  wideBytes = new Uint8Array(readFileSync(wide));
});
afterAll(() => dir.remove());

describe('decoding in the runner', () => {
  it('gives the graph every frame at the target size with the pts it had in the input, and copies the audio through', async () => {
    const media = loadConfig({ media: { width: 128, height: 96 } }).media;
    const r = await collect(wideBytes, media);
    expect(r.errors).toEqual([]);
    const expected = await probeFramePts(wide);
    expect(r.frames.map((f) => Number(f.pts))).toEqual(expected);
    for (const f of r.frames) expect([f.width, f.height, f.data!.length]).toEqual([128, 96, 128 * 96 * 3]);
    const out = join(dir.path, 'decoded-out.ts');
    writeFileSync(out, r.file());
    const audio = (await probePackets(out)).filter((p) => p.stream === 'audio');
    expect(audio.length).toBeGreaterThan(80); // 2 s of 48 kHz AAC is ~94 packets
    expect(audio.length).toBe((await probePackets(wide)).filter((p) => p.stream === 'audio').length);
  });

  it('scales to cover the target then keeps the centre, like ai-runner (matches ffmpeg scale+crop)', async () => {
    for (const [w, h] of [
      [96, 96],
      [200, 100],
    ]) {
      const media = loadConfig({ media: { width: w, height: h } }).media;
      const r = await collect(wideBytes, media);
      const ref = await referenceCoverCrop(wide, 10, w, h);
      // Same picture up to interpolation and rounding differences (a wrong crop differs by ~40+).
      const diff = meanAbsDiff(r.frames[10].data!, ref);
      expect(diff).toBeLessThan(8);
      // ...and not a plain stretch, which this comparison tells apart.
      const stretched = await referenceCoverCrop(wide, 10, w, h, 'stretch');
      expect(meanAbsDiff(r.frames[10].data!, stretched)).toBeGreaterThan(diff * 2);
    }
    expect(coverCrop(320, 240, 512, 512)).toEqual({ x: 40, y: 0, width: 240, height: 240 });
    expect(coverCrop(240, 320, 512, 256)).toEqual({ x: 0, y: 100, width: 240, height: 120 });
    expect(coverCrop(640, 360, 640, 360)).toEqual({ x: 0, y: 0, width: 640, height: 360 });
  });

  it('starts producing frames before the whole segment has arrived', async () => {
    // A segment of several hundred KiB, as a 2 s GOP of live video is, arriving in 16 KiB chunks a
    // few milliseconds apart as from the network: the first frame must reach the graph as soon as
    // its own bytes are in, long before the segment's last byte.
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
    await runSegments([source], {
      onFrame: () => {
        if (frames++ === 0) atFirstFrame = handedOut;
      },
    });
    expect(frames).toBe(60);
    expect(atFirstFrame).toBeGreaterThan(0);
    expect(atFirstFrame).toBeLessThan(bytes.length / 2);
  });

  it('caps the input frame rate by dropping frames that come too soon, and counts them', async () => {
    const media = loadConfig({ media: { width: 64, height: 64, maxInputFps: 15 } }).media;
    const r = await collect(wideBytes, media, false);
    expect(r.frames.length).toBe(30); // 60 frames at 30 fps -> 15 per second
    expect(r.droppedByFpsCap).toBe(30);
    expect(r.framesOut).toBe(30);
    const gaps = r.frames.slice(1).map((f, i) => Number(f.pts - r.frames[i].pts) / 90_000);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1 / 15 - 0.005);

    const at24 = await collect(wideBytes, { ...media, maxInputFps: 24 }, false);
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

  it('bad segments of one stream (not TS, zero length, truncated) are reported with that segment, and the next one decodes', async () => {
    const cut = wideBytes.length >> 1;
    // [name, bytes, problem code input.ts reports, or 'damaged' (the decoder's corrupt pictures), or null]
    const segments: Array<[string, Uint8Array, string | null]> = [
      ['good', wideBytes, null],
      ['not TS', new Uint8Array(Buffer.from('<html>502 bad gateway</html>'.repeat(400))), 'MEDIA_DECODE_FAILED'],
      ['good', wideBytes, null],
      // An empty segment is "nothing in this one" (go-livepeer answers an empty write with one), not a fault.
      ['zero length', new Uint8Array(0), null],
      ['good', wideBytes, null],
      ['truncated mid-packet', wideBytes.subarray(0, cut + 7), 'MEDIA_DECODE_FAILED'],
      ['good', wideBytes, null],
      ['truncated on a packet boundary', wideBytes.subarray(0, cut - (cut % 188)), 'damaged'],
      ['good', wideBytes, null],
    ];
    const media = loadConfig({ media: { width: 64, height: 48 } }).media;
    const r = await collect(
      segments.map(([, bytes]) => bytes),
      media,
      false,
    );
    expect(r.segments.length).toBe(segments.length);
    for (const [i, [name, , code]] of segments.entries()) {
      const s = r.segments[i];
      const frames = r.frames.filter((f) => f.seq === i).length;
      if (code === null) expect([s.problem?.message ?? null, s.damaged], name).toEqual([null, false]);
      else if (code === 'damaged') expect(s.problem?.code ?? (s.damaged ? 'damaged' : null), name).toBeTruthy();
      else expect(s.problem?.code, name).toBe(code);
      if (name === 'good') expect(frames, name).toBe(60);
      if (name.startsWith('truncated')) {
        // What arrived before the cut was still delivered.
        expect(frames, name).toBeGreaterThan(10);
        expect(frames, name).toBeLessThan(60);
      }
      if (name === 'not TS' || name === 'zero length') expect(frames, name).toBe(0);
    }
    // Output pts never went back, though every good segment restarted the clip's timestamps.
    const pts = r.frames.map((f) => f.pts);
    expect(pts.slice(1).every((p, i) => p > pts[i])).toBe(true);
  });

  it('an input segment that fails mid-way delivers what arrived, then a truncation error carrying the cause', async () => {
    const cause = new Error('segment cut off by the publisher');
    const failing = {
      async *[Symbol.asyncIterator]() {
        for (let off = 0; off < 64 * 1024; off += 8 * 1024) yield wideBytes.subarray(off, off + 8 * 1024);
        throw cause;
      },
    };
    const media = loadConfig({ media: { width: 64, height: 48 } }).media;
    const r = await collect([failing, wideBytes], media, false);
    expect(r.frames.filter((f) => f.seq === 0).length).toBeGreaterThan(0);
    expect(r.segments[0].problem?.code).toBe('MEDIA_SEGMENT_TRUNCATED');
    expect(r.segments[0].problem?.cause).toBe(cause);
    expect(r.segments[1].problem).toBeNull();
    expect(r.frames.filter((f) => f.seq === 1).length).toBe(60);
  });

  it('keeps producing target-size frames when the input resolution changes mid-stream', async () => {
    const a = await makeClip(join(dir.path, 'small.ts'), { seconds: 1, width: 320, height: 240 });
    const b = await makeClip(join(dir.path, 'large.ts'), { seconds: 1, width: 640, height: 360 });
    const joined = new Uint8Array(Buffer.concat([readFileSync(a), readFileSync(b)]));
    const media = loadConfig({ media: { width: 160, height: 160 } }).media;
    const r = await collect(joined, media);
    expect(r.errors).toEqual([]);
    expect(r.frames.length).toBe(60);
    for (const f of r.frames) expect([f.width, f.height, f.data!.length]).toEqual([160, 160, 160 * 160 * 3]);
    // The second half really came from the 640x360 picture: its centre crop differs from the first.
    expect(meanAbsDiff(r.frames[29].data!, r.frames[30].data!)).toBeGreaterThan(1);
    const ref = await referenceCoverCrop(b, 5, 160, 160);
    expect(meanAbsDiff(r.frames[35].data!, ref)).toBeLessThan(8);
  });

  it('a segment whose resolution changes half-way is encoded whole at the target size', async () => {
    const a = await makeClip(join(dir.path, 'first.ts'), { seconds: 1, width: 320, height: 240, audio: true });
    const b = await makeClip(join(dir.path, 'second.ts'), { seconds: 1, width: 640, height: 360, audio: true });
    // The second picture size continues the first one's clock, as a live source switching would.
    const shifted = join(dir.path, 'second-later.ts');
    await promisify(execFile)('ffmpeg', ['-v', 'error', '-y', '-i', b, '-c', 'copy', '-output_ts_offset', '1', '-f', 'mpegts', shifted]);
    const joined = new Uint8Array(Buffer.concat([readFileSync(a), readFileSync(shifted)]));
    const media = loadConfig({ media: { width: 128, height: 128 } }).media;
    const r = await collect(joined, media, false);
    expect(r.errors).toEqual([]);
    expect(r.framesOut).toBe(60);
    expect(r.outputs.filter((o) => o.ended).length).toBe(1);
    const out = join(dir.path, 'switched-out.ts');
    writeFileSync(out, r.file());
    const sizes = await probeFrameSizes(out);
    expect(sizes.length).toBe(60);
    expect(sizes.every((s) => s.width === 128 && s.height === 128)).toBe(true);
  });
});
