// `npm run bench media`: frames/s of our decode -> (identity) -> encode path at 512x512 against the
// `ffmpeg` CLI doing the same work on the same clip, in the same run, repetitions interleaved so
// load from other processes hits both alike. Medians; ratio = ours / ffmpeg.
//
// Baselines:
//  - ffmpeg CLI, frames handed to an application (the acceptance baseline): what a service built on
//    the ffmpeg CLI runs to get RGB frames in hand and encode them back, the same work as ours. One
//    ffmpeg decodes, scales to 512x512 and writes rgb24 frames to a pipe; this process reads each whole
//    frame (where the graph would run) and writes it to a second ffmpeg that encodes it with libx264
//    ultrafast zerolatency, no B-frames, copying the source's audio, into MPEG-TS. (media-notes.md
//    measured this shape at 360-430 frames/s.)
//  - ffmpeg, one process, rgb24 round trip inside: no frame ever leaves ffmpeg, so no application could
//    run a graph on it; less work than ours, shown for scale.
//  - ffmpeg, yuv only: the same without the rgb24 round trip: less work still.
// Ours is `processFile` (src/runner/offline.ts), i.e. what `streamfleet process` runs: the file cut
// into GOP segments, read as one TS stream by the runner's input part, decoded, encoded into one
// output segment per input segment by its processing part, exactly as a worker does (one frame at
// a time, no pipelining across segments).
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { processFile } from '../src/runner/offline.ts';

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

/** decode -> rgb24 frames through this process -> encode, as an app on the ffmpeg CLI does it. */
async function ffmpegPipeline(input: string, output: string): Promise<void> {
  const frameBytes = 512 * 512 * 3;
  const dec = spawn('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-i', input, '-an',
    '-vf', 'scale=512:512:force_original_aspect_ratio=increase,crop=512:512', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1',
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  const enc = spawn('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', '512x512', '-r', String(FPS), '-i', 'pipe:0', '-i', input,
    '-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'ultrafast', '-tune', 'zerolatency',
    '-bf', '0', '-g', String(FPS * 2), '-c:a', 'copy', '-f', 'mpegts', output,
  ], { stdio: ['pipe', 'ignore', 'inherit'] });
  // Re-chunk the byte stream into whole frames, as an application must before it can touch a picture.
  let pending: Buffer[] = [];
  let have = 0;
  for await (const chunk of dec.stdout as AsyncIterable<Buffer>) {
    pending.push(chunk);
    have += chunk.length;
    while (have >= frameBytes) {
      const all = Buffer.concat(pending);
      const frame = all.subarray(0, frameBytes);
      pending = [all.subarray(frameBytes)];
      have -= frameBytes;
      if (!enc.stdin.write(frame)) await once(enc.stdin, 'drain');
    }
  }
  enc.stdin.end();
  const [code] = await once(enc, 'exit');
  if (code !== 0) throw new Error(`ffmpeg encoder exited with ${code}`);
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
      const config = loadConfig({ media: { width: 512, height: 512 } });
      const frames = SECONDS * FPS;
      console.log(`${frames} frames per run, ${REPS} repetitions (interleaved), medians; output 512x512 libx264 ultrafast zerolatency, MPEG-TS.\n`);
      console.log('| source | path | median ms | frames/s | ours / this |');
      console.log('|---|---|---:|---:|---:|');
      for (const clip of clips) {
        const out = join(dir, 'out.ts');
        const t: Record<'ours' | 'ffPipe' | 'ffSame' | 'ffYuv', number[]> = { ours: [], ffPipe: [], ffSame: [], ffYuv: [] };
        await processFile(clip.path, out, config); // warm-up (JIT, codec tables), not counted
        for (let i = 0; i < REPS; i++) {
          t.ours.push(await timeIt(() => processFile(clip.path, out, config)));
          t.ffPipe.push(await timeIt(() => ffmpegPipeline(clip.path, out)));
          t.ffSame.push(await timeIt(() => run('ffmpeg', ffmpegArgs(clip.path, out, true))));
          t.ffYuv.push(await timeIt(() => run('ffmpeg', ffmpegArgs(clip.path, out, false))));
        }
        const ours = median(t.ours);
        const row = (name: string, ms: number, ratio: string) =>
          console.log(`| ${clip.name} | ${name} | ${ms.toFixed(0)} | ${((frames / ms) * 1000).toFixed(0)} | ${ratio} |`);
        row('ours (processFile)', ours, '');
        row('**ffmpeg CLI, frames handed to the app (same work)**', median(t.ffPipe), `**${(median(t.ffPipe) / ours).toFixed(2)}**`);
        row('ffmpeg, one process, rgb24 inside (frames never leave ffmpeg)', median(t.ffSame), (median(t.ffSame) / ours).toFixed(2));
        row('ffmpeg, yuv only (less work)', median(t.ffYuv), (median(t.ffYuv) / ours).toFixed(2));
      }
      console.log('\nratio = ffmpeg time / our time = our frames/s / ffmpeg frames/s; the acceptance bar (>= 0.8) is against the same-work row.');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
