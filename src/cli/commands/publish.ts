// `streamfleet publish <file> <channel-url> [--realtime]`: cuts a TS or MP4 file into one MPEG-TS
// segment per GOP (remux, no re-encode) and posts each one to a trickle channel; --realtime paces
// them as a live encoder would: each segment starts when the clock reaches its first timestamp and
// its bytes go out over its duration, one video frame's share at a time. The channel is closed at
// the end.
import '../../polyfill.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultConfig, type Config } from '../../config.ts';
import { createLogger, type Logger } from '../../log.ts';
import { MediaError } from '../../media/errors.ts';
import { segmentFile } from '../../media/segmenter.ts';
import { TricklePublisher } from '../../transport/trickle/publisher.ts';
import { parseCommandArgs, usageError } from '../args.ts';

export const usage = 'publish <file> <channel-url> [--realtime]   post a file to a trickle channel, one segment per GOP';

export interface PublishFileOptions {
  realtime?: boolean;
  config?: Readonly<Config>;
  signal?: AbortSignal;
  log?: Logger;
  /** Called after each segment was accepted. */
  onSegment?: (s: { seq: number; data: Uint8Array; startSeconds: number }) => void;
}

export interface PublishFileResult {
  segments: number;
  bytes: number;
}

/** Publishes every segment of `path` to `url`, then deletes the channel (also on failure). */
export async function publishFile(path: string, url: string, opts: PublishFileOptions = {}): Promise<PublishFileResult> {
  const config = opts.config ?? defaultConfig;
  const pub = new TricklePublisher(url, { config: config.trickle, signal: opts.signal, logger: opts.log });
  const result: PublishFileResult = { segments: 0, bytes: 0 };
  const t0 = performance.now();
  let firstStart: number | null = null;
  try {
    for await (const seg of segmentFile(path, { media: config.media })) {
      let seq: number;
      if (opts.realtime) {
        // Segment k starts when the wall clock has advanced as far as its timestamps have.
        firstStart ??= seg.startSeconds;
        const start = t0 + (seg.startSeconds - firstStart) * 1000;
        const waitUntil = async (at: number) => {
          const wait = at - performance.now();
          if (wait > 0) await sleep(wait, undefined, { signal: opts.signal });
        };
        await waitUntil(start);
        const w = pub.next();
        seq = w.seq;
        const parts = Math.max(1, seg.videoPackets);
        const step = Math.ceil(seg.data.length / parts);
        for (let i = 0; i < parts; i++) {
          await w.write(seg.data.subarray(i * step, Math.min(seg.data.length, (i + 1) * step)));
          await waitUntil(start + ((i + 1) * seg.durationSeconds * 1000) / parts);
        }
        await w.end();
      } else {
        seq = await pub.writeSegment(seg.data);
      }
      result.segments++;
      result.bytes += seg.data.length;
      opts.onSegment?.({ seq, data: seg.data, startSeconds: seg.startSeconds });
    }
  } finally {
    await pub.close();
  }
  return result;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('publish', usage, argv, { realtime: { type: 'boolean', default: false } });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 2) return usageError('publish', usage);
  const [path, url] = positionals;
  try {
    new URL(url);
  } catch {
    process.stderr.write(`streamfleet publish: bad channel URL '${url}'\n`);
    return 2;
  }
  const log = createLogger(defaultConfig.logLevel);
  try {
    const r = await publishFile(path, url, { realtime: values.realtime, log });
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  } catch (err) {
    const code = err instanceof MediaError ? err.code : ((err as { code?: string }).code ?? 'ERROR');
    process.stderr.write(`streamfleet publish: ${code}: ${(err as Error).message}\n`);
    return 1;
  }
}
