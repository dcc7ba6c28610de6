// Low-delay video decoding of whole access units (from ts-demux.ts) into RGB24 frames at the
// target size, with their raw 90 kHz pts. One decoder per continuous input: it is opened once and
// reopened only when the program's video stream changes. Frame threading is off (each frame
// thread is a frame of delay) and the decoder runs in low-delay mode, so a picture comes out of
// the same call its access unit went into (streams with B-frames still need their reorder delay).
// Decoding is synchronous: a 512x512 H.264 picture decodes in about a millisecond, less than a
// thread-pool round trip costs on a busy box.
import '../polyfill.ts';
import { Codec, CodecContext, Frame, Packet, Rational, Scaler } from 'node-av';
import {
  AV_CODEC_FLAG_LOW_DELAY,
  AV_CODEC_ID_H264,
  AV_CODEC_ID_HEVC,
  AV_CODEC_ID_MPEG1VIDEO,
  AV_CODEC_ID_MPEG2VIDEO,
  AV_CODEC_ID_MPEG4,
  AV_NOPTS_VALUE,
  AV_PKT_FLAG_KEY,
  FF_THREAD_SLICE,
  type AVPacketFlag,
  type AVCodecID,
} from 'node-av/constants';
import { MediaError } from './errors.ts';
import { TS_CLOCK_HZ, TS_TIME_BASE, type VideoFrame } from './frame.ts';
import { coverCrop } from './geometry.ts';
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
}

export class VideoDecoder {
  private readonly ctx: CodecContext;
  private readonly pkt = new Packet();
  private readonly pic = new Frame();
  private readonly scaler = new Scaler();
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
        const data = this.scaler.toBufferSync(this.pic, { crop, resize: { width, height }, format: 'rgb' });
        if (data.length !== width * height * 3) {
          throw new MediaError('MEDIA_DECODE_FAILED', `scaler returned ${data.length} bytes for ${width}x${height}`);
        }
        out.push({ data, width, height, pts, timeBase: TS_TIME_BASE });
      } finally {
        this.pic.unref();
      }
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.freeContext();
    this.pkt.free();
    this.pic.free();
    this.scaler.close();
  }
}
