// Encodes one output segment: RGB24 frames -> yuv420p -> libx264 (no B-frames, zero latency) with
// EXACTLY the pts each frame carries, plus the input's audio packets copied unchanged, muxed as
// MPEG-TS into a sink as packets come out. A fresh encoder per segment makes every segment start
// with an IDR (SPS/PPS in band) and a fresh muxer gives it its own PAT/PMT, so each decodes alone.
import '../polyfill.ts';
import { Encoder, Frame, Rational, SoftwareScaleContext, type Packet } from 'node-av';
import { AV_PIX_FMT_RGB24, AV_PIX_FMT_YUV420P, FF_ENCODER_LIBX264, SWS_BILINEAR, SWS_FULL_CHR_H_INP } from 'node-av/constants';
import { defaultConfig, type MediaConfig } from '../config.ts';
import type { AudioPacket, AudioTrack } from './audio-track.ts';
import { asMediaError, MediaError } from './errors.ts';
import { applyFfmpegLogLevel } from './ffmpeg-log.ts';
import { TS_TIME_BASE, type TimeBase, type VideoFrame } from './frame.ts';
import { TsMuxer } from './ts-muxer.ts';

/** Where an output segment's bytes go as they are muxed (a trickle segment writer in a worker). */
export interface SegmentSink {
  write(chunk: Uint8Array): Promise<void> | void;
  end(): Promise<void> | void;
  /** Called instead of end() when the segment is abandoned (no frame, or a failure). */
  abort?(reason: unknown): Promise<void> | void;
}

export interface EncodeOptions {
  media?: MediaConfig;
  /** The input's audio stream; its packets are copied into the segment. */
  audio?: AudioTrack | null;
  /** Nominal input frame rate, used only to turn gopSeconds into x264's keyint (frames). */
  frameRate?: number;
  /** Reused across segments so the rgb24 -> yuv420p context is built once per size. */
  converter?: YuvConverter;
}


function rescale(pts: bigint, from: TimeBase, to: TimeBase): bigint {
  if (from.num === to.num && from.den === to.den) return pts;
  // Round to nearest, exactly, in bigint.
  const num = pts * BigInt(from.num) * BigInt(to.den);
  const den = BigInt(from.den) * BigInt(to.num);
  const half = den / 2n;
  return num >= 0n ? (num + half) / den : -((-num + half) / den);
}

/**
 * rgb24 -> yuv420p reading chroma from every input column, then filtering it down
 * (SWS_FULL_CHR_H_INP) rather than from averaged pixel pairs: measured on 512x512 frames, 0.31 ms
 * instead of 0.62 of CPU, luma identical and chroma within a few levels; a worker spends about
 * 0.4 ms less per frame (BENCHMARKS.md, glass).
 */
const RGB_TO_YUV_FLAGS = (SWS_BILINEAR | SWS_FULL_CHR_H_INP) as typeof SWS_BILINEAR;

/**
 * rgb24 -> yuv420p with one swscale context per frame size (x264 must not get yuv444p), into one
 * yuv420p frame kept from call to call. A new frame per call would cost a fresh 384 KiB (at 512x512)
 * each time, which node-av counts as V8 external memory until the frame object is collected: that
 * alone drove most of a worker's garbage collections. The frame answered is the converter's: valid
 * until the next call; the caller hands it to the encoder and does not free it. If the encoder still
 * holds its buffer (not writable), the next call gives the frame a new buffer instead.
 */
export class YuvConverter {
  private ctx: SoftwareScaleContext | null = null;
  private w = 0;
  private h = 0;
  private dst: Frame | null = null;
  /** The kept frame's planes as Buffers (made once per buffer: node-av counts each making as external memory). */
  private planes: Buffer[] = [];
  private strides: number[] = [];

  /** The kept yuv420p frame, with a buffer of its own that nothing else references. */
  private frameFor(width: number, height: number): Frame {
    let dst = this.dst;
    if (dst && dst.width === width && dst.height === height && dst.isWritable) return dst;
    if (!dst) {
      dst = new Frame();
      dst.alloc();
      this.dst = dst;
    } else dst.unref();
    dst.width = width;
    dst.height = height;
    dst.format = AV_PIX_FMT_YUV420P;
    const got = dst.getBuffer();
    if (got < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `cannot allocate a yuv420p frame (${got})`);
    this.planes = dst.data ?? [];
    this.strides = dst.linesize.slice(0, 3);
    return dst;
  }

  /** Synchronous on purpose: cheaper than a thread-pool round trip at these sizes. */
  convert(vf: VideoFrame, pts: bigint, timeBase: TimeBase): Frame {
    if (vf.data.length !== vf.width * vf.height * 3) {
      throw new MediaError('MEDIA_ENCODE_FAILED', `frame holds ${vf.data.length} bytes, expected ${vf.width}x${vf.height}x3`);
    }
    if (!this.ctx || this.w !== vf.width || this.h !== vf.height) {
      this.ctx?.freeContext();
      const ctx = new SoftwareScaleContext();
      ctx.getContext(vf.width, vf.height, AV_PIX_FMT_RGB24, vf.width, vf.height, AV_PIX_FMT_YUV420P, RGB_TO_YUV_FLAGS);
      this.ctx = ctx;
      this.w = vf.width;
      this.h = vf.height;
    }
    const data = Buffer.isBuffer(vf.data) ? vf.data : Buffer.from(vf.data.buffer, vf.data.byteOffset, vf.data.byteLength);
    const dst = this.frameFor(vf.width, vf.height);
    const planes = this.planes;
    if (planes.length < 3) throw new MediaError('MEDIA_ENCODE_FAILED', 'yuv420p frame has no planes');
    // Straight from the RGB bytes into the frame's planes (views of its memory): no staging copy.
    const ret = this.ctx.scaleSync([data], [vf.width * 3], 0, vf.height, planes, this.strides);
    if (ret < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `rgb24 -> yuv420p failed (${ret})`);
    dst.pts = pts;
    dst.timeBase = this.timeBase(timeBase);
    return dst;
  }

  private tb: { num: number; den: number; r: Rational } | null = null;

  private timeBase(t: TimeBase): Rational {
    if (!this.tb || this.tb.num !== t.num || this.tb.den !== t.den) this.tb = { ...t, r: new Rational(t.num, t.den) };
    return this.tb.r;
  }

  close(): void {
    this.ctx?.freeContext();
    this.ctx = null;
    this.dst?.free();
    this.dst = null;
    this.planes = [];
  }
}

export interface SegmentResult {
  videoFrames: number;
  audioPackets: number;
  /** Audio packets that did not follow the previous one's timestamp (not muxable), dropped. */
  audioDropped: number;
  bytes: number;
}

/**
 * One output segment. Frames and audio packets are pushed in input order; `end()` flushes the
 * encoder, writes the trailer and ends the sink. Nothing is written to the sink before the first
 * video frame, and a segment that never got one is aborted rather than ended empty.
 */
export class SegmentEncoder {
  private readonly media: MediaConfig;
  private readonly converter: YuvConverter;
  private readonly ownConverter: boolean;
  private encoder: Encoder | null = null;
  private muxer: TsMuxer | null = null;
  private readonly audioTrack: AudioTrack | null;
  /** Audio packets that arrived before the first frame opened the muxer. */
  private pendingAudio: AudioPacket[] = [];
  private written: Promise<void> = Promise.resolve();
  private writeError: unknown = null;
  private lastPts: bigint | null = null;
  private done = false;
  readonly result: SegmentResult = { videoFrames: 0, audioPackets: 0, audioDropped: 0, bytes: 0 };

  constructor(
    private readonly sink: SegmentSink,
    private readonly opts: EncodeOptions = {},
  ) {
    this.media = opts.media ?? defaultConfig.media;
    this.audioTrack = opts.audio ?? null;
    this.ownConverter = !opts.converter;
    this.converter = opts.converter ?? new YuvConverter();
  }

  private async open(): Promise<void> {
    const fps = this.opts.frameRate && this.opts.frameRate > 0 ? this.opts.frameRate : 30;
    // Rounded up: an input GOP of exactly gopSeconds whose measured rate comes out a hair low (irregular
    // timestamps) must not get a second IDR on its last frame.
    const keyint = Math.max(1, Math.ceil(this.media.gopSeconds * fps - 1e-6));
    applyFfmpegLogLevel(this.media);
    this.encoder = await Encoder.create(FF_ENCODER_LIBX264, {
      gopSize: keyint,
      maxBFrames: 0,
      threadCount: this.media.encoderThreads || undefined,
      options: {
        preset: this.media.x264Preset,
        tune: this.media.x264Tune,
        crf: this.media.crf,
        // No scene-cut I-frames: the only IDRs are the segment's first frame and every keyint.
        'x264-params': `scenecut=0:keyint=${keyint}:min-keyint=${keyint}:bframes=0`,
      },
      // Runs after node-av set the time base from the first frame (1/90000): the nominal rate only
      // informs x264's level and rate control, it does not touch timestamps.
      configure: (ctx) => {
        ctx.framerate = new Rational(Math.round(fps * 1000), 1000);
      },
    });
    this.muxer = new TsMuxer((buf: Buffer) => {
      // The IO buffer is reused by FFmpeg after this returns: hand the sink its own copy, in order.
      const chunk = Uint8Array.prototype.slice.call(buf);
      this.result.bytes += chunk.length;
      this.written = this.written.then(async () => {
        if (this.writeError) return;
        try {
          await this.sink.write(chunk);
        } catch (err) {
          this.writeError = err;
        }
      });
    });
  }

  /** The muxer's streams are known once the encoder has opened (on its first frame). */
  private startMuxer(): void {
    if (!this.muxer || this.muxer.isStarted) return;
    const ctx = this.encoder?.getCodecContext();
    if (!ctx) return;
    this.muxer.addVideo(ctx);
    if (this.audioTrack) this.muxer.addAudio(this.audioTrack);
    this.muxer.start();
  }

  /** Encodes one frame with exactly its pts (rescaled to 1/90000). */
  async writeVideo(frame: VideoFrame): Promise<void> {
    if (this.done) throw new MediaError('MEDIA_ENCODE_FAILED', 'segment already ended');
    try {
      if (!this.encoder) await this.open();
      // The encoder's clock is 90 kHz, as MPEG-TS carries it, so irregular pts are never rounded.
      const pts = rescale(frame.pts, frame.timeBase, TS_TIME_BASE);
      if (this.lastPts !== null && pts <= this.lastPts) {
        throw new MediaError('MEDIA_ENCODE_FAILED', `pts ${pts} does not increase (last ${this.lastPts})`);
      }
      this.lastPts = pts;
      // The converter's frame: x264 copies the picture in during encode(), so it is free again after.
      // The first frame opens the encoder (off this thread); the rest encode here, on this thread:
      // a thread-pool round trip per frame cost more CPU than it saved.
      const yuv = this.converter.convert(frame, pts, TS_TIME_BASE);
      if (this.result.videoFrames === 0) await this.encoder!.encode(yuv);
      else this.encoder!.encodeSync(yuv);
      this.result.videoFrames++;
      this.startMuxer();
      this.drainPackets();
      if (this.pendingAudio.length) {
        const waiting = this.pendingAudio;
        this.pendingAudio = [];
        for (const a of waiting) await this.writeAudio(a);
      }
      this.throwIfSinkFailed();
    } catch (err) {
      throw asMediaError('MEDIA_ENCODE_FAILED', 'video encode failed', err);
    }
  }

  /** Copies one input audio packet into the segment unchanged (takes ownership of it). */
  async writeAudio(a: AudioPacket): Promise<void> {
    if (this.done || !this.audioTrack || (this.muxer?.isStarted && !this.muxer.hasAudio)) {
      a.packet.free();
      return;
    }
    if (!this.muxer?.isStarted) {
      this.pendingAudio.push(a);
      return;
    }
    try {
      if (this.muxer.write(a.packet, 'audio', a.timeBase)) this.result.audioPackets++;
      else this.result.audioDropped++;
    } catch (err) {
      throw asMediaError('MEDIA_ENCODE_FAILED', 'audio remux failed', err);
    } finally {
      a.packet.free();
    }
  }

  // Collecting finished packets and muxing them (a copy into the TS packetiser) are direct calls.
  private drainPackets(): void {
    for (;;) {
      const pkt = this.encoder!.receiveSync() as Packet | null | undefined;
      if (!pkt) return;
      try {
        if (!this.muxer!.write(pkt, 'video', TS_TIME_BASE)) throw new MediaError('MEDIA_ENCODE_FAILED', `encoder packet dts ${pkt.dts} does not increase`);
      } finally {
        pkt.free();
      }
    }
  }

  private throwIfSinkFailed(): void {
    if (this.writeError) throw asMediaError('MEDIA_ENCODE_FAILED', 'segment sink failed', this.writeError);
  }

  /** Flushes the encoder, writes the trailer, waits for the sink to take every byte, ends it. */
  async end(): Promise<SegmentResult> {
    if (this.done) return this.result;
    this.done = true;
    try {
      if (!this.encoder || !this.muxer) {
        for (const a of this.pendingAudio) a.packet.free();
        this.pendingAudio = [];
        await this.sink.abort?.(new MediaError('MEDIA_ENCODE_FAILED', 'segment had no video frame'));
        return this.result;
      }
      await this.encoder.flush();
      this.drainPackets();
      for (const a of this.pendingAudio) a.packet.free();
      this.pendingAudio = [];
      this.muxer.end();
      await this.written;
      this.throwIfSinkFailed();
      await this.sink.end();
      return this.result;
    } catch (err) {
      const e = asMediaError('MEDIA_ENCODE_FAILED', 'segment finish failed', err);
      await Promise.resolve(this.sink.abort?.(e)).catch(() => undefined);
      throw e;
    } finally {
      this.release();
    }
  }

  /** Drops the segment: frees everything and aborts the sink. */
  async abort(reason: unknown): Promise<void> {
    if (this.done) return;
    this.done = true;
    for (const a of this.pendingAudio) a.packet.free();
    this.pendingAudio = [];
    try {
      this.muxer?.free();
      await this.written;
      await this.sink.abort?.(reason);
    } finally {
      this.release();
    }
  }

  private release(): void {
    this.encoder?.close();
    this.encoder = null;
    this.muxer = null;
    if (this.ownConverter) this.converter.close();
  }
}
