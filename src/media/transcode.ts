// The live "segment in -> segment out" shape: one input segment's bytes are demuxed and decoded
// as they arrive, each frame goes through `transform` (where the graph runs), and the result is
// encoded and muxed into the sink as packets come out. The three stages run concurrently,
// joined by small bounded queues, so decode, graph and x264 overlap instead of taking turns.
import type { Scaler } from 'node-av';
import { defaultConfig, type MediaConfig } from '../config.ts';
import { rootLogger, type Logger } from '../log.ts';
import type { ByteSource } from './byte-source.ts';
import { Channel } from './channel.ts';
import { decodeStream, newDecodeStats, releaseItem, type DecodedItem, type DecodeStats, type InputInfo } from './decode.ts';
import { SegmentEncoder, type SegmentSink, type YuvConverter } from './encode.ts';
import { asMediaError, type MediaError } from './errors.ts';
import type { VideoFrame } from './frame.ts';
import type { FrameRateCap } from './geometry.ts';

/** Where the graph runs: output frame k must carry input frame k's pts. */
export type FrameTransform = (frame: VideoFrame) => Promise<VideoFrame>;

export const identityTransform: FrameTransform = async (frame) => frame;

export interface TranscodeOptions {
  media?: MediaConfig;
  width?: number;
  height?: number;
  log?: Logger;
  /** State shared by the segments of one stream (cap clock, scale contexts). */
  fpsCap?: FrameRateCap;
  scaler?: Scaler;
  converter?: YuvConverter;
}

export interface TranscodeResult {
  videoFrames: number;
  audioPackets: number;
  bytes: number;
  decode: DecodeStats;
  /** The input segment's own failure (bad bytes); frames before it were still encoded. */
  inputError: MediaError | null;
}

/**
 * Transcodes one input segment into one output segment. Bad input bytes do not throw: the frames
 * that decoded are encoded, `inputError` says what was wrong, and a segment with no frame at all
 * is aborted on the sink. Throws only when encoding or the transform fails (MediaError).
 */
export async function transcodeSegment(
  input: ByteSource,
  transform: FrameTransform = identityTransform,
  sink: SegmentSink,
  opts: TranscodeOptions = {},
): Promise<TranscodeResult> {
  const media = opts.media ?? defaultConfig.media;
  const log = opts.log ?? rootLogger;
  const stats = newDecodeStats();
  let info: InputInfo | null = null;
  let inputError: MediaError | null = null;

  const decoded = new Channel<DecodedItem>(media.stageQueueFrames);
  const transformed = new Channel<DecodedItem>(media.stageQueueFrames);

  const decodeStage = (async () => {
    try {
      for await (const item of decodeStream(input, {
        media,
        width: opts.width,
        height: opts.height,
        log,
        stats,
        fpsCap: opts.fpsCap,
        scaler: opts.scaler,
        onInput: (i) => (info = i),
      })) {
        if (item.kind === 'error') {
          inputError = item.error;
          continue;
        }
        if (!(await decoded.push(item))) {
          releaseItem(item);
          break;
        }
      }
      decoded.close();
    } catch (err) {
      decoded.close(err);
    }
  })();

  const transformStage = (async () => {
    try {
      for await (const item of decoded) {
        const out: DecodedItem = item.kind === 'video' ? { kind: 'video', frame: await transform(item.frame) } : item;
        if (!(await transformed.push(out))) {
          releaseItem(out);
          break;
        }
      }
      transformed.close();
    } catch (err) {
      transformed.close(asMediaError('MEDIA_ENCODE_FAILED', 'transform failed', err));
    } finally {
      for (const left of decoded.drainRemaining()) releaseItem(left);
    }
  })();

  let encoder: SegmentEncoder | null = null;
  try {
    for await (const item of transformed) {
      encoder ??= new SegmentEncoder(sink, {
        media,
        audio: (info as InputInfo | null)?.audio ?? null,
        frameRate: (info as InputInfo | null)?.frameRate,
        converter: opts.converter,
      });
      if (item.kind === 'video') await encoder.writeVideo(item.frame);
      else if (item.kind === 'audio') await encoder.writeAudio(item.audio);
    }
    encoder ??= new SegmentEncoder(sink, { media, converter: opts.converter });
    const r = await encoder.end();
    return { videoFrames: r.videoFrames, audioPackets: r.audioPackets, bytes: r.bytes, decode: stats, inputError };
  } catch (err) {
    const e = asMediaError('MEDIA_ENCODE_FAILED', 'segment transcode failed', err);
    decoded.close();
    transformed.close();
    await encoder?.abort(e);
    if (!encoder) await Promise.resolve(sink.abort?.(e)).catch(() => undefined);
    throw e;
  } finally {
    for (const left of transformed.drainRemaining()) releaseItem(left);
    await Promise.allSettled([decodeStage, transformStage]);
  }
}
