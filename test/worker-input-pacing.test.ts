// The worker's input pacing (frames released on their own pts clock) and the mailbox's
// non-droppable items, on a fake clock: bursts become a steady flow, markers keep their place,
// and nothing is held longer than the configured bound.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DropOldestMailbox } from '../src/runner/mailbox.ts';
import { PtsPacer } from '../src/runner/pacer.ts';

type Item = { kind: 'frame'; n: number } | { kind: 'end'; n: number };

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function pacer(maxAheadMs = 1_000, resyncLateMs = 50) {
  const out: Array<{ item: Item; at: number }> = [];
  let ended = false;
  const t0 = Date.now();
  const p = new PtsPacer<Item>(
    { maxAheadMs, resyncLateMs, now: () => Date.now() },
    (item) => out.push({ item, at: Date.now() - t0 }),
    () => (ended = true),
  );
  return { p, out, ended: () => ended };
}

describe('input pacing', () => {
  it('turns a burst of decoded frames into one frame per frame interval', () => {
    const { p, out } = pacer();
    // 20 frames of a 30 fps stream come out of the demuxer at once.
    for (let i = 0; i < 20; i++) p.pushFrame({ kind: 'frame', n: i }, 10 + i / 30);
    expect(out.map((o) => o.item.n)).toEqual([0]);
    vi.advanceTimersByTime(1_000);
    expect(out).toHaveLength(20);
    const gaps = out.slice(1).map((o, i) => o.at - out[i].at);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(33);
    for (const g of gaps) expect(g).toBeLessThanOrEqual(34);
  });

  it('keeps markers in order behind the frames before them', () => {
    const { p, out, ended } = pacer();
    p.pushFrame({ kind: 'frame', n: 0 }, 0);
    p.pushFrame({ kind: 'frame', n: 1 }, 0.5);
    p.push({ kind: 'end', n: 1 });
    p.end();
    expect(out.map((o) => o.item.kind)).toEqual(['frame']);
    expect(ended()).toBe(false);
    vi.advanceTimersByTime(500);
    expect(out.map((o) => `${o.item.kind}${o.item.n}`)).toEqual(['frame0', 'frame1', 'end1']);
    expect(ended()).toBe(true);
  });

  it('never holds more than maxAheadMs: input far ahead restarts the clock', () => {
    const { p, out } = pacer(1_000);
    p.pushFrame({ kind: 'frame', n: 0 }, 0);
    p.pushFrame({ kind: 'frame', n: 1 }, 5); // 5 s ahead of the clock: released now
    expect(out.map((o) => o.item.n)).toEqual([0, 1]);
    expect(p.resyncs).toBe(1);
  });

  it('restarts the clock after a stall so the frames after it are smoothed again', () => {
    const { p, out } = pacer(1_000, 50);
    p.pushFrame({ kind: 'frame', n: 0 }, 0);
    vi.advanceTimersByTime(3_000); // the input stalls for 3 s
    for (let i = 1; i <= 10; i++) p.pushFrame({ kind: 'frame', n: i }, i / 30);
    expect(p.resyncs).toBe(1);
    expect(out).toHaveLength(2);
    vi.advanceTimersByTime(400);
    expect(out).toHaveLength(11);
  });

  it('stop() hands back what it held and releases nothing after', () => {
    const { p, out } = pacer();
    for (let i = 0; i < 5; i++) p.pushFrame({ kind: 'frame', n: i }, i / 30);
    const left = p.stop();
    expect(left.map((i) => i.n)).toEqual([1, 2, 3, 4]);
    vi.advanceTimersByTime(1_000);
    expect(out).toHaveLength(1);
  });
});

describe('drop-oldest mailbox with markers', () => {
  it('drops only droppable items, counts only them against the capacity, and keeps marker order', async () => {
    const dropped: Item[] = [];
    const box = new DropOldestMailbox<Item>(2, (i) => dropped.push(i), (i) => i.kind === 'frame');
    box.push({ kind: 'frame', n: 0 });
    box.push({ kind: 'end', n: 0 });
    box.push({ kind: 'frame', n: 1 });
    box.push({ kind: 'frame', n: 2 }); // frame 0 goes, the marker stays where it was
    box.push({ kind: 'end', n: 2 });
    expect(dropped).toEqual([{ kind: 'frame', n: 0 }]);
    box.end();
    const got: string[] = [];
    for await (const i of box) got.push(`${i.kind}${i.n}`);
    expect(got).toEqual(['end0', 'frame1', 'frame2', 'end2']);
  });

  it('drainRemaining empties the box so a stopped consumer can release what waited', () => {
    const box = new DropOldestMailbox<Item>(2, () => undefined, (i) => i.kind === 'frame');
    box.push({ kind: 'frame', n: 0 });
    box.push({ kind: 'end', n: 0 });
    expect(box.drainRemaining()).toHaveLength(2);
    expect(box.size).toBe(0);
    box.push({ kind: 'frame', n: 1 });
    box.push({ kind: 'frame', n: 2 });
    box.push({ kind: 'frame', n: 3 });
    expect(box.size).toBe(2);
  });
});
