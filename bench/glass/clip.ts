// The test clip: 512x512@30 H.264 (libx264 ultrafast, yuv420p, no B-frames, an IDR every 60 frames
// = one 2 s GOP per trickle segment) with AAC audio from a sine, in MPEG-TS, made by Debian's ffmpeg.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export const CLIP_SIZE = 512;
export const CLIP_FPS = 30;
export const CLIP_GOP = 60;

export async function makeClip(dir: string, seconds: number): Promise<{ path: string; bytes: Buffer }> {
  const path = join(dir, 'clip.ts');
  // prettier-ignore
  await exec('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${CLIP_SIZE}x${CLIP_SIZE}:rate=${CLIP_FPS}:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    '-g', String(CLIP_GOP), '-keyint_min', String(CLIP_GOP), '-sc_threshold', '0', '-bf', '0',
    '-c:a', 'aac', '-b:a', '64k',
    '-f', 'mpegts', path,
  ]);
  return { path, bytes: readFileSync(path) };
}
