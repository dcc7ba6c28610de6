import { describe, expect, it } from 'vitest';
import { LagWatch } from '../src/runner/lag-watch.ts';
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

function queue(limits: { maxFramesInFlight?: number; maxQueuedBytes?: number }, now: () => number, dropped: number[] = []) {
  return new UnitQueue<U>(
    { maxFramesInFlight: limits.maxFramesInFlight ?? 2, maxQueuedBytes: limits.maxQueuedBytes ?? 1 << 20 },
    (u) => (u.marker ? null : { video: u.video, key: u.key ?? false, bytes: u.bytes ?? 100 }),
    (u) => dropped.push(u.n),
    now,
  );
}

const TICKS_PER_FRAME = 3000n; // 30 fps on the 90 kHz clock

/**
 * Drives a queue and a LagWatch as the runner does: frames arrive every `inputMs` (`burst` of them
 * at once when set), the loop takes `graphMs` per frame it runs and `skipMs` per frame it skips.
 */
async function simulate(o: { frames: number; inputMs: number; burst?: number; graphMs: number; skipMs?: number; maxBusyMs?: number }) {
  let t = 0;
  const q = queue({ maxFramesInFlight: 2 }, () => t);
  const lag = new LagWatch(o.maxBusyMs ?? 1000, 90);
  const burst = o.burst ?? 1;
  const arrivals: number[] = [];
  for (let i = 0; i < o.frames; i++) arrivals.push(Math.floor(i / burst) * burst * o.inputMs);
  let next = 0;
  const latencies: number[] = [];
  let skipped = 0;
  const admit = () => {
    while (next < o.frames && arrivals[next] <= t) q.push({ n: next++, video: true });
  };
  for (let done = 0; done < o.frames; ) {
    admit();
    if (q.size === 0) {
      // Idle until the next arrival (the consumer waits: a new busy period starts then).
      void q.next().then(() => undefined);
      t = arrivals[next];
      admit();
      // The waiting next() took the first unit; account for it as taken now.
    } else {
      await q.next();
    }
    const n = done;
    const pts = BigInt(n) * TICKS_PER_FRAME;
    if (lag.skip(pts, q.busySince, q.backedUp, t)) {
      skipped++;
      t += o.skipMs ?? 1;
    } else {
      t += o.graphMs;
      latencies.push(t - arrivals[n]);
    }
    done++;
  }
  return { skipped, maxLatency: Math.max(...latencies), lastLatency: latencies[latencies.length - 1] };
}

describe('unit queue and lag watch (between input and processing)', () => {
  it('hands units over in order while the consumer keeps up', async () => {
    let t = 0;
    const q = queue({}, () => t);
    const got: number[] = [];
    const consumer = (async () => {
      for await (const u of q) got.push(u.n);
    })();
    for (let i = 0; i < 5; i++) {
      q.push({ n: i, video: true });
      t += 33;
      await Promise.resolve();
    }
    q.end();
    await consumer;
    expect(got).toEqual([0, 1, 2, 3, 4]);
  });

  it('a graph faster than the input skips nothing', async () => {
    const r = await simulate({ frames: 300, inputMs: 1000 / 30, graphMs: 10 });
    expect(r.skipped).toBe(0);
    expect(r.maxLatency).toBeLessThanOrEqual(10);
  });

  it('a whole 2 s segment posted at once, cleared faster than real time (even slower than maxBusyMs), loses nothing', async () => {
    // 60 frames at once every 2 s; 25 ms a frame: 1.5 s to clear each burst, beyond maxBusyMs (1 s).
    const r = await simulate({ frames: 240, inputMs: 1000 / 30, burst: 60, graphMs: 25 });
    expect(r.skipped).toBe(0);
  });

  it('a graph slower than the input skips frames and keeps latency bounded by about maxBusyMs', async () => {
    // 60 ms a frame against 33 ms input, for 20 s.
    const r = await simulate({ frames: 600, inputMs: 1000 / 30, graphMs: 60, maxBusyMs: 1000 });
    expect(r.skipped).toBeGreaterThan(200);
    expect(r.maxLatency).toBeLessThan(1000 + 200);
    expect(r.lastLatency).toBeLessThan(1000 + 200);
  });

  it('a burst the loop cannot clear in real time is cut too (else latency would grow)', async () => {
    const r = await simulate({ frames: 600, inputMs: 1000 / 30, burst: 60, graphMs: 40 });
    expect(r.skipped).toBeGreaterThan(0);
    expect(r.lastLatency).toBeLessThan(2000 + 1000 + 200);
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
