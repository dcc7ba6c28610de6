// Small JPEG thumbnails of RGB24 frames: one swscale step (rgb24 at the frame's size -> yuvj420p at
// the thumbnail's size) and FFmpeg's mjpeg encoder at a fixed quantiser (qmin = qmax). Both are synchronous on
// purpose (see docs/media-notes.md, "Sync where it is cheap"): from a 512x512 frame to a 160 px JPEG
// takes about 0.35 ms with the fast bilinear scaler on this machine, less than a thread-pool round
// trip would add, and the frame's bytes must be read before the caller hands them on anyway.
// Contexts are kept per frame size and rebuilt only when the size changes.
import '../polyfill.ts';
import { Codec, CodecContext, Frame, Packet, Rational, SoftwareScaleContext } from 'node-av';
import {
  AV_PIX_FMT_RGB24,
  AV_PIX_FMT_YUVJ420P,
  FF_ENCODER_MJPEG,
  SWS_AREA,
  SWS_BILINEAR,
  SWS_FAST_BILINEAR,
  type SwsFlags,
} from 'node-av/constants';
import { MediaError } from './errors.ts';

export type ThumbnailScaler = 'fast_bilinear' | 'bilinear' | 'area';

const SCALERS: Record<ThumbnailScaler, SwsFlags> = { fast_bilinear: SWS_FAST_BILINEAR, bilinear: SWS_BILINEAR, area: SWS_AREA };

export interface JpegOptions {
  /** Output width (even); the height follows the aspect ratio. */
  width: number;
  /** 1 (smallest) .. 100 (best). */
  quality: number;
  scaler: ThumbnailScaler;
}

/** FFmpeg mjpeg's qscale (2 best .. 31 smallest) for a quality of 1..100, linearly. */
export function qscaleFor(quality: number): number {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  return Math.round(31 - ((q - 1) * 29) / 99);
}

/** The thumbnail size of a `w` x `h` frame at `width` (both even, height at least 2). */
export function thumbnailSize(w: number, h: number, width: number): { width: number; height: number } {
  const tw = Math.max(2, Math.min(width, w - (w % 2)));
  const th = Math.max(2, 2 * Math.round((h * tw) / w / 2));
  return { width: tw, height: th };
}

interface Contexts {
  srcW: number;
  srcH: number;
  sws: SoftwareScaleContext;
  enc: CodecContext;
  frame: Frame;
  w: number;
  h: number;
}

export class JpegThumbnailer {
  private ctx: Contexts | null = null;
  private readonly pkt = new Packet();
  private pts = 0n;
  private closed = false;

  constructor(private readonly opts: JpegOptions) {
    this.pkt.alloc();
  }

  /** The JPEG of one RGB24 frame (`data` is only read). Throws MediaError on a failure. */
  encode(data: Uint8Array, width: number, height: number): Buffer {
    if (this.closed) throw new MediaError('MEDIA_ENCODE_FAILED', 'thumbnailer is closed');
    if (data.length < width * height * 3) {
      throw new MediaError('MEDIA_ENCODE_FAILED', `frame holds ${data.length} bytes, expected ${width}x${height}x3`);
    }
    const c = this.contexts(width, height);
    const src = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const w = c.frame.makeWritable();
    if (w < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `thumbnail frame not writable (${w})`);
    const planes = c.frame.data;
    if (!planes || planes.length < 3) throw new MediaError('MEDIA_ENCODE_FAILED', 'thumbnail frame has no planes');
    const s = c.sws.scaleSync([src], [width * 3], 0, height, planes, c.frame.linesize.slice(0, 3));
    if (s < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `rgb24 -> thumbnail scale failed (${s})`);
    // mjpeg is intra only: each frame in gives its packet (a whole JPEG file) at once.
    c.frame.pts = this.pts++;
    const sent = c.enc.sendFrameSync(c.frame);
    if (sent < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `mjpeg refused the frame (${sent})`);
    const got = c.enc.receivePacketSync(this.pkt);
    if (got < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `mjpeg gave no packet (${got})`);
    try {
      const bytes = this.pkt.data;
      if (!bytes || bytes.length < 4) throw new MediaError('MEDIA_ENCODE_FAILED', 'mjpeg gave an empty packet');
      return Buffer.from(bytes);
    } finally {
      this.pkt.unref();
    }
  }

  private contexts(srcW: number, srcH: number): Contexts {
    if (this.ctx && this.ctx.srcW === srcW && this.ctx.srcH === srcH) return this.ctx;
    this.freeContexts();
    const { width: w, height: h } = thumbnailSize(srcW, srcH, this.opts.width);
    const codec = Codec.findEncoderByName(FF_ENCODER_MJPEG);
    if (!codec) throw new MediaError('MEDIA_ENCODE_FAILED', 'this FFmpeg build has no mjpeg encoder');
    const enc = new CodecContext();
    enc.allocContext3(codec);
    enc.width = w;
    enc.height = h;
    enc.pixelFormat = AV_PIX_FMT_YUVJ420P;
    enc.timeBase = new Rational(1, 90_000);
    // A fixed quantiser: qmin = qmax pins rate control to it, so every thumbnail has the same
    // quality whatever came before. (AV_CODEC_FLAG_QSCALE with global_quality alone is not enough
    // through the API: mpegvideo takes the quantiser from each frame's `quality`, which ffmpeg's CLI
    // fills in for you.)
    const q = qscaleFor(this.opts.quality);
    enc.qMin = q;
    enc.qMax = q;
    const opened = enc.open2Sync(codec, null);
    if (opened < 0) {
      enc.freeContext();
      throw new MediaError('MEDIA_ENCODE_FAILED', `cannot open the mjpeg encoder (${opened})`);
    }
    const sws = new SoftwareScaleContext();
    sws.getContext(srcW, srcH, AV_PIX_FMT_RGB24, w, h, AV_PIX_FMT_YUVJ420P, SCALERS[this.opts.scaler]);
    const frame = new Frame();
    frame.alloc();
    frame.width = w;
    frame.height = h;
    frame.format = AV_PIX_FMT_YUVJ420P;
    const buf = frame.getBuffer();
    if (buf < 0) {
      frame.free();
      sws.freeContext();
      enc.freeContext();
      throw new MediaError('MEDIA_ENCODE_FAILED', `cannot allocate a ${w}x${h} thumbnail frame (${buf})`);
    }
    this.ctx = { srcW, srcH, sws, enc, frame, w, h };
    return this.ctx;
  }

  private freeContexts(): void {
    if (!this.ctx) return;
    this.ctx.frame.free();
    this.ctx.sws.freeContext();
    this.ctx.enc.freeContext();
    this.ctx = null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.freeContexts();
    this.pkt.free();
  }
}
