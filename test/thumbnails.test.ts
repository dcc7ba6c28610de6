// Thumbnails from the worker to the edge: the JPEG a frame becomes (real FFmpeg via node-av), the
// tap's rate per side, the bus message (JPEG bytes only), and the edge's store with its bounds.
import { afterEach, describe, expect, it } from 'vitest';
import { ThumbnailStore } from '../src/actors/thumbnails.ts';
import { loadConfig } from '../src/config.ts';
import { rootLogger } from '../src/log.ts';
import { applyFfmpegLogLevel } from '../src/media/ffmpeg-log.ts';
import { JpegThumbnailer, qscaleFor, thumbnailSize } from '../src/media/jpeg.ts';
import { ThumbnailTap } from '../src/runner/thumbnails.ts';
import type { Bus } from '../src/transport/bus.ts';
import { createBus } from '../src/transport/create-bus.ts';
import { parseThumbSubject, subjectPatterns, subjects } from '../src/transport/subjects.ts';

const log = rootLogger.child({ test: 'thumbnails' });
applyFfmpegLogLevel(loadConfig().media);
const thumbCfg = (over: Record<string, unknown> = {}) => loadConfig({ dashboard: { thumbnails: over } }).dashboard.thumbnails;

/** Width and height from a baseline JPEG's SOF0 marker. */
function jpegSize(b: Buffer): { width: number; height: number } {
  let i = 2;
  while (i < b.length) {
    if (b[i] !== 0xff) throw new Error(`no marker at ${i}`);
    const marker = b[i + 1];
    const len = b.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xc3) return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) };
    i += 2 + len;
  }
  throw new Error('no SOF marker');
}

function rgb(w: number, h: number, value: (x: number, y: number) => [number, number, number]): Uint8Array {
  const f = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f.set(value(x, y), (y * w + x) * 3);
  return f;
}

const buses: Bus[] = [];
afterEach(async () => {
  for (const b of buses.splice(0)) await b.close();
});

describe('the JPEG thumbnailer', () => {
  it('makes a JPEG of the configured width with the frame aspect ratio, for every scaler', () => {
    for (const scaler of ['fast_bilinear', 'bilinear', 'area'] as const) {
      const t = new JpegThumbnailer({ width: 160, quality: 70, scaler });
      const j = t.encode(rgb(512, 288, (x, y) => [x & 255, y & 255, 128]), 512, 288);
      expect(j[0]).toBe(0xff);
      expect(j[1]).toBe(0xd8);
      expect(j.subarray(-2)).toEqual(Buffer.from([0xff, 0xd9]));
      expect(jpegSize(j)).toEqual({ width: 160, height: 90 });
      // Another size reopens the contexts.
      expect(jpegSize(t.encode(rgb(256, 256, () => [10, 20, 30]), 256, 256))).toEqual({ width: 160, height: 160 });
      t.close();
    }
  });

  it('spends more bytes at a higher quality, and maps quality onto mjpeg qscale 31..2', () => {
    const frame = rgb(256, 256, (x, y) => [(x * 7) & 255, (y * 13) & 255, (x ^ y) & 255]);
    const size = (quality: number) => {
      const t = new JpegThumbnailer({ width: 160, quality, scaler: 'bilinear' });
      const n = t.encode(frame, 256, 256).length;
      t.close();
      return n;
    };
    expect(size(95)).toBeGreaterThan(size(30));
    expect([qscaleFor(1), qscaleFor(100), qscaleFor(70)]).toEqual([31, 2, 11]);
    expect(thumbnailSize(100, 50, 160)).toEqual({ width: 100, height: 50 });
    expect(thumbnailSize(33, 33, 16)).toEqual({ width: 16, height: 16 });
  });

  it('refuses a buffer shorter than the frame it claims', () => {
    const t = new JpegThumbnailer({ width: 160, quality: 70, scaler: 'bilinear' });
    expect(() => t.encode(new Uint8Array(10), 64, 64)).toThrow(/expected 64x64x3/);
    t.close();
  });
});

describe('the worker tap and the edge store', () => {
  it('publishes at most fps thumbnails per second per side, JPEG bytes only, and the edge serves the latest', async () => {
    const bus = await createBus(loadConfig().bus);
    buses.push(bus);
    const store = new ThumbnailStore(bus, thumbCfg(), log);
    const seen: string[] = [];
    const raw = bus.subscribe(subjectPatterns.allThumbnails);
    void (async () => {
      for await (const m of raw) seen.push(`${m.subject}:${m.data.length}`);
    })();
    let now = 0;
    const tap = new ThumbnailTap('cam', bus, thumbCfg({ fps: 2 }), log, () => now);
    const frame = rgb(128, 128, () => [200, 10, 10]);
    // 3 s of 30 fps input and output: 2 per second per side, the first at once.
    for (let k = 0; k < 90; k++) {
      now = (k * 1000) / 30;
      tap.frame('input', frame, 128, 128);
      tap.frame('output', frame, 128, 128);
    }
    await bus.flush();
    await new Promise((r) => setTimeout(r, 20));
    expect(tap.counters.published).toBe(12);
    expect(seen.filter((s) => s.startsWith(subjects.streamThumb('cam', 'input'))).length).toBe(6);
    expect(seen.filter((s) => s.startsWith(subjects.streamThumb('cam', 'output'))).length).toBe(6);
    const latest = store.get('cam', 'output');
    expect(latest?.jpeg[0]).toBe(0xff);
    expect(jpegSize(latest!.jpeg)).toEqual({ width: 128, height: 128 });
    expect(store.get('cam', 'input')!.seq).toBeLessThan(latest!.seq);
    tap.close();
    tap.frame('input', frame, 128, 128);
    expect(tap.counters.published).toBe(12);
    raw.unsubscribe();
    store.close();
  });

  it('makes none while the bus is down, so none waits in its reconnect buffer', async () => {
    const bus = await createBus(loadConfig().bus);
    let now = 0;
    const tap = new ThumbnailTap('cam', bus, thumbCfg({ fps: 2 }), log, () => now);
    const frame = rgb(64, 64, () => [1, 2, 3]);
    tap.frame('input', frame, 64, 64);
    expect(tap.counters.published).toBe(1);
    await bus.close();
    expect(bus.connection()).toBe('down');
    now = 1_000;
    tap.frame('input', frame, 64, 64);
    expect(tap.counters).toMatchObject({ published: 1, busDown: 1, failures: 0 });
    tap.close();
  });

  it('is not made at all when thumbnails are off', () => {
    expect(ThumbnailTap.create('cam', {} as Bus, thumbCfg({ enabled: false }), log)).toBeNull();
  });

  it('drops what is not a JPEG or too large, keeps a bounded number of streams, and forgets old ones', async () => {
    const bus = await createBus(loadConfig().bus);
    buses.push(bus);
    let now = 1_000;
    const store = new ThumbnailStore(bus, thumbCfg({ maxStreamsKept: 2, maxBytes: 1024, keepMs: 5_000 }), log, () => now);
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);
    bus.publish(subjects.streamThumb('a', 'input'), Buffer.from('not a jpeg'));
    bus.publish(subjects.streamThumb('a', 'input'), Buffer.concat([jpeg, Buffer.alloc(2000)]));
    for (const id of ['a', 'b', 'c']) bus.publish(subjects.streamThumb(id, 'output'), jpeg);
    await bus.flush();
    await new Promise((r) => setTimeout(r, 20));
    expect(store.rejected).toBe(2);
    expect(store.get('a', 'input')).toBeUndefined();
    expect(store.get('a', 'output')).toBeUndefined();
    expect(store.get('c', 'output')?.jpeg).toEqual(jpeg);
    expect(store.size).toBe(2);
    now += 6_000;
    expect(store.get('c', 'output')).toBeUndefined();
    expect(parseThumbSubject('sf.stream.x.thumb.sideways')).toBeNull();
    expect(parseThumbSubject(subjects.streamThumb('x', 'input'))).toEqual({ streamId: 'x', side: 'input' });
    store.close();
  });
});
