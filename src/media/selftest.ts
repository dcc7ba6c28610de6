// Start-up self-test: encode a tiny clip in memory and decode it back, through the parts a worker
// uses (the TS muxer and encoder, then ts-demux.ts and the low-delay video decoder). Without the
// Promise.withResolvers polyfill node-av's async calls hang or yield nothing, so a worker would sit
// silently on every stream; this makes that (or a broken codec build) fail loudly.
import '../polyfill.ts';
import { defaultConfig, type MediaConfig } from '../config.ts';
import { SegmentEncoder } from './encode.ts';
import { MediaError } from './errors.ts';
import type { VideoFrame } from './frame.ts';
import { TsDemuxer } from './ts-demux.ts';
import { isDecodableVideo, VideoDecoder } from './video-decoder.ts';

const SIZE = 64;
const FRAMES = 3;
const TB = { num: 1, den: 90_000 };

export interface SelfTestReport {
  frames: number;
  bytes: number;
  ms: number;
}

/** Throws MediaError('MEDIA_SELFTEST_FAILED') unless a 3-frame clip round-trips with its pts. */
export async function mediaSelfTest(media: MediaConfig = defaultConfig.media): Promise<SelfTestReport> {
  const t0 = performance.now();
  if (typeof (Promise as unknown as { withResolvers?: unknown }).withResolvers !== 'function') {
    throw new MediaError('MEDIA_SELFTEST_FAILED', 'Promise.withResolvers is missing: import src/polyfill.ts before node-av');
  }
  const chunks: Uint8Array[] = [];
  const cfg: MediaConfig = { ...media, width: SIZE, height: SIZE, maxInputFps: 0 };
  const enc = new SegmentEncoder({ write: (c) => void chunks.push(c), end: () => undefined }, { media: cfg, frameRate: 30 });
  const pts = Array.from({ length: FRAMES }, (_, i) => BigInt(90_000 + i * 3_001));
  try {
    for (const [i, p] of pts.entries()) {
      const data = new Uint8Array(SIZE * SIZE * 3).fill(40 + i * 60);
      const frame: VideoFrame = { data, width: SIZE, height: SIZE, pts: p, timeBase: TB };
      await enc.writeVideo(frame);
    }
    await enc.end();
  } catch (err) {
    throw new MediaError('MEDIA_SELFTEST_FAILED', `self-test encode failed: ${(err as Error).message}`, { cause: err });
  }
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const got: bigint[] = [];
  const demux = new TsDemuxer({ maxPesBytes: 1 << 20 });
  let decoder: VideoDecoder | null = null;
  try {
    const events = [...demux.push(Buffer.concat(chunks), 0), ...demux.endSegment(0)];
    for (const ev of events) {
      if (ev.type === 'program' && ev.program.video && isDecodableVideo(ev.program.video.streamType)) {
        decoder?.close();
        decoder = VideoDecoder.open(ev.program.video.streamType, { width: SIZE, height: SIZE, threads: 1 });
      }
      if (ev.type === 'unit' && ev.unit.kind === 'video' && decoder) for (const f of decoder.decode(ev.unit)) got.push(f.pts);
    }
    if (decoder) for (const f of decoder.flush()) got.push(f.pts);
  } catch (err) {
    throw new MediaError('MEDIA_SELFTEST_FAILED', `self-test decode failed: ${(err as Error).message}`, { cause: err });
  } finally {
    decoder?.close();
  }
  if (got.length !== FRAMES || got.some((p, i) => p !== pts[i])) {
    throw new MediaError('MEDIA_SELFTEST_FAILED', `self-test decoded ${got.length}/${FRAMES} frames with pts [${got.join(',')}] (polyfill loaded before node-av?)`);
  }
  return { frames: got.length, bytes, ms: performance.now() - t0 };
}
