// `npm run bench media`: frames/s of our decode -> (identity) -> encode path at 512x512 against the
// `ffmpeg` CLI doing the same work on the same clip, in the same run, repetitions interleaved so
// load from other processes hits both alike. Medians; ratio = ours / ffmpeg.
//
// Baselines:
//  - ffmpeg (same work): decode, scale to 512x512, to rgb24 and back to yuv420p (what our frames go
//    through, since the graph sees RGB), libx264 ultrafast zerolatency no B-frames, MPEG-TS out.
//  - ffmpeg (yuv only): the same without the rgb24 round trip: less work than ours, shown for scale.
// Ours is `processFile`, i.e. what `streamfleet process` runs: cut into GOP segments, then each
// segment through transcodeSegment (a demuxer, a decoder, a fresh encoder and a muxer per segment).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { processFile } from '../src/media/process-file.ts';

const run = promisify(execFile);
const REPS = Number(process.env.SF_BENCH_REPS ?? 5);
const SECONDS = 20;
const FPS = 30;

interface Clip {
  name: string;
  path: string;
}

async function makeBenchClip(path: string, size: string): Promise<void> {
  await run('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${FPS}:duration=${SECONDS}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${SECONDS}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-g', String(FPS * 2), '-keyint_min', String(FPS * 2), '-sc_threshold', '0', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k', '-shortest', '-f', 'mpegts', path,
  ]);
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

function ffmpegArgs(input: string, output: string, rgb: boolean): string[] {
  // Cover-and-crop like ours (a no-op crop for a square source).
  const vf = `scale=512:512:force_original_aspect_ratio=increase,crop=512:512${rgb ? ',format=rgb24' : ''}`;
  return [
    '-hide_banner', '-loglevel', 'error', '-y', '-i', input, '-vf', vf,
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', '0', '-g', String(FPS * 2),
    '-c:a', 'copy', '-f', 'mpegts', output,
  ];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export default {
  name: 'media',
  async run(): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'sf-bench-media-'));
    try {
      const clips: Clip[] = [
        { name: '512x512 source', path: join(dir, 'sq.ts') },
        { name: '1280x720 source', path: join(dir, 'hd.ts') },
      ];
      await makeBenchClip(clips[0].path, '512x512');
      await makeBenchClip(clips[1].path, '1280x720');
      const media = loadConfig({ media: { width: 512, height: 512 } }).media;
      const frames = SECONDS * FPS;
      console.log(`${frames} frames per run, ${REPS} repetitions (interleaved), medians; output 512x512 libx264 ultrafast zerolatency, MPEG-TS.\n`);
      console.log('| source | path | median ms | frames/s | ours / this |');
      console.log('|---|---|---:|---:|---:|');
      for (const clip of clips) {
        const out = join(dir, 'out.ts');
        const t: Record<'ours' | 'ffSame' | 'ffYuv', number[]> = { ours: [], ffSame: [], ffYuv: [] };
        await processFile(clip.path, out, { media }); // warm-up (JIT, codec tables), not counted
        for (let i = 0; i < REPS; i++) {
          t.ours.push(await timeIt(() => processFile(clip.path, out, { media })));
          t.ffSame.push(await timeIt(() => run('ffmpeg', ffmpegArgs(clip.path, out, true))));
          t.ffYuv.push(await timeIt(() => run('ffmpeg', ffmpegArgs(clip.path, out, false))));
        }
        const ours = median(t.ours);
        const row = (name: string, ms: number, ratio: string) =>
          console.log(`| ${clip.name} | ${name} | ${ms.toFixed(0)} | ${((frames / ms) * 1000).toFixed(0)} | ${ratio} |`);
        row('ours (processFile)', ours, '');
        row('ffmpeg, same work (rgb24 round trip)', median(t.ffSame), (median(t.ffSame) / ours).toFixed(2));
        row('ffmpeg, yuv only (less work)', median(t.ffYuv), (median(t.ffYuv) / ours).toFixed(2));
      }
      console.log('\nratio = ffmpeg time / our time = our frames/s / ffmpeg frames/s (>= 0.8 is the bar).');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
