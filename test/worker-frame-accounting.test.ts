import { describe, expect, it } from 'vitest';
import { DropOldestMailbox } from '../src/runner/mailbox.ts';
import { FrameStats, quantile } from '../src/runner/stats.ts';

describe('drop-oldest mailbox', () => {
  it('hands frames over in order while the consumer keeps up', async () => {
    const dropped: number[] = [];
    const box = new DropOldestMailbox<number>(2, (n) => dropped.push(n));
    const got: number[] = [];
    const consumer = (async () => {
      for await (const n of box) got.push(n);
    })();
    for (let i = 0; i < 5; i++) {
      box.push(i);
      await Promise.resolve();
    }
    box.end();
    await consumer;
    expect(got).toEqual([0, 1, 2, 3, 4]);
    expect(dropped).toEqual([]);
  });

  it('drops the oldest waiting frame when the consumer is slower, keeping at most capacity waiting', async () => {
    const dropped: number[] = [];
    const box = new DropOldestMailbox<number>(2, (n) => dropped.push(n));
    for (let i = 0; i < 6; i++) box.push(i);
    expect(box.size).toBe(2);
    expect(dropped).toEqual([0, 1, 2, 3]);
    box.end();
    const rest: number[] = [];
    for await (const n of box) rest.push(n);
    expect(rest).toEqual([4, 5]);
  });

  it('ends a waiting consumer and drops pushes after the end', async () => {
    const dropped: number[] = [];
    const box = new DropOldestMailbox<number>(1, (n) => dropped.push(n));
    const pending = box.next();
    box.end();
    expect((await pending).done).toBe(true);
    box.push(7);
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
