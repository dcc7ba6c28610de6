// Progressive demux + decode of one MPEG-TS byte stream (one trickle segment, or a whole file) into
// RGB24 frames at the target size with their ORIGINAL pts, and audio packets passed through
// untouched. Bytes are pulled only as FFmpeg parses, so the first frame comes out before the
// segment has fully arrived. Anything wrong with the bytes ends THIS stream with an error item;
// it never throws and never takes the process down.
import '../polyfill.ts';
import { CodecParameters, Decoder, Demuxer, Frame, Scaler, type Packet, type Stream } from 'node-av';
import { AV_NOPTS_VALUE } from 'node-av/constants';
import { defaultConfig, type MediaConfig } from '../config.ts';
import { rootLogger, type Logger } from '../log.ts';
import { readCallbacks, type ByteSource } from './byte-source.ts';
import { asMediaError, MediaError } from './errors.ts';
import { applyFfmpegLogLevel } from './ffmpeg-log.ts';
import type { TimeBase, VideoFrame } from './frame.ts';
import { coverCrop, FrameRateCap } from './geometry.ts';

/** The input's audio stream as the muxer needs it to copy packets into an output (owned copy). */
export interface AudioTrack {
  readonly codecpar: CodecParameters;
  readonly timeBase: TimeBase;
}

/** One demuxed audio packet, untouched. `packet` is an owned node-av packet: the encoder frees it. */
export interface AudioPacket {
  readonly track: AudioTrack;
  readonly packet: Packet;
  readonly pts: bigint;
  readonly timeBase: TimeBase;
}

export type DecodedItem =
  | { kind: 'video'; frame: VideoFrame }
  | { kind: 'audio'; audio: AudioPacket }
  /** The stream's bytes were bad; whatever came before it was delivered. Always the last item. */
  | { kind: 'error'; error: MediaError };

/** What the demuxer found, reported once before the first item. */
export interface InputInfo {
  audio: AudioTrack | null;
  /** Average video frame rate of the input (0 when unknown). */
  frameRate: number;
  sourceWidth: number;
  sourceHeight: number;
}

/** Counters filled in while a stream decodes (read them after iteration ends). */
export interface DecodeStats {
  videoFrames: number;
  audioPackets: number;
  /** Frames dropped by the input frame-rate cap. */
  droppedByFpsCap: number;
  /** Pictures the decoder flagged corrupt (skipped, and reported as a segment error at the end). */
  corruptFrames: number;
  bytesIn: number;
}

export interface DecodeOptions {
  media?: MediaConfig;
  /** Target size; defaults to media.width x media.height. */
  width?: number;
  height?: number;
  log?: Logger;
  /** Filled in as the stream decodes. */
  stats?: DecodeStats;
  /**
   * A frame-rate cap shared across segments of one stream (the live path decodes each segment
   * separately but the cap must see one clock). Defaults to a fresh one from media.maxInputFps.
   */
  fpsCap?: FrameRateCap;
  /** Reused across segments so scale contexts are not rebuilt per segment. */
  scaler?: Scaler;
  /** Called once the input's streams are known, before the first item is yielded. */
  onInput?: (info: InputInfo) => void;
}

export function newDecodeStats(): DecodeStats {
  return { videoFrames: 0, audioPackets: 0, droppedByFpsCap: 0, corruptFrames: 0, bytesIn: 0 };
}

const TS_PACKET = 188;

/** Releases the native memory an item holds when it is dropped instead of encoded. */
export function releaseItem(item: DecodedItem): void {
  if (item.kind === 'audio') item.audio.packet.free();
}

function copyTrack(stream: Stream): AudioTrack {
  const codecpar = new CodecParameters();
  codecpar.alloc();
  const ret = stream.codecpar.copy(codecpar);
  if (ret < 0) throw new MediaError('MEDIA_DECODE_FAILED', `cannot copy audio parameters (${ret})`);
  return { codecpar, timeBase: { num: stream.timeBase.num, den: stream.timeBase.den } };
}

/**
 * Decodes one MPEG-TS byte stream. Yields video frames (RGB24, target size, original pts and time
 * base) and audio packets in demux order; ends with at most one `error` item.
 */
export async function* decodeStream(bytes: ByteSource, opts: DecodeOptions = {}): AsyncGenerator<DecodedItem> {
  const media = opts.media ?? defaultConfig.media;
  const width = opts.width ?? media.width;
  const height = opts.height ?? media.height;
  const log = opts.log ?? rootLogger;
  const stats = opts.stats ?? newDecodeStats();
  const cap = opts.fpsCap ?? new FrameRateCap(media.maxInputFps);
  const ownScaler = !opts.scaler;
  const scaler = opts.scaler ?? new Scaler();
  const io = readCallbacks(bytes);
  applyFfmpegLogLevel(media);

  let demuxer: Demuxer | undefined;
  let decoder: Decoder | undefined;
  let failure: MediaError | undefined;
  try {
    try {
      demuxer = await Demuxer.open(
        { read: (size: number) => io.read(size) },
        // copyTs keeps timestamps raw (no start-time shift); the probe must cover enough AAC
        // packets that they come out with pts.
        { format: 'mpegts', copyTs: true, options: { probesize: media.probeBytes, fpsprobesize: media.probeFpsFrames } },
      );
    } catch (err) {
      throw asMediaError('MEDIA_DECODE_FAILED', 'cannot open MPEG-TS input', err);
    }
    const video = demuxer.video();
    if (!video) throw new MediaError('MEDIA_DECODE_FAILED', 'input holds no video stream');
    const audio = demuxer.audio();
    // An audio stream the probe could not describe (sample rate 0) cannot be remuxed: skip it.
    const track = audio && audio.codecpar.sampleRate > 0 ? copyTrack(audio) : undefined;
    if (audio && !track) log.warn({ probeBytes: media.probeBytes }, 'audio stream not described within the probe; its packets are dropped');
    const vtb: TimeBase = { num: video.timeBase.num, den: video.timeBase.den };
    const rate = video.avgFrameRate.den > 0 ? video.avgFrameRate.num / video.avgFrameRate.den : 0;
    opts.onInput?.({
      audio: track ?? null,
      frameRate: Number.isFinite(rate) ? rate : 0,
      sourceWidth: video.codecpar.width,
      sourceHeight: video.codecpar.height,
    });
    try {
      // exitOnError makes a corrupt picture raise instead of silently vanishing, so it can be
      // counted (and a segment cut short is reported); decoding carries on past it.
      decoder = await Decoder.create(video, { exitOnError: true, threadCount: media.decoderThreads || undefined });
    } catch (err) {
      throw asMediaError('MEDIA_DECODE_FAILED', 'cannot open video decoder', err);
    }
    const dec = decoder;

    // Synchronous swscale (a fraction of a millisecond at 512x512): a thread-pool round trip per
    // frame costs more than the conversion itself when the cores are busy.
    const convert = (f: Frame): VideoFrame | null => {
      try {
        const pts = f.pts === AV_NOPTS_VALUE ? null : f.pts;
        if (pts === null) return null;
        if (!cap.admit(Number(pts) * (vtb.num / vtb.den))) {
          stats.droppedByFpsCap++;
          return null;
        }
        // Resolution may change mid-stream: the crop is computed per frame, swscale contexts are
        // cached per geometry by the Scaler.
        const crop = coverCrop(f.width, f.height, width, height);
        const data = scaler.toBufferSync(f, { crop, resize: { width, height }, format: 'rgb' });
        if (data.length !== width * height * 3) {
          throw new MediaError('MEDIA_DECODE_FAILED', `scaler returned ${data.length} bytes for ${width}x${height}`);
        }
        return { data, width, height, pts, timeBase: vtb };
      } finally {
        f.free();
      }
    };

    // Drains every frame the decoder has ready. Fetching a finished frame is cheap, so it is a
    // direct call; the decoding itself happens in send() on the thread pool. A corrupt picture
    // raises: it is counted and skipped.
    async function* drain(): AsyncGenerator<VideoFrame> {
      for (let corruptInARow = 0; corruptInARow <= media.maxCorruptInARow; ) {
        let r: Frame | null | undefined;
        try {
          r = dec.receiveSync();
        } catch {
          stats.corruptFrames++;
          corruptInARow++;
          continue;
        }
        if (!(r instanceof Frame)) return;
        corruptInARow = 0;
        const vf = convert(r);
        if (vf) yield vf;
      }
    }
    const send = async (p: Packet | null): Promise<void> => {
      try {
        await (p ? dec.decode(p) : dec.flush());
      } catch {
        stats.corruptFrames++;
      }
    };

    let nextAudioPts: bigint | null = null;
    for await (const pkt of demuxer.packets()) {
      if (!pkt) break;
      if (pkt.streamIndex === video.index) {
        await send(pkt);
        for await (const vf of drain()) {
          stats.videoFrames++;
          yield { kind: 'video', frame: vf };
        }
      } else if (track && audio && pkt.streamIndex === audio.index) {
        // AAC packets the probe did not cover can come out without pts: continue the previous
        // packet's clock (pts + duration); one before any clock is dropped.
        if (pkt.pts === AV_NOPTS_VALUE && nextAudioPts === null) continue;
        const own = pkt.clone();
        if (!own) continue;
        if (own.pts === AV_NOPTS_VALUE) {
          own.pts = nextAudioPts!;
          own.dts = nextAudioPts!;
        }
        nextAudioPts = own.duration > 0n ? own.pts + own.duration : null;
        stats.audioPackets++;
        yield { kind: 'audio', audio: { track, packet: own, pts: own.pts, timeBase: track.timeBase } };
      }
    }
    await send(null);
    for await (const vf of drain()) {
      stats.videoFrames++;
      yield { kind: 'video', frame: vf };
    }
    stats.bytesIn = io.bytesRead;
    if (io.error !== undefined) {
      throw new MediaError('MEDIA_SEGMENT_TRUNCATED', `input stream failed after ${io.bytesRead} bytes`, { cause: io.error });
    }
    // MPEG-TS is a sequence of 188-byte packets: a remainder means the segment was cut short.
    // (A cut on a packet boundary shows up instead as a corrupt last picture, below.)
    if (io.bytesRead % TS_PACKET !== 0) {
      throw new MediaError('MEDIA_SEGMENT_TRUNCATED', `segment ends mid-packet after ${io.bytesRead} bytes`);
    }
    if (stats.corruptFrames > 0) {
      throw new MediaError('MEDIA_DECODE_FAILED', `${stats.corruptFrames} corrupt pictures skipped (damaged or truncated segment)`);
    }
    if (stats.videoFrames === 0 && stats.droppedByFpsCap === 0) {
      throw new MediaError('MEDIA_DECODE_FAILED', 'segment decoded to no video frames');
    }
  } catch (err) {
    failure = asMediaError('MEDIA_DECODE_FAILED', 'decode failed', err);
  } finally {
    stats.bytesIn = io.bytesRead;
    decoder?.close();
    await demuxer?.close().catch(() => undefined);
    await io.close().catch(() => undefined);
    if (ownScaler) scaler.close();
  }
  if (failure) {
    log.debug({ code: failure.code, err: failure.message }, 'segment decode failed');
    yield { kind: 'error', error: failure };
  }
}
