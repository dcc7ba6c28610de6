// `npm run bench -- thumbnails`: what the dashboard's thumbnails cost a worker. Two parts, one run:
//   1. the thumbnailer alone (src/media/jpeg.ts): ms per thumbnail from a 512x512 RGB24 frame, for
//      each scaler, and its JPEG size;
//   2. the service as a black box (`streamfleet serve`, the glass bench's cases): N streams of the
//      512x512@30 clip, thumbnails off, then on (the defaults: 2 per second per side, 160 px), in
//      alternating rounds; CPU ms per output frame of each worker process (utime+stime from /proc).
// The bar (issue 12): thumbnails on costs at most 5% more CPU per frame than off.
// Env: SF_THUMB_SECONDS (clip length, default 12), SF_THUMB_STREAMS (default 2), SF_THUMB_ROUNDS
// (off/on pairs, default 3).
import '../src/polyfill.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../src/config.ts';
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

export default {
  name: 'thumbnails',
  async run(): Promise<void> {
    const alone = thumbnailerAlone();
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
