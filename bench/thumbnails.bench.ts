// `npm run bench -- thumbnails`: what the dashboard's thumbnails cost a worker. Two parts, one run:
//   1. the thumbnailer alone (src/media/jpeg.ts): ms per thumbnail from a 512x512 RGB24 frame, for
//      each scaler, and its JPEG size;
//   2. the service as a black box (`streamfleet serve`, the glass bench's cases): N streams of the
//      512x512@30 clip, thumbnails off, then on (the defaults: 2 per second per side, 160 px), in
//      alternating rounds; CPU ms per output frame of each worker process (utime+stime from /proc).
//   3. a worker's per-frame work in this process (the invert graph on onnxruntime, then x264 into
//      an MPEG-TS segment), thumbnails off and on (the real ThumbnailTap on a 30 fps clock,
//      publishing on the embedded bus) in alternating blocks of one segment: CPU of this process
//      per frame. Decode is left out of the denominator, so the share it shows is an upper bound.
// The bar (issue 12): thumbnails on costs at most 5% more CPU per frame than off.
// Env: SF_THUMB_SECONDS (clip length, default 12), SF_THUMB_STREAMS (default 2), SF_THUMB_ROUNDS
// (off/on pairs, default 3).
import '../src/polyfill.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, loadConfig } from '../src/config.ts';
import { compileGraph } from '../src/inference/compile.ts';
import { SessionCache } from '../src/inference/sessions.ts';
import { validatePrompt } from '../src/inference/validate.ts';
import { rootLogger } from '../src/log.ts';
import { SegmentEncoder, YuvConverter } from '../src/media/encode.ts';
import { TS_TIME_BASE } from '../src/media/frame.ts';
import { ThumbnailTap } from '../src/runner/thumbnails.ts';
import { createBus } from '../src/transport/create-bus.ts';
import { applyFfmpegLogLevel } from '../src/media/ffmpeg-log.ts';
import { JpegThumbnailer, type ThumbnailScaler } from '../src/media/jpeg.ts';
import { serviceCase, type CaseResult, type Clip } from './glass/cases.ts';
import { CLIP_FPS, CLIP_SIZE, makeClip } from './glass/clip.ts';
import { killAllChildren } from './glass/procs.ts';
import { fx, mean, quantile } from './glass/stats.ts';
import { cutSegments, scanTs } from './glass/ts.ts';

const SECONDS = Number(process.env.SF_THUMB_SECONDS || 12);
const STREAMS = Number(process.env.SF_THUMB_STREAMS || 2);
const ROUNDS = Number(process.env.SF_THUMB_ROUNDS || 3);
const BAR = 1.05;

function frame(w: number, h: number, seed: number): Uint8Array {
  const f = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 3;
    f[i] = (x + seed) & 255;
    f[i + 1] = (y * 2 + seed) & 255;
    f[i + 2] = (x ^ y) & 255;
  }
  return f;
}

function thumbnailerAlone(): Map<ThumbnailScaler, number> {
  const cfg = defaultConfig.dashboard.thumbnails;
  applyFfmpegLogLevel(defaultConfig.media);
  const frames = [0, 1, 2, 3].map((s) => frame(CLIP_SIZE, CLIP_SIZE, s * 37));
  const out = new Map<ThumbnailScaler, number>();
  console.log(`Thumbnailer alone: ${CLIP_SIZE}x${CLIP_SIZE} RGB24 -> ${cfg.width} px JPEG, quality ${cfg.quality}, 500 thumbnails per scaler (median of each; CPU = process CPU / thumbnails).\n`);
  console.log('| scaler | ms per thumbnail (median) | CPU ms per thumbnail | JPEG bytes |');
  console.log('|---|---:|---:|---:|');
  for (const scaler of ['fast_bilinear', 'bilinear', 'area'] as const) {
    const t = new JpegThumbnailer({ width: cfg.width, quality: cfg.quality, scaler });
    for (let i = 0; i < 20; i++) t.encode(frames[i % 4], CLIP_SIZE, CLIP_SIZE);
    const ms: number[] = [];
    let bytes = 0;
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < 500; i++) {
      const s = performance.now();
      bytes = t.encode(frames[i % 4], CLIP_SIZE, CLIP_SIZE).length;
      ms.push(performance.now() - s);
    }
    const cpu = process.cpuUsage(cpu0);
    t.close();
    const med = quantile(ms, 0.5);
    out.set(scaler, med);
    console.log(`| ${scaler}${scaler === cfg.scaler ? ' (default)' : ''} | ${fx(med, 3)} | ${fx((cpu.user + cpu.system) / 1000 / 500, 3)} | ${bytes} |`);
  }
  return out;
}

/** Part 3: per-frame worker work with the tap off and on, alternating blocks, CPU per frame. */
async function workerWork(): Promise<{ off: number; on: number }> {
  const workspace = mkdtempSync(join(tmpdir(), 'sf-bench-thumbs-ws-'));
  const config = loadConfig({ inference: { workspace } });
  const bus = await createBus(config.bus);
  const prompt = validatePrompt(
    { '1': { class_type: 'LoadTensor', inputs: {} }, '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } }, '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } } },
    { workspace },
  );
  if (!prompt.valid) throw new Error(prompt.error.message);
  const g = await compileGraph(prompt.prompt, { width: CLIP_SIZE, height: CLIP_SIZE, workspace, config: config.inference, cache: new SessionCache(2) });
  const frames = Array.from({ length: 8 }, (_, i) => frame(CLIP_SIZE, CLIP_SIZE, i * 11));
  const converter = new YuvConverter();
  const sink = { write: () => undefined, end: () => undefined };
  const BLOCK = CLIP_FPS;
  const BLOCKS = Number(process.env.SF_THUMB_BLOCKS || 80);
  let clockMs = 0;
  let pts = 0n;
  const tap = new ThumbnailTap('bench', bus, config.dashboard.thumbnails, rootLogger, () => clockMs);
  const perFrame: Record<'on' | 'off', number[]> = { on: [], off: [] };
  const published0 = () => tap.counters.published;
  let thumbs = 0;
  // Pairs of blocks in ABBA order (on off, off on, on off, ...), so neither side always goes first.
  const isOn = (b: number) => (Math.floor(b / 2) % 2 === 0 ? b % 2 === 0 : b % 2 === 1);
  const pairsSeen: Array<{ on: number; off: number }> = [];
  let pending: { on?: number; off?: number } = {};
  for (let b = -2; b < BLOCKS; b++) {
    const on = isOn(b + 2);
    const enc = new SegmentEncoder(sink, { media: config.media, frameRate: CLIP_FPS, converter });
    const before = published0();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < BLOCK; i++) {
      const f = frames[i % frames.length];
      clockMs += 1000 / CLIP_FPS;
      if (on) tap.frame('input', f, CLIP_SIZE, CLIP_SIZE);
      const out = await g.run(f.slice());
      pts += 3000n;
      await enc.writeVideo({ data: out.data, width: out.width, height: out.height, pts, timeBase: TS_TIME_BASE });
      if (on) tap.frame('output', out.data, out.width, out.height);
    }
    await enc.end();
    const cpu = process.cpuUsage(cpu0);
    // The first two blocks warm up (JIT, allocator); they are not counted.
    if (b >= 0) {
      const ms = (cpu.user + cpu.system) / 1000 / BLOCK;
      perFrame[on ? 'on' : 'off'].push(ms);
      if (on) thumbs += published0() - before;
      pending[on ? 'on' : 'off'] = ms;
      if (b % 2 === 1) {
        if (pending.on !== undefined && pending.off !== undefined) pairsSeen.push({ on: pending.on, off: pending.off });
        pending = {};
      }
    }
  }
  tap.close();
  converter.close();
  await g.dispose();
  await bus.close();
  rmSync(workspace, { recursive: true, force: true });
  const off = quantile(perFrame.off, 0.5);
  const on = quantile(perFrame.on, 0.5);
  const onBlocks = perFrame.on.length;
  // Blocks next to each other saw the same machine: the paired differences cancel what other work
  // on the machine does to both.
  const pairs = pairsSeen;
  const diffs = pairs.map((p) => p.on - p.off);
  const ratios = pairs.map((p) => p.on / p.off);
  console.log(
    `\nA worker's per-frame work in this process (invert graph + x264 into a segment, ${CLIP_SIZE}x${CLIP_SIZE}, no decode), ${BLOCKS} blocks of ${BLOCK} frames (1 s of video each) ` +
      `alternating off/on on a simulated ${CLIP_FPS} fps clock (${fx(thumbs / onBlocks, 1)} thumbnails per on-block, both sides).\n`,
  );
  console.log('| thumbnails | CPU ms/frame (median of blocks) | mean | min | max |');
  console.log('|---|---:|---:|---:|---:|');
  for (const k of ['off', 'on'] as const) {
    const v = perFrame[k];
    console.log(`| ${k} | ${fx(quantile(v, 0.5), 3)} | ${fx(mean(v), 3)} | ${fx(Math.min(...v), 3)} | ${fx(Math.max(...v), 3)} |`);
  }
  const pr = quantile(ratios, 0.5);
  console.log(
    `\nPaired (each on-block with the off-block next to it, ${pairs.length} pairs, ABBA order): median on - off = **${fx(quantile(diffs, 0.5), 3)} ms** per frame, ` +
      `mean ${fx(mean(diffs), 3)}; median on/off = **${fx(pr, 3)}x** (bar <= ${BAR}x: ${pr <= BAR ? 'met' : '**not met**'}).`,
  );
  return { off, on };
}

export default {
  name: 'thumbnails',
  async run(): Promise<void> {
    const alone = thumbnailerAlone();
    await workerWork();
    const dir = mkdtempSync(join(tmpdir(), 'sf-bench-thumbs-'));
    const workspace = join(dir, 'ws');
    const onSignal = () => {
      killAllChildren();
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    };
    process.once('SIGINT', onSignal);
    try {
      const made = await makeClip(dir, SECONDS);
      const scan = scanTs(made.bytes);
      const clip: Clip = { path: made.path, segments: cutSegments(made.bytes, scan), pts: scan.frames.map((f) => f.pts), fps: CLIP_FPS, width: CLIP_SIZE, height: CLIP_SIZE, seconds: SECONDS };
      const cfgFile = (on: boolean) => {
        const p = join(dir, `thumbs-${on ? 'on' : 'off'}.json`);
        writeFileSync(p, JSON.stringify({ dashboard: { thumbnails: { enabled: on } } }));
        return p;
      };
      const files = { off: cfgFile(false), on: cfgFile(true) };
      const rows: Array<{ round: number; on: boolean; r: CaseResult }> = [];
      const loadStart = loadavg()[0];
      for (let round = 1; round <= ROUNDS; round++) {
        // Alternate which goes first, so a drift of the machine's load does not favour one side.
        const order = round % 2 ? [false, true] : [true, false];
        for (const on of order) {
          const r = await serviceCase(clip, dir, workspace, STREAMS, 'paced', `thumbs-${on ? 'on' : 'off'}-${round}`, false, ['--config', on ? files.on : files.off]);
          rows.push({ round, on, r });
          process.stderr.write(`[thumbnails] round ${round} ${on ? 'on ' : 'off'}: ${fx(mean(r.cpuMsPerFrame.filter(Number.isFinite)), 3)} CPU ms/frame per worker, ${r.framesOut}/${r.framesIn} frames\n`);
        }
      }
      const cfg = defaultConfig.dashboard.thumbnails;
      console.log(
        `\nThe service: ${STREAMS} streams of ${CLIP_SIZE}x${CLIP_SIZE}@${CLIP_FPS} (invert prompt), ${SECONDS} s each, paced; thumbnails off vs on ` +
          `(${cfg.fps}/s per side, ${cfg.width} px, ${cfg.scaler}), ${ROUNDS} rounds alternating the order. ${cpus().length} CPUs, loadavg ${fx(loadStart, 2)} -> ${fx(loadavg()[0], 2)}.\n`,
      );
      console.log('| round | thumbnails | CPU ms/frame per worker (each) | mean | frames out / in | lost | p50 ms | p99 ms |');
      console.log('|---:|---|---|---:|---:|---:|---:|---:|');
      for (const { round, on, r } of rows) {
        const c = r.cpuMsPerFrame.filter(Number.isFinite);
        console.log(`| ${round} | ${on ? 'on' : 'off'} | ${c.map((x) => fx(x, 3)).join(', ')} | ${fx(mean(c), 3)} | ${r.framesOut} / ${r.framesIn} | ${r.lost} | ${fx(quantile(r.latMs, 0.5))} | ${fx(quantile(r.latMs, 0.99))} |`);
      }
      const per = (on: boolean) => rows.filter((x) => x.on === on).map((x) => mean(x.r.cpuMsPerFrame.filter(Number.isFinite)));
      const off = quantile(per(false), 0.5);
      const on = quantile(per(true), 0.5);
      // What the thumbnailer alone predicts: thumbnails per second (both sides) x ms each, per frame.
      const predicted = ((2 * Math.min(cfg.fps, CLIP_FPS) * (alone.get(cfg.scaler) ?? NaN)) / CLIP_FPS);
      const ratio = on / off;
      console.log(
        `\nMedian over rounds: off **${fx(off, 3)}**, on **${fx(on, 3)}** CPU ms per frame per worker: on/off = **${fx(ratio, 3)}x** ` +
          `(bar <= ${BAR}x: ${ratio <= BAR ? 'met' : '**not met**'}). The thumbnailer alone predicts +${fx(predicted, 3)} ms per frame ` +
          `(${fx((100 * predicted) / off, 1)}% of off).\n`,
      );
    } finally {
      process.off('SIGINT', onSignal);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
