// A stream's output side: OutputSegments, one encoder per output segment (each starts with an IDR
// and decodes alone), output segments following input segments one for one, ended in order without
// holding up frames, each written through one lazy SegmentSink that opens its segment on a
// SegmentOpener only when its first byte exists. The opener is the trickle publisher live (one that
// continues the channel's sequence: a restarted worker resumes where the last one stopped, with
// Lp-Trickle-Reset), a file offline (offline.ts).
import type { MediaConfig, TrickleConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { AudioPacket, AudioTrack } from '../media/audio-track.ts';
import { SegmentEncoder, YuvConverter, type SegmentSink } from '../media/encode.ts';
import type { VideoFrame } from '../media/frame.ts';
import { TsDemuxer } from '../media/ts-demux.ts';
import { TricklePublisher, type SegmentWriter } from '../transport/trickle/publisher.ts';
import { TrickleSubscriber } from '../transport/trickle/subscriber.ts';
import { TrickleError } from '../transport/trickle/errors.ts';
import { simpleRequest } from '../transport/trickle/http-client.ts';
import { H_LATEST, joinUrl } from '../transport/trickle/protocol.ts';
import { errorCode, findCause } from './errors.ts';

/** The channel's next seq as the server reports it; 0 when the channel does not exist yet. */
export async function channelNextSeq(url: string, config: TrickleConfig): Promise<number> {
  const r = await simpleRequest(joinUrl(url, 'next'), 'GET', { headerTimeoutMs: config.headerTimeoutMs });
  if ('error' in r || r.status !== 200) return 0;
  const latest = r.headers[H_LATEST.toLowerCase()];
  const n = Number(typeof latest === 'string' ? latest : r.body.trim());
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/**
 * The pts of the last video frame already on the channel (in its newest segments, read back as any
 * subscriber would), or null when it holds none. A stream taken over from another node resumes after
 * it, so its output pts stay strictly increasing whatever the old owner got out before it stopped.
 * Each read is bounded by `timeoutMs` (a segment whose writer vanished ends when the server says so).
 */
export async function channelTailPts(url: string, config: TrickleConfig, timeoutMs: number): Promise<bigint | null> {
  const next = await channelNextSeq(url, config);
  for (let seq = next - 1; seq >= Math.max(0, next - 3); seq--) {
    const pts = await segmentLastVideoPts(url, seq, config, timeoutMs);
    if (pts !== null) return pts;
  }
  return null;
}

async function segmentLastVideoPts(url: string, seq: number, config: TrickleConfig, timeoutMs: number): Promise<bigint | null> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const sub = new TrickleSubscriber(url, { start: seq, config, waitForChannel: 0, signal: ac.signal });
  const demux = new TsDemuxer({ maxPesBytes: 64 * 1024 * 1024 });
  let last: bigint | null = null;
  const note = (events: ReturnType<TsDemuxer['push']>) => {
    for (const e of events) if (e.type === 'unit' && e.unit.kind === 'video' && e.unit.pts !== null && (last === null || e.unit.pts > last)) last = e.unit.pts;
  };
  try {
    for await (const seg of sub) {
      try {
        for await (const chunk of seg.body) note(demux.push(chunk, 0));
      } catch {
        // cut short: what arrived counts
      }
      note(demux.endSegment(0));
      break;
    }
  } catch {
    // gone, or not there any more
  } finally {
    clearTimeout(timer);
    sub.close();
  }
  return last;
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

/** Where output segments are opened, one after another (TricklePublisher is one). */
export interface SegmentOpener {
  next(): SegmentWriter;
}

/** A SegmentSink over the opener's next segment, opened on the first byte. */
export class LazySegmentSink implements SegmentSink {
  private writer: SegmentWriter | null = null;

  constructor(
    private readonly publisher: SegmentOpener,
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

/** What an output segment is cut from: one input segment. */
export interface OutputSource {
  seq: number;
  audio: AudioTrack | null;
  frameRate: number;
}

interface Open {
  src: OutputSource;
  enc: SegmentEncoder;
  sink: LazySegmentSink;
  width: number;
  height: number;
  frames: number;
}

export type FrameWrite = 'written' | 'encode_error' | 'failed';

/** What the output segments that ended carried, in all. */
export interface OutputTotals {
  videoFrames: number;
  audioPackets: number;
  bytes: number;
}

export class OutputSegments {
  private open: Open | null = null;
  private finishing: Promise<void> = Promise.resolve();
  private readonly converter = new YuvConverter();
  private failed = false;
  segmentsOut = 0;
  readonly totals: OutputTotals = { videoFrames: 0, audioPackets: 0, bytes: 0 };

  constructor(
    private readonly publisher: SegmentOpener,
    private readonly media: MediaConfig,
    private readonly log: Logger,
    /** The output channel failed (nothing more can be published). */
    private readonly onFailed: (err: unknown) => void,
    /** The first output segment was completed (for traces). */
    private readonly onFirstSegment: (seq: number | null) => void = () => undefined,
  ) {}

  get isFailed(): boolean {
    return this.failed;
  }

  private start(src: OutputSource): Open {
    const sink = new LazySegmentSink(this.publisher);
    const enc = new SegmentEncoder(sink, { media: this.media, audio: src.audio, frameRate: src.frameRate, converter: this.converter });
    return { src, enc, sink, width: 0, height: 0, frames: 0 };
  }

  /** Encodes one frame into the output segment of `src` (a new source, or a new size, starts a new segment). */
  async video(src: OutputSource, frame: VideoFrame): Promise<FrameWrite> {
    if (this.failed) return 'failed';
    let out = this.open;
    if (out && (out.src !== src || (out.frames > 0 && (out.width !== frame.width || out.height !== frame.height)))) {
      this.finish(out);
      out = null;
    }
    out ??= this.start(src);
    this.open = out;
    try {
      await out.enc.writeVideo(frame);
    } catch (err) {
      this.open = null;
      await out.enc.abort(err).catch(() => undefined);
      if (isTrickleFailure(err)) {
        this.fail(err);
        return 'failed';
      }
      this.log.warn({ err, code: errorCode(err) }, 'encode failed; output segment dropped');
      return 'encode_error';
    }
    out.width = frame.width;
    out.height = frame.height;
    out.frames++;
    return 'written';
  }

  /** Copies one audio packet into the output segment of `src` (takes ownership). */
  async audio(src: OutputSource, a: AudioPacket): Promise<void> {
    if (this.failed) {
      a.packet.free();
      return;
    }
    if (this.open && this.open.src !== src) {
      this.finish(this.open);
      this.open = null;
    }
    this.open ??= this.start(src);
    try {
      await this.open.enc.writeAudio(a);
    } catch (err) {
      this.log.debug({ err }, 'audio packet not muxed');
    }
  }

  /** The input segment `src` is over: its output segment ends (in the background, in order). */
  endOf(src: OutputSource): void {
    if (this.open && this.open.src === src) {
      this.finish(this.open);
      this.open = null;
    }
  }

  /** Ends the open segment and waits until every segment has ended. */
  async drain(): Promise<void> {
    if (this.open) this.finish(this.open);
    this.open = null;
    await this.finishing;
  }

  close(): void {
    this.converter.close();
  }

  /**
   * Ends an output segment without holding up the frame loop: the end waits for the server's answer
   * to the segment's POST (a network round trip), while the next segment's frames go on into their
   * own encoder and POST. Segments end in order, one after another.
   */
  private finish(out: Open): void {
    this.finishing = this.finishing.then(() => this.finishNow(out));
  }

  private async finishNow(out: Open): Promise<void> {
    try {
      const r = await out.enc.end();
      if (out.frames === 0) return;
      this.segmentsOut++;
      this.totals.videoFrames += r.videoFrames;
      this.totals.audioPackets += r.audioPackets;
      this.totals.bytes += r.bytes;
      if (this.segmentsOut === 1) this.onFirstSegment(out.sink.seq);
    } catch (err) {
      if (isTrickleFailure(err)) this.fail(err);
      else this.log.warn({ err, code: errorCode(err) }, 'output segment failed to finish');
    }
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.onFailed(err);
  }
}
