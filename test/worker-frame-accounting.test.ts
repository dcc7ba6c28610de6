import { describe, expect, it } from 'vitest';
import { UnitQueue } from '../src/runner/unit-queue.ts';
import { FrameStats, quantile } from '../src/runner/stats.ts';

interface U {
  n: number;
  /** A segment marker (not a unit): never counted, never dropped. */
  marker?: boolean;
  video: boolean;
  key?: boolean;
  bytes?: number;
}

function queue(limits: { maxFramesInFlight?: number; maxBusyMs?: number; maxQueuedBytes?: number }, now: () => number, dropped: number[] = []) {
  return new UnitQueue<U>(
    { maxFramesInFlight: limits.maxFramesInFlight ?? 2, maxBusyMs: limits.maxBusyMs ?? 1000, maxQueuedBytes: limits.maxQueuedBytes ?? 1 << 20 },
    (u) => (u.marker ? null : { video: u.video, key: u.key ?? false, bytes: u.bytes ?? 100 }),
    (u) => dropped.push(u.n),
    now,
  );
}

describe('unit queue (between input and processing)', () => {
  it('hands units over in order while the consumer keeps up, and is never lagging', async () => {
    let t = 0;
    const q = queue({}, () => t);
    const got: number[] = [];
    const lag: boolean[] = [];
    const consumer = (async () => {
      for await (const u of q) {
        got.push(u.n);
        lag.push(q.lagging);
      }
    })();
    for (let i = 0; i < 5; i++) {
      q.push({ n: i, video: true });
      t += 33;
      await Promise.resolve();
    }
    q.end();
    await consumer;
    expect(got).toEqual([0, 1, 2, 3, 4]);
    expect(lag.every((x) => !x)).toBe(true);
  });

  it('keeps a whole burst that the consumer clears within maxBusyMs: nothing dropped, never lagging', async () => {
    let t = 0;
    const dropped: number[] = [];
    const q = queue({ maxBusyMs: 1000 }, () => t, dropped);
    const first = q.next();
    for (let i = 0; i < 60; i++) q.push({ n: i, video: true });
    expect((await first).value?.n).toBe(0);
    const lag: boolean[] = [];
    for (let i = 1; i < 60; i++) {
      t += 5; // 5 ms a frame: 60 frames in 300 ms
      const r = await q.next();
      expect(r.value?.n).toBe(i);
      lag.push(q.lagging);
    }
    expect(lag.some((x) => x)).toBe(false);
    expect(dropped).toEqual([]);
  });

  it('counts as lagging once busy beyond maxBusyMs with more than maxFramesInFlight video units waiting', async () => {
    let t = 0;
    const q = queue({ maxFramesInFlight: 2, maxBusyMs: 1000 }, () => t);
    void q.next(); // the consumer waits: idle at t=0
    q.push({ n: 0, video: true });
    // A graph slower than the input: 60 ms a frame against 33 ms input.
    let skipped = 0;
    for (let i = 1; i < 200; i++) {
      q.push({ n: i, video: true });
      t += 33;
      if (i % 2 === 0) {
        await q.next();
        // Lagging frames skip the graph: the loop takes them at decode speed.
        while (q.lagging) {
          skipped++;
          await q.next();
        }
      }
    }
    expect(skipped).toBeGreaterThan(0);
    // Once it sheds, the backlog stays bounded: no more than a few frames wait.
    expect(q.size).toBeLessThanOrEqual(6);
  });

  it('past maxQueuedBytes drops the oldest units down to half, then up to the next random access point; markers stay', async () => {
    const dropped: number[] = [];
    const q = queue({ maxQueuedBytes: 1000 }, () => 0, dropped);
    for (let n = 0; n <= 10; n++) {
      q.push({ n, video: true, key: n === 0 || n === 6, bytes: 100 });
      if (n === 2) q.push({ n: 100, marker: true, video: false });
    }
    expect(dropped).toEqual([0, 1, 2, 3, 4, 5]);
    q.end();
    const rest: number[] = [];
    for await (const u of q) rest.push(u.n);
    expect(rest).toEqual([100, 6, 7, 8, 9, 10]);
  });

  it('ends a waiting consumer and drops pushes after the end', async () => {
    const dropped: number[] = [];
    const q = queue({}, () => 0, dropped);
    const pending = q.next();
    q.end();
    expect((await pending).done).toBe(true);
    q.push({ n: 7, video: true });
    expect(dropped).toEqual([7]);
  });
});

describe('frame stats', () => {
  it('computes nearest-rank quantiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(xs, 0.5)).toBe(50);
    expect(quantile(xs, 0.99)).toBe(99);
    expect(quantile([], 0.5)).toBe(0);
  });

  it('reports fps, latency percentiles and drops per window, then starts a new window', () => {
    let t = 0;
    const stats = new FrameStats(() => t);
    for (let i = 0; i < 30; i++) {
      stats.frameIn();
      stats.frameOut(i < 29 ? 10 : 100);
    }
    stats.drop('graph_slow', 2);
    t = 1000;
    const s = stats.snapshot();
    expect(s.fpsIn).toBeCloseTo(30);
    expect(s.fpsOut).toBeCloseTo(30);
    expect(s.latencyP50Ms).toBe(10);
    expect(s.latencyP99Ms).toBe(100);
    expect(s.dropsByReason).toEqual({ graph_slow: 2 });
    t = 2000;
    const next = stats.snapshot();
    expect(next.fpsOut).toBe(0);
    expect(next.frameCount).toBe(30);
    expect(next.dropsByReason).toEqual({});
  });
});
