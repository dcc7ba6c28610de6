// An output channel recorded from outside, as a gateway's subscriber sees it: every segment's seq,
// the arrival of its first byte and where it begins in the file its bytes go to; then every video
// frame of the file with its pts and the segment (and arrival) that carried it. Used to check that
// one writer at a time fed a channel (seqs and pts only go up) and to count lost frames.
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { promisify } from 'node:util';
import { TrickleSubscriber } from '../../src/transport/trickle/index.ts';

const run = promisify(execFile);

export interface OutputRecord {
  seqs: number[];
  /** Arrival (the clock's: Date.now() unless told) of each segment's first byte. */
  at: number[];
  /** Byte offset in `path` where each segment begins. */
  offsets: number[];
  path: string;
  /** Segments read (an empty one too) and bytes, so far. */
  segments: number;
  bytes: number;
  /** How the channel ended, once `done` settled. */
  endReason: string | null;
  /** Settles once the channel ends or `signal` aborts (the file is complete then). */
  done: Promise<void>;
}

/** Reads every segment of `url` from seq 0 into `path` until the channel closes or `signal` aborts. */
export function recordOutput(
  url: string,
  path: string,
  o: { signal?: AbortSignal; clock?: () => number; waitForChannelMs?: number } = {},
): OutputRecord {
  const clock = o.clock ?? Date.now;
  const out: OutputRecord = { seqs: [], at: [], offsets: [], path, segments: 0, bytes: 0, endReason: null, done: Promise.resolve() };
  const file = createWriteStream(path);
  const sub = new TrickleSubscriber(url, { start: 0, waitForChannel: o.waitForChannelMs ?? 60_000, ...(o.signal ? { signal: o.signal } : {}) });
  out.done = (async () => {
    try {
      for await (const seg of sub) {
        let first = true;
        try {
          for await (const chunk of seg.body) {
            if (first) {
              out.seqs.push(seg.seq);
              out.at.push(clock());
              out.offsets.push(out.bytes);
              first = false;
            }
            out.bytes += chunk.length;
            if (!file.write(chunk)) await new Promise<void>((r) => file.once('drain', () => r()));
          }
        } catch {
          // a segment cut short (its writer died): keep what arrived
        }
        out.segments++;
      }
    } catch {
      // aborted or failed: what arrived is what we check
    } finally {
      out.endReason = sub.endReason;
      await new Promise<void>((r) => file.end(() => r()));
    }
  })();
  return out;
}

export interface RecordedFrame {
  pts: number;
  /** Arrival of the segment that carried it. */
  at: number;
  segment: number;
}

/** Every video frame of a recorded output, in file order. */
export async function recordedFrames(out: OutputRecord): Promise<RecordedFrame[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts,pos', '-of', 'csv=p=0', out.path], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout
    .split('\n')
    .map((l) => l.trim().split(','))
    .filter((f) => f.length >= 2 && f[0] !== '' && f[0] !== 'N/A')
    .map(([pts, pos]) => {
      const p = Number(pos);
      let i = 0;
      while (i + 1 < out.offsets.length && out.offsets[i + 1]! <= p) i++;
      return { pts: Number(pts), at: out.at[i] ?? 0, segment: i };
    });
}

/** The largest hole between consecutive frames whose segments arrived within [from, to], in frames (0: none lost). */
export function largestGap(frames: RecordedFrame[], fps: number, from: number, to: number): number {
  const step = 90_000 / fps;
  let gap = 0;
  for (let i = 1; i < frames.length; i++) {
    if (frames[i - 1]!.at < from || frames[i]!.at > to) continue;
    gap = Math.max(gap, Math.round((frames[i]!.pts - frames[i - 1]!.pts) / step) - 1);
  }
  return gap;
}
