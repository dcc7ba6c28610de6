// Low-delay video decoding of whole access units (from ts-demux.ts) into RGB24 frames at the
// target size, with their raw 90 kHz pts. One decoder per continuous input: it is opened once and
// reopened only when the program's video stream changes. Frame threading is off (each frame
// thread is a frame of delay) and the decoder runs in low-delay mode, so a picture comes out of
// the same call its access unit went into (streams with B-frames still need their reorder delay).
// Decoding is synchronous: a 512x512 H.264 picture decodes in about a millisecond, less than a
// thread-pool round trip costs on a busy box. With a FramePool, pictures are converted straight into
// pooled buffers (one swscale context per geometry, the crop taken by offsetting the planes): no new
// 768 KiB buffer per frame. The frames' buffers are then the caller's to give back to the pool.
import '../polyfill.ts';
import { Codec, CodecContext, Frame, Packet, Rational, Scaler, SoftwareScaleContext } from 'node-av';
import {
  AV_CODEC_FLAG_LOW_DELAY,
  AV_CODEC_ID_H264,
  AV_CODEC_ID_HEVC,
  AV_CODEC_ID_MPEG1VIDEO,
  AV_CODEC_ID_MPEG2VIDEO,
  AV_CODEC_ID_MPEG4,
  AV_NOPTS_VALUE,
  AV_PIX_FMT_RGB24,
  AV_PIX_FMT_YUV420P,
  AV_PIX_FMT_YUV422P,
  AV_PIX_FMT_YUV444P,
  AV_PIX_FMT_YUVJ420P,
  AV_PIX_FMT_YUVJ422P,
  AV_PIX_FMT_YUVJ444P,
  AV_PKT_FLAG_KEY,
  FF_THREAD_SLICE,
  SWS_BILINEAR,
  type AVPacketFlag,
  type AVCodecID,
  type AVPixelFormat,
} from 'node-av/constants';
import { MediaError } from './errors.ts';
import { TS_CLOCK_HZ, TS_TIME_BASE, type VideoFrame } from './frame.ts';
import type { FramePool } from './frame-pool.ts';
import { coverCrop, type CropRect } from './geometry.ts';
import { STREAM_TYPE, type TsUnit } from './ts-demux.ts';

const VIDEO_CODECS = new Map<number, AVCodecID>([
  [STREAM_TYPE.h264, AV_CODEC_ID_H264],
  [STREAM_TYPE.hevc, AV_CODEC_ID_HEVC],
  [STREAM_TYPE.mpeg2Video, AV_CODEC_ID_MPEG2VIDEO],
  [STREAM_TYPE.mpeg1Video, AV_CODEC_ID_MPEG1VIDEO],
  [STREAM_TYPE.mpeg4Video, AV_CODEC_ID_MPEG4],
]);

/** Whether a PMT stream type is a video codec this decoder takes. */
export function isDecodableVideo(streamType: number): boolean {
  return VIDEO_CODECS.has(streamType);
}

export interface VideoDecoderOptions {
  width: number;
  height: number;
  /** Decoder threads (slice threads; 0 or 1 = one thread). */
  threads: number;
  /** Where frame buffers come from (default: a new buffer per frame). */
  pool?: FramePool;
}

/** 8-bit planar YUV formats converted by plane offsets: log2 of the chroma subsampling (x, y). */
const PLANAR_YUV = new Map<AVPixelFormat, [number, number]>([
  [AV_PIX_FMT_YUV420P, [1, 1]],
  [AV_PIX_FMT_YUVJ420P, [1, 1]],
  [AV_PIX_FMT_YUV422P, [1, 0]],
  [AV_PIX_FMT_YUVJ422P, [1, 0]],
  [AV_PIX_FMT_YUV444P, [0, 0]],
  [AV_PIX_FMT_YUVJ444P, [0, 0]],
]);

/**
 * Decoded pictures -> RGB24 at the target size, cropped to cover, into a given buffer. The same
 * swscale conversion node-av's Scaler makes (bilinear, the format's own range; checked equal byte
 * for byte), without its new buffer per call.
 *
 * The picture is first copied into a frame of this converter's own (384 KiB at 512x512, a memcpy):
 * node-av makes the planes of every new frame buffer visible to JavaScript as new Buffers that it
 * counts as 384 KiB of V8 external memory until they are collected, so reading the decoder's
 * frames' planes directly would drive garbage collections as a new buffer per frame does. The
 * mirror's planes are made once.
 */
class RgbConverter {
  private ctx: SoftwareScaleContext | null = null;
  private key = '';
  private mirror: Frame | null = null;
  private mirrorKey = '';
  private planes: Buffer[] = [];

  /** A frame of our own with `pic`'s pixels. */
  private mirrored(pic: Frame): Frame | null {
    const key = `${pic.format}:${pic.width}x${pic.height}`;
    if (key !== this.mirrorKey || !this.mirror) {
      this.mirror?.free();
      const m = new Frame();
      m.alloc();
      m.format = pic.format;
      m.width = pic.width;
      m.height = pic.height;
      if (m.getBuffer() < 0) {
        m.free();
        this.mirror = null;
        return null;
      }
      this.mirror = m;
      this.mirrorKey = key;
      this.planes = m.data ?? [];
    }
    return this.mirror.copy(pic) < 0 ? null : this.mirror;
  }

  /** Writes `pic` (cropped to `crop`) into `out` (width * height * 3 bytes); false if its format is not a planar YUV one. */
  convert(pic: Frame, crop: CropRect, width: number, height: number, out: Buffer): boolean {
    const shift = PLANAR_YUV.get(pic.format as AVPixelFormat);
    if (!shift) return false;
    const m = this.mirrored(pic);
    const planes = this.planes;
    if (!m || planes.length < 3) return false;
    const key = `${pic.format}:${crop.width}x${crop.height}:${width}x${height}`;
    if (key !== this.key || !this.ctx) {
      this.ctx?.freeContext();
      this.ctx = new SoftwareScaleContext();
      this.ctx.getContext(crop.width, crop.height, pic.format as AVPixelFormat, width, height, AV_PIX_FMT_RGB24, SWS_BILINEAR);
      this.key = key;
    }
    const ls = m.linesize;
    const [sx, sy] = shift;
    const src = [
      planes[0].subarray(crop.y * ls[0] + crop.x),
      planes[1].subarray((crop.y >> sy) * ls[1] + (crop.x >> sx)),
      planes[2].subarray((crop.y >> sy) * ls[2] + (crop.x >> sx)),
    ];
    const ret = this.ctx.scaleSync(src, [ls[0], ls[1], ls[2]], 0, crop.height, [out], [width * 3]);
    if (ret !== height) throw new MediaError('MEDIA_DECODE_FAILED', `yuv -> rgb24 conversion failed (${ret})`);
    return true;
  }

  close(): void {
    this.ctx?.freeContext();
    this.ctx = null;
    this.key = '';
    this.mirror?.free();
    this.mirror = null;
    this.mirrorKey = '';
    this.planes = [];
  }
}

export class VideoDecoder {
  private readonly ctx: CodecContext;
  private readonly pkt = new Packet();
  private readonly pic = new Frame();
  private readonly scaler = new Scaler();
  private readonly rgb = new RgbConverter();
  private closed = false;
  /** Pictures the decoder refused or flagged corrupt since the last call to takeCorrupt(). */
  private corrupt = 0;

  private constructor(
    readonly streamType: number,
    private readonly opts: VideoDecoderOptions,
  ) {
    const id = VIDEO_CODECS.get(streamType);
    const codec = id === undefined ? null : Codec.findDecoder(id);
    if (!codec) throw new MediaError('MEDIA_DECODE_FAILED', `unsupported video stream type 0x${streamType.toString(16)}`);
    this.ctx = new CodecContext();
    this.ctx.allocContext3(codec);
    this.ctx.timeBase = new Rational(1, TS_CLOCK_HZ);
    this.ctx.pktTimebase = new Rational(1, TS_CLOCK_HZ);
    this.ctx.flags = AV_CODEC_FLAG_LOW_DELAY;
    this.ctx.threadCount = Math.max(1, opts.threads);
    // Slice threads only: frame threads each hold a frame back.
    this.ctx.threadType = FF_THREAD_SLICE;
    const ret = this.ctx.open2Sync(codec, null);
    if (ret < 0) {
      this.ctx.freeContext();
      throw new MediaError('MEDIA_DECODE_FAILED', `cannot open the video decoder (${ret})`);
    }
    this.pkt.alloc();
    this.pic.alloc();
  }

  static open(streamType: number, opts: VideoDecoderOptions): VideoDecoder {
    return new VideoDecoder(streamType, opts);
  }

  /** Pictures refused or damaged since the last call (and resets the count). */
  takeCorrupt(): number {
    const n = this.corrupt;
    this.corrupt = 0;
    return n;
  }

  /** Decodes one access unit; answers the pictures it completed (usually one). */
  decode(unit: TsUnit, size: { width: number; height: number } = this.opts): VideoFrame[] {
    this.pkt.data = unit.data;
    this.pkt.pts = unit.pts ?? AV_NOPTS_VALUE;
    this.pkt.dts = unit.dts ?? unit.pts ?? AV_NOPTS_VALUE;
    this.pkt.flags = unit.key ? AV_PKT_FLAG_KEY : (0 as AVPacketFlag);
    const ret = this.ctx.sendPacketSync(this.pkt);
    this.pkt.unref();
    if (ret < 0) this.corrupt++;
    return this.receive(size);
  }

  /** Everything the decoder still holds (at the end of the input or before a reopen). */
  flush(size: { width: number; height: number } = this.opts): VideoFrame[] {
    this.ctx.sendPacketSync(null);
    return this.receive(size);
  }

  private receive(size: { width: number; height: number }): VideoFrame[] {
    const out: VideoFrame[] = [];
    for (;;) {
      const r = this.ctx.receiveFrameSync(this.pic);
      if (r < 0) break;
      try {
        if (this.pic.decodeErrorFlags !== 0) {
          this.corrupt++;
          continue;
        }
        const pts = this.pic.pts === AV_NOPTS_VALUE ? this.pic.bestEffortTimestamp : this.pic.pts;
        if (pts === AV_NOPTS_VALUE) continue;
        const { width, height } = size;
        const crop = coverCrop(this.pic.width, this.pic.height, width, height);
        out.push({ data: this.toRgb(crop, width, height), width, height, pts, timeBase: TS_TIME_BASE });
      } finally {
        this.pic.unref();
      }
    }
    return out;
  }

  /** The picture in hand as RGB24: into a pooled buffer when there is a pool and the format allows. */
  private toRgb(crop: CropRect, width: number, height: number): Buffer {
    const pool = this.opts.pool;
    if (pool) {
      const buf = pool.take(width * height * 3);
      try {
        if (this.rgb.convert(this.pic, crop, width, height, buf)) return buf;
      } catch (err) {
        pool.release(buf);
        throw err;
      }
      pool.release(buf);
    }
    const data = this.scaler.toBufferSync(this.pic, { crop, resize: { width, height }, format: 'rgb' });
    if (data.length !== width * height * 3) {
      throw new MediaError('MEDIA_DECODE_FAILED', `scaler returned ${data.length} bytes for ${width}x${height}`);
    }
    return data;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.freeContext();
    this.pkt.free();
    this.pic.free();
    this.scaler.close();
    this.rgb.close();
  }
}
