// Helpers for the media tests: byte sources that reveal how far a reader got, ffmpeg references
// to compare our pictures with, and a ffprobe reader for stream geometry.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** ffmpeg's own "scale to cover, then crop the centre" of frame `index` (or a plain stretch), as raw RGB24. */
export async function referenceCoverCrop(path: string, index: number, width: number, height: number, mode: 'cover' | 'stretch' = 'cover'): Promise<Buffer> {
  const scale = mode === 'cover' ? `scale=${width}:${height}:force_original_aspect_ratio=increase:flags=bilinear,crop=${width}:${height}` : `scale=${width}:${height}:flags=bilinear`;
  const vf = `select=eq(n\\,${index}),${scale}`;
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', path, '-vf', vf, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout as unknown as Buffer;
}

/** Mean absolute difference per byte between two equally sized pictures. */
export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`sizes differ: ${a.length} vs ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

/** Width and height of every video stream frame, in order. */
export async function probeFrameSizes(path: string): Promise<Array<{ width: number; height: number }>> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=width,height', '-of', 'csv=p=0', path], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout
    .split('\n')
    .map((l) => l.trim().replace(/,$/, ''))
    .filter(Boolean)
    .map((l) => {
      const [width, height] = l.split(',').map(Number);
      return { width, height };
    });
}

/** Collects everything written to a segment sink. */
export function memorySink(): { chunks: Uint8Array[]; ended: boolean; aborted: unknown; bytes(): Buffer; write(c: Uint8Array): void; end(): void; abort(r: unknown): void } {
  const s = {
    chunks: [] as Uint8Array[],
    ended: false,
    aborted: undefined as unknown,
    bytes: () => Buffer.concat(s.chunks),
    write: (c: Uint8Array) => void s.chunks.push(c),
    end: () => void (s.ended = true),
    abort: (r: unknown) => void (s.aborted = r ?? new Error('aborted')),
  };
  return s;
}
