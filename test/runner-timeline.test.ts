// PtsRebaser: one input's raw 33-bit pts (video in presentation order, audio in demux order) onto
// one strictly increasing output timeline, across wraps, publisher restarts, jumps and reset().
// Examples pin exact values; properties check the guarantees over generated inputs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DISCONTINUITY_KINDS,
  PTS_WRAP,
  PtsRebaser,
  defaultTimelineConfig,
  type Discontinuity,
  type DiscontinuityKind,
  type TimelineStream,
} from '../src/runner/timeline.ts';
import { TimelineConfigSchema } from '../src/config.ts';

const W = PTS_WRAP;
const ms = (n: number): bigint => BigInt(Math.round(n * 90));
const V_STEP = 3000n; // 30 fps
const A_STEP = 1920n; // AAC: 1024 samples at 48 kHz
const TOL = ms(defaultTimelineConfig.maxBackwardStepMs);
const MAX_FWD = ms(defaultTimelineConfig.maxForwardJumpMs);
const mod33 = (x: bigint): bigint => ((x % W) + W) % W;

interface Packet {
  stream: TimelineStream;
  raw: bigint;
  /** The input section (publisher run) the packet belongs to, for grouping in assertions. */
  section: number;
  /** The pts before reducing to 33 bits (what a never-wrapping clock would have said). */
  unwrapped: bigint;
}
type Item = Packet | 'reset';
interface Placed extends Packet {
  pts: bigint;
  advances: boolean;
  discontinuity: Discontinuity | null;
}

function run(items: readonly Item[], tl = new PtsRebaser()): Placed[] {
  const out: Placed[] = [];
  for (const it of items) {
    if (it === 'reset') tl.reset();
    else out.push({ ...it, ...(it.stream === 'video' ? tl.video(it.raw) : tl.audio(it.raw)) });
  }
  return out;
}

const packet = (stream: TimelineStream, unwrapped: bigint, section = 0): Packet => ({ stream, raw: mod33(unwrapped), unwrapped, section });
const videoRun = (start: bigint, frames: number, section = 0, step = V_STEP): Packet[] =>
  Array.from({ length: frames }, (_, i) => packet('video', start + BigInt(i) * step, section));

/**
 * One publisher run with video and audio, in arrival order: video frame i arrives at i * 3000,
 * audio packet j at j * 1920 (video first on a tie), audio pts = video pts + `lead` at the same
 * arrival. Audio covers the video's span.
 */
function avRun(vStart: bigint, lead: bigint, frames: number, section = 0): Packet[] {
  const items: Array<Packet & { arrival: bigint; order: number }> = [];
  for (let i = 0; i < frames; i++) items.push({ ...packet('video', vStart + BigInt(i) * V_STEP, section), arrival: BigInt(i) * V_STEP, order: 0 });
  const span = BigInt(frames - 1) * V_STEP;
  for (let j = 0n; j * A_STEP <= span; j++) items.push({ ...packet('audio', vStart + lead + j * A_STEP, section), arrival: j * A_STEP, order: 1 });
  items.sort((a, b) => (a.arrival < b.arrival ? -1 : a.arrival > b.arrival ? 1 : a.order - b.order));
  return items.map(({ stream, raw, unwrapped, section: s }) => ({ stream, raw, unwrapped, section: s }));
}

/** First packet that does not advance, or that is not after its stream's previous output. */
function firstNotIncreasing(out: readonly Placed[]): string | null {
  const last: Record<TimelineStream, bigint | null> = { video: null, audio: null };
  for (const [i, o] of out.entries()) {
    const prev = last[o.stream];
    if (!o.advances || (prev !== null && o.pts <= prev)) return `#${i} ${o.stream} raw ${o.raw} -> ${o.pts} after ${prev} (advances ${o.advances})`;
    last[o.stream] = o.pts;
  }
  return null;
}

const events = (out: readonly Placed[]): Discontinuity[] => out.flatMap((o) => (o.discontinuity ? [o.discontinuity] : []));
const kinds = (out: readonly Placed[]): DiscontinuityKind[] => events(out).map((e) => e.kind);
const offsets = (out: readonly Placed[]): bigint[] => out.map((o) => o.pts - o.raw);
const last = <T>(xs: readonly T[]): T => xs[xs.length - 1];
const lastOf = <T extends { stream: TimelineStream }>(xs: readonly T[], stream: TimelineStream): T => last(xs.filter((o) => o.stream === stream));
const zeroCounts = (): Record<DiscontinuityKind, number> => ({ wrap: 0, backward: 0, forward: 0, reset: 0, realign: 0 });

describe('a continuous input keeps its own timing', () => {
  it('output = input exactly for jittery video and audio; steps back within the tolerance are flagged, not rebased', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: ms(2_000), max: W - (1n << 31n) }),
        fc.bigInt({ min: -ms(1000), max: ms(1000) }),
        fc.array(fc.record({ video: fc.boolean(), step: fc.bigInt({ min: -ms(5), max: ms(60) }) }), { minLength: 1, maxLength: 300 }),
        (start, lead, steps) => {
          const at: Record<TimelineStream, bigint> = { video: start, audio: start + lead };
          const items = steps.map(({ video, step }) => {
            const stream: TimelineStream = video ? 'video' : 'audio';
            at[stream] += step;
            return packet(stream, at[stream]);
          });
          const tl = new PtsRebaser();
          const out = run(items, tl);
          expect(out.every((o) => o.pts === o.unwrapped)).toBe(true);
          expect(events(out)).toEqual([]);
          // advances exactly when the pts is above every earlier pts of its stream.
          const max: Record<TimelineStream, bigint | null> = { video: null, audio: null };
          const flagged = { video: 0, audio: 0 };
          for (const o of out) {
            const m = max[o.stream];
            const expected = m === null || o.raw > m;
            expect(o.advances).toBe(expected);
            if (expected) max[o.stream] = o.raw;
            else flagged[o.stream]++;
          }
          expect(tl.counts()).toEqual({ discontinuities: zeroCounts(), notAdvancing: flagged });
        },
      ),
    );
  });

  it('a step back of exactly the tolerance is passed through flagged; one tick more is a backward discontinuity', () => {
    const base = [900_000n, 903_000n, 906_000n];
    const within = run([...base, 906_000n - TOL, 909_000n].map((r) => packet('video', r)));
    expect(within.map((o) => [o.pts, o.advances])).toEqual([
      [900_000n, true],
      [903_000n, true],
      [906_000n, true],
      [906_000n - TOL, false],
      [909_000n, true],
    ]);
    expect(events(within)).toEqual([]);

    const beyond = run([...base, 906_000n - TOL - 1n].map((r) => packet('video', r)));
    expect(last(beyond).pts).toBe(909_000n);
    expect(last(beyond).advances).toBe(true);
    expect(kinds(beyond)).toEqual(['backward']);
  });

  it('a gap of exactly maxForwardJumpMs stays a gap; one tick more is rebased to one frame', () => {
    const base = [900_000n, 903_000n, 906_000n];
    const gap = run([...base, 906_000n + MAX_FWD].map((r) => packet('video', r)));
    expect(last(gap).pts).toBe(906_000n + MAX_FWD);
    expect(events(gap)).toEqual([]);

    const jump = run([...base, 906_000n + MAX_FWD + 1n].map((r) => packet('video', r)));
    expect(last(jump).pts).toBe(909_000n);
    expect(kinds(jump)).toEqual(['forward']);
  });

  it('the configured limits are the ones applied', () => {
    const tl = new PtsRebaser(TimelineConfigSchema.parse({ maxForwardJumpMs: 1_000, maxBackwardStepMs: 0 }));
    const out = run([0n, 3000n, 3000n + ms(2_000), 3000n + ms(2_000) - 1n].map((r) => packet('video', r)), tl);
    expect(out.map((o) => o.pts)).toEqual([0n, 3000n, 6000n, 9000n]);
    expect(kinds(out)).toEqual(['forward', 'backward']);
  });
});

describe('publisher restarts', () => {
  it('a restart to 0 mid-stream continues one frame after the last frame, and is reported', () => {
    const tl = new PtsRebaser();
    const out = run([...videoRun(900_000n, 100, 0), ...videoRun(0n, 100, 1)], tl);
    expect(firstNotIncreasing(out)).toBeNull();
    const oldLast = 900_000n + 99n * V_STEP;
    expect(out.slice(0, 100).every((o) => o.pts === o.raw)).toBe(true);
    expect(out.slice(100).map((o) => o.pts)).toEqual(Array.from({ length: 100 }, (_, i) => oldLast + V_STEP + BigInt(i) * V_STEP));
    expect(events(out)).toEqual([{ kind: 'backward', stream: 'video', from: oldLast, to: 0n, offset: oldLast + V_STEP }]);
    expect(out[100].discontinuity).not.toBeNull();
    expect(tl.counts().discontinuities).toEqual({ ...zeroCounts(), backward: 1 });
  });

  it('a forward jump of an hour continues one frame after the last frame', () => {
    const out = run([...videoRun(900_000n, 50, 0), ...videoRun(900_000n + 50n * V_STEP + ms(3_600_000), 50, 1)]);
    expect(firstNotIncreasing(out)).toBeNull();
    expect(out.map((o) => o.pts)).toEqual(Array.from({ length: 100 }, (_, i) => 900_000n + BigInt(i) * V_STEP));
    expect(kinds(out)).toEqual(['forward']);
  });

  it('several restarts: strictly increasing, one event each, one frame between sections, timing kept inside each', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(3000n, 3003n, 1500n, 3600n),
        fc.array(fc.record({ start: fc.bigInt({ min: 0n, max: (1n << 32n) - (1n << 20n) }), frames: fc.integer({ min: 1, max: 40 }) }), {
          minLength: 2,
          maxLength: 8,
        }),
        (step, sections) => {
          for (let k = 1; k < sections.length; k++) {
            const prevLast = sections[k - 1].start + BigInt(sections[k - 1].frames - 1) * step;
            const d = sections[k].start - prevLast;
            fc.pre(d < -TOL || d > MAX_FWD);
          }
          const tl = new PtsRebaser();
          const out = run(sections.flatMap((s, k) => videoRun(s.start, s.frames, k, step)), tl);
          expect(firstNotIncreasing(out)).toBeNull();
          let deltaSeen = false;
          for (let k = 0; k < sections.length; k++) {
            const mine = out.filter((o) => o.section === k);
            expect(new Set(offsets(mine)).size).toBe(1);
            if (k > 0) {
              const prev = lastOf(out.filter((o) => o.section === k - 1), 'video');
              expect(mine[0].pts - prev.pts).toBe(deltaSeen ? step : 3000n);
              expect(mine[0].discontinuity?.kind).toBe(mine[0].raw < prev.raw ? 'backward' : 'forward');
            }
            if (sections[k].frames > 1) deltaSeen = true;
          }
          expect(events(out)).toHaveLength(sections.length - 1);
          const c = tl.counts().discontinuities;
          expect(c.backward + c.forward).toBe(sections.length - 1);
        },
      ),
    );
  });

  it('the frame duration is the median of recent deltas (29.97 fps), or 1/30 s before any delta', () => {
    const ntsc = run([...videoRun(900_000n, 10, 0, 3003n), ...videoRun(0n, 2, 1)]);
    expect(ntsc[10].pts - ntsc[9].pts).toBe(3003n);

    const jitter = [0n, 3000n, 6006n, 9009n, 12_000n, 15_100n].map((r) => packet('video', r)); // deltas 3000 3006 3003 2991 3100
    const j = run([...jitter, packet('video', 5_000_000n)]);
    expect(j[6].pts - j[5].pts).toBe(3003n);

    // Repeated pts (flagged, passed through) are not deltas: the duration stays one frame.
    const dups = run([0n, 3000n, 3000n, 3000n, 6000n, 6000n, 6000n, 9000n, 900_000n * 10n].map((r) => packet('video', r)));
    expect(dups.map((o) => o.advances)).toEqual([true, true, false, false, true, false, false, true, true]);
    expect(last(dups).pts).toBe(12_000n);

    const single = run([packet('video', 900_000n), packet('video', 0n)]);
    expect(single[1].pts).toBe(900_000n + 3000n);

    const custom = new PtsRebaser(TimelineConfigSchema.parse({ defaultFrameDurationMs: 40 }));
    expect(run([packet('video', 900_000n), packet('video', 0n)], custom)[1].pts).toBe(900_000n + 3600n);
  });
});

describe('the 33-bit wrap', () => {
  it('video starting 5 s before 2^33 continues seamlessly; one wrap reported', () => {
    const start = W - ms(5_000);
    const tl = new PtsRebaser();
    const out = run(videoRun(start, 300), tl);
    expect(out.map((o) => o.pts)).toEqual(Array.from({ length: 300 }, (_, i) => start + BigInt(i) * V_STEP));
    const first = out.findIndex((o) => o.unwrapped >= W);
    expect(events(out)).toEqual([{ kind: 'wrap', stream: 'video', from: out[first - 1].raw, to: out[first].raw, offset: W }]);
    expect(out[first].discontinuity?.kind).toBe('wrap');
    expect(tl.counts().discontinuities).toEqual({ ...zeroCounts(), wrap: 1 });
  });

  it.each([
    ['ahead', ms(500), 'audio'],
    ['behind', -ms(500), 'video'],
  ] as const)('audio 0.5 s %s of video: both exact across the wrap, one wrap reported, by the first to wrap (%s)', (_, lead, first) => {
    const tl = new PtsRebaser();
    const out = run(avRun(W - ms(5_000), lead, 300), tl);
    expect(out.every((o) => o.pts === o.unwrapped)).toBe(true);
    expect(firstNotIncreasing(out)).toBeNull();
    expect(events(out).map((e) => [e.kind, e.stream])).toEqual([['wrap', first]]);
    expect(tl.counts().discontinuities.wrap).toBe(1);
  });

  it('any A/V offset up to 1 s, any start near the wrap: exact timing, one wrap, reported by whichever stream wraps first', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: W - ms(9_000), max: W - 1n }), fc.bigInt({ min: -ms(1_000), max: ms(1_000) }), (start, lead) => {
        const items = avRun(start, lead, 330);
        const out = run(items);
        expect(out.every((o) => o.pts === o.unwrapped)).toBe(true);
        expect(firstNotIncreasing(out)).toBeNull();
        // The first stream to step across 2^33 (one whose first packet is already past it never steps across).
        const prev: Record<TimelineStream, bigint | null> = { video: null, audio: null };
        const across = items.find((p) => {
          const crossed = prev[p.stream] !== null && prev[p.stream]! < W && p.unwrapped >= W;
          prev[p.stream] = p.unwrapped;
          return crossed;
        })!;
        expect(events(out).map((e) => [e.kind, e.stream])).toEqual([['wrap', across.stream]]);
      }),
    );
  });
});

describe('audio and video across a restart', () => {
  it('the new section keeps the input A/V offset exactly; the first frame follows the last one by one frame', () => {
    // Old run: audio 0.2 s behind video. New run (restart to 1 s): audio 0.3 s ahead.
    const oldRun = avRun(900_000n, -ms(200), 100, 0);
    const newRun = avRun(90_000n, ms(300), 100, 1);
    const out = run([...oldRun, ...newRun]);
    expect(firstNotIncreasing(out)).toBeNull();
    expect(out.filter((o) => o.section === 0).every((o) => o.pts === o.raw)).toBe(true);
    const fresh = out.filter((o) => o.section === 1);
    expect(new Set(offsets(fresh)).size).toBe(1); // out_a - out_v = raw_a - raw_v throughout
    expect(fresh[0].stream).toBe('video');
    expect(fresh[0].pts).toBe(lastOf(out.filter((o) => o.section === 0), 'video').pts + V_STEP);
    expect(kinds(out)).toEqual(['backward']);
  });

  it('audio of the new section arriving before its first video gets the same offset', () => {
    const oldRun = avRun(900_000n, ms(100), 100, 0);
    const newRun = avRun(90_000n, -ms(100), 100, 1);
    // The decoder holds video back: the new run's first five audio packets come out before any of its frames.
    const newAudio = newRun.filter((p) => p.stream === 'audio');
    const reordered = [...newAudio.slice(0, 5), ...newRun.filter((p) => !newAudio.slice(0, 5).includes(p))];
    const out = run([...oldRun, ...reordered]);
    expect(firstNotIncreasing(out)).toBeNull();
    const fresh = out.filter((o) => o.section === 1);
    expect(new Set(offsets(fresh)).size).toBe(1);
    const old = out.filter((o) => o.section === 0);
    expect(fresh[0].stream).toBe('audio');
    const v = lastOf(old, 'video').pts + V_STEP;
    const a = lastOf(old, 'audio').pts + A_STEP;
    expect(fresh[0].pts).toBe(v > a ? v : a);
    expect(events(out).map((e) => [e.kind, e.stream])).toEqual([['backward', 'audio']]);
  });

  // Old run: video 900_000 + i*3000 (i < 100, ends 1_197_000), audio 0.2 s behind (882_000 + j*1920).
  // At the cut the old audio up to j = 156 is out; j = 157..165 (to 1_198_800) arrive after the new
  // run's first frame, interleaved with its video, and before the new run's audio.
  const oldVideo = videoRun(900_000n, 100, 0);
  const oldAudio = Array.from({ length: 166 }, (_, j) => packet('audio', 882_000n + BigInt(j) * A_STEP, 0));
  const beforeCut: Packet[] = [];
  let j = 0;
  for (const v of oldVideo) {
    beforeCut.push(v);
    for (; j <= 156 && oldAudio[j].raw + ms(200) <= v.raw; j++) beforeCut.push(oldAudio[j]);
  }
  beforeCut.push(...oldAudio.slice(j, 157));
  const stragglers = oldAudio.slice(157);
  const withStragglers = (newVideo: Packet[], newAudio: Packet[]): Packet[] => [
    newVideo[0],
    ...stragglers.slice(0, 3),
    newVideo[1],
    ...stragglers.slice(3, 6),
    newVideo[2],
    ...stragglers.slice(6),
    ...avMerge(newVideo.slice(3), newAudio),
  ];
  const avMerge = (video: Packet[], audio: Packet[]): Packet[] => {
    const out: Packet[] = [];
    let j = 0;
    for (const v of video) {
      out.push(v);
      for (; j < audio.length && audio[j].raw - audio[0].raw <= v.raw - video[0].raw + 2n * V_STEP; j++) out.push(audio[j]);
    }
    return [...out, ...audio.slice(j)];
  };

  it('old-section audio arriving after the new section\'s first frames keeps the old offset', () => {
    expect(beforeCut.filter((p) => p.stream === 'audio')).toHaveLength(157);
    // New run restarts at 0, audio 0.1 s ahead.
    const newVideo = videoRun(0n, 60, 1);
    const newAudio = Array.from({ length: 90 }, (_, j) => packet('audio', ms(100) + BigInt(j) * A_STEP, 1));
    const tl = new PtsRebaser();
    const out = run([...beforeCut, ...withStragglers(newVideo, newAudio)], tl);
    expect(firstNotIncreasing(out)).toBeNull();
    // Everything of the old run, stragglers included, keeps offset 0.
    expect(out.filter((o) => o.section === 0).every((o) => o.pts === o.raw)).toBe(true);
    expect(out.filter((o) => o.section === 0 && o.stream === 'audio')).toHaveLength(166);
    // The new run: one offset for both streams, the first frame right after the old last frame.
    const fresh = out.filter((o) => o.section === 1);
    expect(new Set(offsets(fresh))).toEqual(new Set([1_200_000n]));
    expect(fresh).toHaveLength(150);
    expect(events(out)).toEqual([{ kind: 'backward', stream: 'video', from: 1_197_000n, to: 0n, offset: 1_200_000n }]);
    expect(tl.counts().discontinuities).toEqual({ ...zeroCounts(), backward: 1 });
  });

  it('stragglers running past the new section\'s start: its offset is raised (realign), nothing is lost, sync exact after', () => {
    // New run restarts at 1 s with audio 0.1 s BEHIND video: at the shared offset its first packet
    // (81_000 + 1_110_000 = 1_191_000) would not be after the last straggler (1_198_800).
    const newVideo = videoRun(90_000n, 60, 1);
    const newAudio = Array.from({ length: 90 }, (_, j) => packet('audio', 81_000n + BigInt(j) * A_STEP, 1));
    const tl = new PtsRebaser();
    const out = run([...beforeCut, ...withStragglers(newVideo, newAudio)], tl);
    expect(firstNotIncreasing(out)).toBeNull();
    expect(out.filter((o) => o.section === 0).every((o) => o.pts === o.raw)).toBe(true);
    const realigned = out.findIndex((o) => o.discontinuity?.kind === 'realign');
    const target = 1_198_800n + A_STEP;
    expect(out[realigned]).toMatchObject({ stream: 'audio', raw: 81_000n, pts: target });
    expect(out[realigned].discontinuity).toEqual({ kind: 'realign', stream: 'audio', from: 1_198_800n, to: 81_000n, offset: target - 81_000n });
    // Frames before the realign kept the section's first offset; everything after shares the raised one.
    const fresh = out.filter((o) => o.section === 1);
    const after = out.slice(realigned).filter((o) => o.section === 1);
    expect(fresh.filter((o) => !after.includes(o)).every((o) => o.pts - o.raw === 1_110_000n)).toBe(true);
    expect(new Set(offsets(after))).toEqual(new Set([target - 81_000n]));
    expect(tl.counts().discontinuities).toEqual({ ...zeroCounts(), backward: 1, realign: 1 });
  });

  it('a packet that fits both its own section and the newest one goes to the closer', () => {
    // Old run: video 900_000 + i*3000 (ends 1_197_000), audio 1 s behind (810_000 + j*1920); at the
    // cut the old audio is out to j = 154. The restart is only 0.5 s back (video to 1_152_000), so
    // the old audio still to come (j = 155..201) lies within maxInterleaveMs of the new video too, yet
    // each follows its own previous packet by one packet: old section. The new audio then starts at
    // 1_242_000, within maxForwardJumpMs of the old audio, but level with the new video: new section.
    const oldVideo = videoRun(900_000n, 100, 0);
    const oldAudio = Array.from({ length: 202 }, (_, j) => packet('audio', 810_000n + BigInt(j) * A_STEP, 0));
    const items: Packet[] = [];
    let j = 0;
    for (const v of oldVideo) {
      items.push(v);
      for (; j <= 154 && oldAudio[j].raw + ms(1_000) <= v.raw; j++) items.push(oldAudio[j]);
    }
    items.push(...oldAudio.slice(j, 155));
    const newVideo = videoRun(1_152_000n, 90, 1);
    const newAudio = Array.from({ length: 80 }, (_, k) => packet('audio', 1_242_000n + BigInt(k) * A_STEP, 1));
    items.push(newVideo[0]);
    const stragglers = oldAudio.slice(155);
    for (let i = 1, k = 0; i < 30; i++) {
      items.push(newVideo[i]);
      for (; k < stragglers.length && (k * 29) / stragglers.length < i; k++) items.push(stragglers[k]);
    }
    items.push(...avMerge(newVideo.slice(30), newAudio));
    expect(items.filter((p) => p.section === 0)).toHaveLength(302);

    const out = run(items);
    expect(firstNotIncreasing(out)).toBeNull();
    expect(out.filter((o) => o.section === 0).every((o) => o.pts === o.raw)).toBe(true);
    expect(new Set(offsets(out.filter((o) => o.section === 1)))).toEqual(new Set([1_200_000n - 1_152_000n]));
    expect(kinds(out)).toEqual(['backward']);
  });

  it('restarts with any A/V offsets: nothing lost, one event per restart, sync exact in each section from its last event on', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            start: fc.bigInt({ min: ms(2_000), max: (1n << 32n) - (1n << 24n) }),
            lead: fc.bigInt({ min: -ms(1_000), max: ms(1_000) }),
            frames: fc.integer({ min: 30, max: 90 }),
          }),
          { minLength: 2, maxLength: 5 },
        ),
        (sections) => {
          const runs = sections.map((s, k) => avRun(s.start, s.lead, s.frames, k));
          for (let k = 1; k < runs.length; k++) {
            for (const stream of ['video', 'audio'] as const) {
              const d = runs[k].find((p) => p.stream === stream)!.raw - lastOf(runs[k - 1], stream).raw;
              fc.pre(d < -TOL || d > MAX_FWD);
            }
          }
          const tl = new PtsRebaser();
          const out = run(runs.flat(), tl);
          expect(firstNotIncreasing(out)).toBeNull();
          const c = tl.counts().discontinuities;
          expect(c.backward + c.forward).toBe(sections.length - 1);
          expect(c.wrap).toBe(0);
          for (let k = 0; k < sections.length; k++) {
            const mine = out.filter((o) => o.section === k);
            const lastEvent = mine.findLastIndex((o) => o.discontinuity !== null);
            expect(new Set(offsets(mine.slice(Math.max(0, lastEvent)))).size).toBe(1);
            if (k > 0 && mine.every((o) => o.discontinuity?.kind !== 'realign')) {
              const prev = out.filter((o) => o.section === k - 1);
              const v = lastOf(prev, 'video').pts + V_STEP;
              const a = lastOf(prev, 'audio').pts + A_STEP;
              expect(mine[0].pts).toBe(v > a ? v : a);
            }
          }
        },
      ),
    );
  });
});

describe('reset()', () => {
  it('rebases the next frame like a jump even when its pts would continue', () => {
    const items = [...videoRun(900_000n, 10, 0), packet('video', 900_000n + 9n * V_STEP + ms(5_000), 1)];
    expect(last(run(items)).pts).toBe(900_000n + 9n * V_STEP + ms(5_000)); // without reset(): a 5 s gap, kept
    const tl = new PtsRebaser();
    const out = run([...items.slice(0, 10), 'reset', items[10]], tl);
    expect(last(out).pts).toBe(900_000n + 10n * V_STEP);
    expect(last(out).discontinuity).toEqual({ kind: 'reset', stream: 'video', from: 900_000n + 9n * V_STEP, to: items[10].raw, offset: 900_000n + 10n * V_STEP - items[10].raw });
    expect(tl.counts().discontinuities).toEqual({ ...zeroCounts(), reset: 1 });
  });

  it('the other stream\'s first packet after it joins with the same offset, however far from the video', () => {
    const oldRun = avRun(900_000n, 0n, 30, 0);
    const newRun = avRun(ms(20_000), ms(3_000), 30, 1); // audio 3 s ahead: beyond maxInterleaveMs
    const out = run([...oldRun, 'reset', ...newRun]);
    expect(firstNotIncreasing(out)).toBeNull();
    expect(new Set(offsets(out.filter((o) => o.section === 1))).size).toBe(1);
    expect(kinds(out)).toEqual(['reset']);
  });

  it('before any packet it changes nothing', () => {
    const tl = new PtsRebaser();
    tl.reset();
    expect(run(videoRun(900_000n, 3), tl).map((o) => [o.pts, o.discontinuity])).toEqual([
      [900_000n, null],
      [903_000n, null],
      [906_000n, null],
    ]);
  });
});

describe('any input', () => {
  // Per-stream steps: forward within the gap limit, jumps beyond it, steps back beyond the tolerance
  // (never a small step back, which is the caller's to drop), around the 33-bit clock; resets between.
  const step = fc.oneof(
    { weight: 8, arbitrary: fc.bigInt({ min: 1n, max: 6_000n }) },
    { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: MAX_FWD }) },
    { weight: 1, arbitrary: fc.bigInt({ min: MAX_FWD + 1n, max: (1n << 32n) - 1n }) },
    { weight: 1, arbitrary: fc.bigInt({ min: -((1n << 32n) - 1n), max: -TOL - 1n }) },
  );
  const op = fc.oneof(
    { weight: 40, arbitrary: fc.record({ video: fc.boolean(), step }) },
    // A restart of this stream to near the other's pts (both streams restarting together).
    { weight: 2, arbitrary: fc.record({ video: fc.boolean(), near: fc.bigInt({ min: -ms(3_000), max: ms(3_000) }) }) },
    { weight: 1, arbitrary: fc.constant('reset' as const) },
  );

  it('never loses a packet: every output is after its stream\'s last one; events and counters agree; deterministic', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: W - 1n }), fc.bigInt({ min: 0n, max: W - 1n }), fc.array(op, { maxLength: 400, size: 'max' }), (v0, a0, ops) => {
        const at: Record<TimelineStream, bigint> = { video: v0, audio: a0 };
        const items: Item[] = ops.map((o) => {
          if (o === 'reset') return o;
          const stream: TimelineStream = o.video ? 'video' : 'audio';
          let d = 'step' in o ? o.step : at[o.video ? 'audio' : 'video'] + o.near - at[stream];
          // A step back within the jitter tolerance is not a discontinuity (it does not advance): the
          // generator makes none, also where the 33-bit wrap turns a huge step into a small one back.
          const wrapped = ((((at[stream] + d) % W) + W) % W) - (((at[stream] % W) + W) % W);
          const back = wrapped > W / 2n ? wrapped - W : wrapped < -W / 2n ? wrapped + W : wrapped;
          if ((d >= -TOL && d <= 0n) || (back >= -TOL && back <= 0n)) d = 1n;
          at[stream] += d;
          return packet(stream, at[stream]);
        });
        const tl = new PtsRebaser();
        const out = run(items, tl);
        expect(firstNotIncreasing(out)).toBeNull();
        const counted = zeroCounts();
        for (const e of events(out)) counted[e.kind]++;
        expect(tl.counts()).toEqual({ discontinuities: counted, notAdvancing: { video: 0, audio: 0 } });
        expect(run(items).map((o) => o.pts)).toEqual(out.map((o) => o.pts));
      }),
    );
  });
});

describe('TimelineConfigSchema', () => {
  it('is valid when empty, with the documented defaults', () => {
    expect(TimelineConfigSchema.parse({})).toEqual({
      maxBackwardStepMs: 200,
      maxForwardJumpMs: 10_000,
      maxInterleaveMs: 2_000,
      defaultFrameDurationMs: 1000 / 30,
      frameDurationWindow: 8,
    });
    expect(Object.isFrozen(defaultTimelineConfig)).toBe(true);
    expect(DISCONTINUITY_KINDS).toEqual(Object.keys(zeroCounts()));
  });

  it.each([{ maxForwardJumpMs: 0 }, { maxBackwardStepMs: -1 }, { defaultFrameDurationMs: 0 }, { frameDurationWindow: 0 }, { frameDurationWindow: 65 }, { maxInterleaveMs: -5 }])(
    'rejects %o',
    (bad) => {
      expect(TimelineConfigSchema.safeParse(bad).success).toBe(false);
    },
  );
});
