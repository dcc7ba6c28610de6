import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FramePool } from '../src/media/frame-pool.ts';
import { TsDemuxer, type TsUnit } from '../src/media/ts-demux.ts';
import { VideoDecoder } from '../src/media/video-decoder.ts';
import { makeClip, tempDir } from './helpers/clips.ts';

const dir = tempDir('sf-frame-pool-');
let units: TsUnit[] = [];

beforeAll(async () => {
  const clip = await makeClip(join(dir.path, 'c.ts'), { seconds: 1, width: 320, height: 240 });
  const d = new TsDemuxer({ maxPesBytes: 1 << 24 });
  const events = [...d.push(readFileSync(clip), 0), ...d.endSegment(0)];
  units = events.flatMap((e) => (e.type === 'unit' && e.unit.kind === 'video' ? [e.unit] : []));
});
afterAll(() => dir.remove());

describe('frame buffers from a pool', () => {
  it('hands a returned buffer out again, keeps a bounded number idle, and ignores buffers it does not own', () => {
    const pool = new FramePool(2);
    const a = pool.take(100);
    const b = pool.take(100);
    const c = pool.take(100);
    expect(pool.allocated).toBe(3);
    pool.release(a);
    pool.release(a); // a second release of the same buffer is ignored
    pool.release(b);
    pool.release(c); // over the bound: dropped
    expect(pool.take(100)).toBe(b);
    expect(pool.take(100)).toBe(a);
    expect(pool.allocated).toBe(3);
    // Not the pool's (a graph's own output, a view into something else): never recycled.
    pool.release(Buffer.alloc(100));
    pool.release(c.subarray(1));
    expect(pool.take(100)).not.toBe(c);
    // A buffer moved to another thread (detached) is dropped.
    const d = pool.take(64);
    structuredClone(d.buffer, { transfer: [d.buffer as ArrayBuffer] });
    pool.release(d);
    expect(pool.take(64).byteLength).toBe(64);
  });

  it('decodes into pooled buffers the same pictures, byte for byte, as a new buffer per frame, with and without a crop', () => {
    for (const [w, h] of [
      [320, 240],
      [128, 128],
      [200, 100],
    ]) {
      const pool = new FramePool();
      const pooled = VideoDecoder.open(0x1b, { width: w, height: h, threads: 1, pool });
      const plain = VideoDecoder.open(0x1b, { width: w, height: h, threads: 1 });
      let frames = 0;
      for (const u of units) {
        const x = pooled.decode(u);
        const y = plain.decode(u);
        expect(x.length).toBe(y.length);
        for (const [i, f] of x.entries()) {
          expect(f.pts).toBe(y[i].pts);
          expect(Buffer.compare(Buffer.from(f.data), Buffer.from(y[i].data))).toBe(0);
          pool.release(f.data);
          frames++;
        }
      }
      expect(frames).toBe(30);
      // Every frame was given back before the next one: one buffer did for all of them.
      expect(pool.allocated).toBe(1);
      pooled.close();
      plain.close();
    }
  });
});
