// Media in and out of a running stream over real trickle: a clip published in real time (one
// segment per GOP, its bytes spread over its duration), and an output channel read to a file
// with the arrival time of every segment. Both stop on an AbortSignal or at their natural end.
import { segmentFile } from '../../src/media/segmenter.ts';
import { TricklePublisher } from '../../src/transport/trickle/index.ts';
import { recordOutput } from './output-record.ts';

export interface PublishOptions {
  signal?: AbortSignal;
  /** Close (DELETE) the channel after the last segment: the stream sees its input end. Default true. */
  close?: boolean;
  /** Pause before segment index i (0-based, counted over all loops), e.g. to stall the input. */
  pauseBefore?: { index: number; ms: number };
}

export interface PublishResult {
  segments: number;
  /** When each segment was sent (ms, performance.now()). */
  sentAt: number[];
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/** Publishes `clip` to `url` in real time. */
export async function publishClip(url: string, clip: string, o: PublishOptions = {}): Promise<PublishResult> {
  const segs = [];
  for await (const s of segmentFile(clip)) segs.push(s);
  const pub = new TricklePublisher(url, { deleteChannel: o.close ?? true });
  const sentAt: number[] = [];
  const t0 = performance.now();
  let offsetS = 0;
  let n = 0;
  try {
    for (const s of segs) {
      if (o.signal?.aborted) return { segments: n, sentAt };
      if (o.pauseBefore?.index === n) {
        await sleep(o.pauseBefore.ms, o.signal);
        offsetS += o.pauseBefore.ms / 1000;
      }
      const start = t0 + (offsetS + s.startSeconds - segs[0].startSeconds) * 1000;
      await sleep(start - performance.now(), o.signal);
      sentAt.push(performance.now());
      // As a live encoder does: the segment's bytes go out over its duration, a frame's worth at a time.
      const w = pub.next();
      const parts = Math.max(1, s.videoPackets);
      const step = Math.ceil(s.data.length / parts);
      for (let i = 0; i < parts; i++) {
        await w.write(s.data.subarray(i * step, Math.min(s.data.length, (i + 1) * step)));
        await sleep(start + ((i + 1) * s.durationSeconds * 1000) / parts - performance.now(), o.signal);
      }
      await w.end();
      n++;
    }
  } finally {
    if (o.close ?? true) await pub.close().catch(() => undefined);
    else pub.removeAllListeners();
  }
  return { segments: n, sentAt };
}

export interface Collected {
  path: string;
  segments: number;
  bytes: number;
  /** Arrival time (performance.now()) of each output segment's first byte. */
  firstByteAt: number[];
  endReason: string | null;
}

/** Reads every segment of `url` from seq 0 into `path` until the channel closes or `signal` aborts. */
export async function collectOutput(url: string, path: string, o: { signal?: AbortSignal; waitForChannelMs?: number } = {}): Promise<Collected> {
  const r = recordOutput(url, path, { ...o, clock: () => performance.now() });
  await r.done;
  return { path, segments: r.segments, bytes: r.bytes, firstByteAt: r.at, endReason: r.endReason };
}
