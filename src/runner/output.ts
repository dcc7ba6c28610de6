// The pipeline's output side on trickle: a publisher that continues the channel's sequence (a
// restarted worker resumes where the last one stopped, with Lp-Trickle-Reset), and one lazy
// SegmentSink per output segment, which takes a publisher segment only when its first byte exists.
import type { TrickleConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { SegmentSink } from '../media/encode.ts';
import { TricklePublisher, type SegmentWriter } from '../transport/trickle/publisher.ts';
import { TrickleError } from '../transport/trickle/errors.ts';
import { H_LATEST, joinUrl } from '../transport/trickle/protocol.ts';
import { findCause } from './errors.ts';

/** The channel's next seq as the server reports it; 0 when the channel does not exist yet. */
export async function channelNextSeq(url: string, config: TrickleConfig): Promise<number> {
  try {
    const res = await fetch(joinUrl(url, 'next'), { signal: AbortSignal.timeout(config.headerTimeoutMs) });
    const body = await res.text();
    if (res.status !== 200) return 0;
    const n = Number(res.headers.get(H_LATEST) ?? body.trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}

/** Opens a publisher on `url` continuing its sequence. */
export async function openPublisher(url: string, opts: { config: TrickleConfig; logger: Logger; contentType?: string }): Promise<TricklePublisher> {
  const start = await channelNextSeq(url, opts.config);
  return new TricklePublisher(url, { config: opts.config, logger: opts.logger, contentType: opts.contentType, start, reset: start > 0 });
}

/** The trickle transport failure in `err`'s cause chain (the channel failed, not the codec), if any. */
export function trickleFailure(err: unknown): TrickleError | undefined {
  return findCause(err, (e): e is TrickleError => e instanceof TrickleError);
}

export function isTrickleFailure(err: unknown): boolean {
  return trickleFailure(err) !== undefined;
}

/** A SegmentSink over the publisher's next segment, opened on the first byte. */
export class LazySegmentSink implements SegmentSink {
  private writer: SegmentWriter | null = null;

  constructor(
    private readonly publisher: TricklePublisher,
    private readonly onOpen: (seq: number) => void = () => undefined,
  ) {}

  get seq(): number | null {
    return this.writer?.seq ?? null;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (!this.writer) {
      this.writer = this.publisher.next();
      this.onOpen(this.writer.seq);
    }
    await this.writer.write(chunk);
  }

  async end(): Promise<void> {
    await this.writer?.end();
  }

  abort(reason: unknown): void {
    this.writer?.abort(reason);
  }
}
