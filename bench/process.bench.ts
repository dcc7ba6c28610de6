// `npm run bench -- process`: CPU per frame of the runner's own media parts, in this process, against
// the ffmpeg CLI doing the same work in the same run. What runs is `streamfleet process`
// (src/runner/offline.ts): the runner's input part (one continuous TS demux) and its processing part
// (low-delay decode to RGB24 at 512x512, the invert prompt's compiled graph, rgb24 -> yuv420p,
// libx264 ultrafast zerolatency, MPEG-TS, audio copied), i.e. a worker's per-frame work without the
// trickle I/O; the glass bench measures the whole worker. Repetitions interleave ours and ffmpeg's, so
// load from other processes hits both alike; medians.
//
// Env: SF_BENCH_REPS (default 5), SF_PROCESS_SECONDS (clip length, default 12),
// SF_PROCESS_PROFILE=dir (one more run of ours under the V8 CPU profiler, written to dir).
import '../src/polyfill.ts';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { DEFAULT_PROMPT } from '../src/inference/stream-prompts.ts';
import { compileGraph } from '../src/inference/compile.ts';
import { validatePrompt } from '../src/inference/validate.ts';
import { ensureWorkspace } from '../src/inference/workspace.ts';
import { rootLogger } from '../src/log.ts';
import { compiledGraphRunner, processFile } from '../src/runner/offline.ts';

const exec = promisify(execFile);
const REPS = Number(process.env.SF_BENCH_REPS ?? 5);
const SECONDS = Number(process.env.SF_PROCESS_SECONDS ?? 12);
const SIZE = 512;
const FPS = 30;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** CPU ms (user + system) of this process while `fn` runs. */
async function cpuOf(fn: () => Promise<unknown>): Promise<number> {
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

/** CPU ms of one ffmpeg run (its rusage, read from /usr/bin/time's report would need another tool: ask the kernel via wait4 through `bash -c times`). */
async function ffmpegCpu(input: string): Promise<number> {
  // prettier-ignore
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-threads', '1', '-i', input,
    '-vf', 'format=rgb24,negate,format=yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-threads', '1',
    '-c:a', 'copy', '-f', 'mpegts', '-y', '/dev/null'];
  // `times` after the child has been waited for prints the children's user and system time.
  const script = `ffmpeg ${args.map((a) => `'${a}'`).join(' ')} && times`;
  const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((res) => child.once('exit', res));
  if (code !== 0) throw new Error(`ffmpeg exited ${code}`);
  // Second line: children's "XmY.YYYs XmZ.ZZZs".
  const line = out.trim().split('\n').pop() ?? '';
  const secs = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return (secs[0] + secs[1]) * 1000;
}

export default {
  name: 'process',
  async run(): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'sf-bench-process-'));
    try {
      const clip = join(dir, 'clip.ts');
      // prettier-ignore
      await exec('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y',
        '-f', 'lavfi', '-i', `testsrc2=size=${SIZE}x${SIZE}:rate=${FPS}:duration=${SECONDS}`,
        '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${SECONDS}`,
        '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', String(FPS * 2), '-keyint_min', String(FPS * 2), '-sc_threshold', '0', '-bf', '0',
        '-c:a', 'aac', '-b:a', '64k', '-f', 'mpegts', clip]);
      const frames = SECONDS * FPS;
      const workspace = ensureWorkspace(join(dir, 'ws'));
      const config = loadConfig({ media: { width: SIZE, height: SIZE }, inference: { workspace } });
      const v = validatePrompt(DEFAULT_PROMPT, { workspace });
      if (!v.valid) throw new Error('the invert prompt does not validate');
      const graph = await compileGraph(v.prompt, { width: SIZE, height: SIZE, workspace, config: config.inference });
      const log = rootLogger.child({ bench: 'process' });
      const out = join(dir, 'out.ts');
      const ours = () => processFile(clip, out, config, { graph: compiledGraphRunner(graph), log });
      const load0 = loadavg()[0];
      await ours(); // warm-up (JIT, codec tables), not counted
      const t: { ours: number[]; ffmpeg: number[]; wall: number[] } = { ours: [], ffmpeg: [], wall: [] };
      for (let i = 0; i < REPS; i++) {
        const w0 = performance.now();
        t.ours.push(await cpuOf(ours));
        t.wall.push(performance.now() - w0);
        t.ffmpeg.push(await ffmpegCpu(clip));
      }
      const o = median(t.ours) / frames;
      const f = median(t.ffmpeg) / frames;
      console.log(`Clip ${SIZE}x${SIZE}@${FPS} H.264 + AAC, ${SECONDS} s (${frames} frames), invert prompt; ${REPS} repetitions interleaved, medians; loadavg ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}.\n`);
      console.log('| path | CPU ms per frame (median; min-max) | wall ms per frame | vs ffmpeg CLI same work |');
      console.log('|---|---:|---:|---:|');
      const range = (xs: number[]) => `${(Math.min(...xs) / frames).toFixed(2)}-${(Math.max(...xs) / frames).toFixed(2)}`;
      console.log(`| ours: runner input + processing parts (streamfleet process) | ${o.toFixed(2)} (${range(t.ours)}) | ${(median(t.wall) / frames).toFixed(2)} | ${(o / f).toFixed(2)}x |`);
      console.log(`| ffmpeg CLI, rgb24 in the chain (same work, one thread) | ${f.toFixed(2)} (${range(t.ffmpeg)}) | n/a | 1.00x |`);
      console.log(`\nPer run, ours: ${t.ours.map((c) => (c / frames).toFixed(2)).join(', ')}; ffmpeg: ${t.ffmpeg.map((c) => (c / frames).toFixed(2)).join(', ')} ms CPU per frame.`);
      console.log(
        'CPU = user + system time of this process across the run (all its threads: the x264 and onnxruntime pools too), ' +
          "or of the ffmpeg child (bash's `times`). -vf format=rgb24,negate,format=yuv420p, libx264 ultrafast zerolatency, -threads 1, audio copied.",
      );
      if (process.env.SF_PROCESS_PROFILE) {
        const session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
        await ours();
        const { profile } = await session.post('Profiler.stop');
        const file = join(process.env.SF_PROCESS_PROFILE, `process-${Date.now()}.cpuprofile`);
        writeFileSync(file, JSON.stringify(profile));
        session.disconnect();
        console.log(`\n(CPU profile of one more run: ${file})`);
      }
      await graph.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
