// Start-up self-test: encode a tiny clip in memory and decode it back. Without the
// Promise.withResolvers polyfill node-av's demuxer yields nothing and raises nothing, so a worker
// would sit silently on every stream; this makes that (or a broken codec build) fail loudly.
import '../polyfill.ts';
import { defaultConfig, type MediaConfig } from '../config.ts';
import { decodeStream } from './decode.ts';
import { SegmentEncoder } from './encode.ts';
import { MediaError } from './errors.ts';
import type { VideoFrame } from './frame.ts';

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
  for await (const item of decodeStream(Buffer.concat(chunks), { media: cfg })) {
    if (item.kind === 'video') got.push(item.frame.pts);
    if (item.kind === 'error') throw new MediaError('MEDIA_SELFTEST_FAILED', `self-test decode failed: ${item.error.message}`, { cause: item.error });
  }
  if (got.length !== FRAMES || got.some((p, i) => p !== pts[i])) {
    throw new MediaError('MEDIA_SELFTEST_FAILED', `self-test decoded ${got.length}/${FRAMES} frames with pts [${got.join(',')}] (polyfill loaded before node-av?)`);
  }
  return { frames: got.length, bytes, ms: performance.now() - t0 };
}
