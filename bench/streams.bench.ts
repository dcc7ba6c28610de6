// `npm run bench streams`: the actor runtime against the bare media+graph loop, in one run.
//   baseline: one process, no actors, no bus, no trickle: the runner's own input and processing
//             parts over the clip's GOP segments (src/runner/offline.ts processFile, what
//             `streamfleet process` runs), invert at 512x512 (compiled graph).
//   runtime:  a node (embedded bus, embedded trickle server, forked worker processes) running
//             dedicated streams with the invert prompt, fed in real time over trickle.
// Figures: streams at 512x512@30 one node sustains with < 1% drops; start request -> first output
// byte; in-service latency p50/p99 (last input byte in -> last output byte written; glass.bench.ts measures from outside); prompt-update output gap; worker-crash recovery time. Bounded: about
// two to four minutes on 2 cores.
import '../src/polyfill.ts';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRuntime, type Runtime } from '../src/actors/runtime.ts';
import type { RuntimeEvent } from '../src/actors/types.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { DEFAULT_PROMPT } from '../src/inference/stream-prompts.ts';
import { compileGraph, type CompiledGraph } from '../src/inference/compile.ts';
import { SessionCache } from '../src/inference/sessions.ts';
import { validatePrompt } from '../src/inference/validate.ts';
import { ensureWorkspace } from '../src/inference/workspace.ts';
import { processFile } from '../src/runner/offline.ts';
import type { Bus } from '../src/transport/bus.ts';
import { createBus } from '../src/transport/create-bus.ts';
import { createTrickleServer, type TrickleServer } from '../src/transport/trickle/index.ts';
import { collectOutput, publishClip } from '../test/helpers/stream-io.ts';

const run = promisify(execFile);
const SIZE = 512;
const FPS = 30;
const CLIP_SECONDS = 8;
const MAX_STREAMS = Number(process.env.SF_BENCH_MAX_STREAMS ?? 4);

const PASSTHROUGH = {
  '1': { class_type: 'LoadTensor', inputs: {} },
  '2': { class_type: 'SaveTensor', inputs: { images: ['1', 0] } },
};

function q(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');

async function framePts(path: string): Promise<number[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts', '-of', 'csv=p=0', path], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout.split('\n').map((l) => l.trim().replace(/,$/, '')).filter(Boolean).map(Number);
}

// ------------------------------------------------------------------------------------------------
// Baseline: the bare loop in this process.

async function compileInvert(workspace: string, config: Readonly<Config>, cache: SessionCache<CompiledGraph>): Promise<CompiledGraph> {
  const r = validatePrompt(DEFAULT_PROMPT, { workspace });
  if (!r.valid) throw new Error('default prompt does not validate');
  return compileGraph(r.prompt, { width: SIZE, height: SIZE, workspace, config: config.inference, cache });
}

async function baseline(clip: string, workspace: string, config: Readonly<Config>, dir: string) {
  const cache = new SessionCache<CompiledGraph>(4);
  const t0 = performance.now();
  const graph = await compileInvert(workspace, config, cache);
  const compiledMs = performance.now() - t0;
  const graphMs: number[] = [];
  let firstFrameMs = NaN;
  const timed = {
    size: { width: SIZE, height: SIZE },
    hold: () => () => undefined,
    run: async (data: Uint8Array) => {
      const s = performance.now();
      const out = await graph.run(data);
      graphMs.push(performance.now() - s);
      if (Number.isNaN(firstFrameMs)) firstFrameMs = performance.now() - t0;
      return out;
    },
  };
  const s = performance.now();
  const r = await processFile(clip, join(dir, 'baseline.ts'), { ...config, media: { ...config.media, width: SIZE, height: SIZE } }, { graph: timed });
  const wallMs = performance.now() - s;
  // A second compile of a different graph: what an in-process prompt swap costs.
  const p2 = validatePrompt(PASSTHROUGH, { workspace });
  const s2 = performance.now();
  if (p2.valid) await (await compileGraph(p2.prompt, { width: SIZE, height: SIZE, workspace, config: config.inference, cache })).run(new Uint8Array(SIZE * SIZE * 3));
  const swapMs = performance.now() - s2;
  await cache.clear();
  return {
    compiledMs,
    firstFrameMs,
    fps: (r.videoFrames / wallMs) * 1000,
    graphP50: q(graphMs, 0.5),
    graphP99: q(graphMs, 0.99),
    swapMs,
  };
}

// ------------------------------------------------------------------------------------------------
// Runtime: a node with real worker processes.

interface BenchNode {
  runtime: Runtime;
  trickle: TrickleServer;
  base: string;
  bus: Bus;
  close(): Promise<void>;
}

async function startBenchNode(config: Readonly<Config>): Promise<BenchNode> {
  const trickle = createTrickleServer({ config: config.trickle });
  const { port } = await trickle.listen(0, '127.0.0.1');
  const bus = await createBus(config.bus);
  const runtime = await createRuntime({ config, bus });
  return {
    runtime,
    trickle,
    bus,
    base: `http://127.0.0.1:${port}`,
    async close() {
      await runtime.close();
      await bus.close();
      await trickle.close();
    },
  };
}

async function startStream(n: BenchNode, id: string, workspace: string) {
  const r = validatePrompt(DEFAULT_PROMPT, { workspace });
  if (!r.valid) throw new Error('default prompt does not validate');
  return n.runtime.startStream({
    id,
    subscribeUrl: `${n.base}/${id}-in`,
    publishUrl: `${n.base}/${id}-out`,
    width: SIZE,
    height: SIZE,
    architecture: 'dedicated',
    prompts: [{ id: r.promptId, prompt: DEFAULT_PROMPT, graph: r.prompt }],
  });
}

function collectStats(n: BenchNode) {
  const per = new Map<string, { latencies: number[]; drops: number; frames: number }>();
  const reasons: Record<string, number> = {};
  const off = n.runtime.onRuntimeEvent((e: RuntimeEvent) => {
    if (e.type !== 'stats') return;
    const s = per.get(e.streamId) ?? { latencies: [], drops: 0, frames: 0 };
    s.latencies.push(...e.latenciesMs);
    s.drops += Object.values(e.dropsByReason).reduce((a, b) => a + b, 0);
    for (const [k, v] of Object.entries(e.dropsByReason)) reasons[k] = (reasons[k] ?? 0) + v;
    s.frames = e.frameCount;
    per.set(e.streamId, s);
  });
  return { per, reasons, off };
}

/** N streams at once, each fed the clip in real time; drops and latency over the whole run. */
async function capacityRun(n: BenchNode, streams: number, clip: string, workspace: string, dir: string) {
  const ids = Array.from({ length: streams }, (_, i) => `cap${streams}-${i}`);
  const stats = collectStats(n);
  const startMs: number[] = [];
  const firstOut: number[] = [];
  await Promise.all(
    ids.map(async (id) => {
      const t0 = performance.now();
      await startStream(n, id, workspace);
      startMs.push(performance.now() - t0);
      const out = collectOutput(`${n.base}/${id}-out`, join(dir, `${id}.ts`));
      await publishClip(`${n.base}/${id}-in`, clip, { close: false });
      await new Promise((r) => setTimeout(r, 1_500)); // the last segment's frames leave the graph
      await n.runtime.stopStream(id);
      const c = await out;
      if (c.firstByteAt.length) firstOut.push(c.firstByteAt[0] - t0);
    }),
  );
  stats.off();
  const all = [...stats.per.values()];
  const drops = all.reduce((a, s) => a + s.drops, 0);
  const frames = all.reduce((a, s) => a + s.frames, 0);
  const lat = all.flatMap((s) => s.latencies);
  const why = Object.entries(stats.reasons).map(([k, v]) => `${k} ${v}`).join(', ') || '-';
  return { streams, why, dropPct: (100 * drops) / Math.max(1, drops + frames), p50: q(lat, 0.5), p99: q(lat, 0.99), startMs: q(startMs, 0.5), firstOutMs: q(firstOut, 0.5) };
}

async function promptUpdateRun(n: BenchNode, clip: string, workspace: string, dir: string) {
  const id = 'upd';
  await startStream(n, id, workspace);
  const out = collectOutput(`${n.base}/${id}-out`, join(dir, `${id}.ts`));
  const feeding = publishClip(`${n.base}/${id}-in`, clip, { close: false });
  await new Promise((r) => setTimeout(r, 3_000));
  const r = validatePrompt(PASSTHROUGH, { workspace });
  const t = performance.now();
  if (r.valid) await n.runtime.updatePrompts(id, { prompts: [PASSTHROUGH] });
  const updateMs = performance.now() - t;
  await feeding;
  await new Promise((res) => setTimeout(res, 1_500));
  const pid = (await n.runtime.getStream(id))?.worker_status.pid;
  await n.runtime.stopStream(id);
  const pts = await framePts((await out).path);
  let gap = 0;
  for (let k = 1; k < pts.length; k++) gap = Math.max(gap, (pts[k] - pts[k - 1]) / (90_000 / FPS));
  return { updateMs, maxGapFrames: gap, samePid: pid !== undefined };
}

async function crashRun(n: BenchNode, clip: string, workspace: string, dir: string) {
  const id = 'crash';
  await startStream(n, id, workspace);
  const out = collectOutput(`${n.base}/${id}-out`, join(dir, `${id}.ts`));
  const feeding = publishClip(`${n.base}/${id}-in`, clip, { close: false });
  await new Promise((r) => setTimeout(r, 3_000));
  const pid = (await n.runtime.getStream(id))!.worker_status.pid!;
  const running = new Promise<number>((resolve) => {
    let restarted = false;
    const off = n.runtime.onRuntimeEvent((e) => {
      if (e.type === 'worker_restart' && e.streamId === id) restarted = true;
      if (restarted && e.type === 'state' && e.actor === 'stream' && e.streamId === id && e.state === 'running') {
        off();
        resolve(performance.now());
      }
    });
  });
  const t = performance.now();
  process.kill(pid, 'SIGKILL');
  const recoveredMs = (await running) - t;
  await feeding;
  await n.runtime.stopStream(id);
  const c = await out;
  const firstAfter = c.firstByteAt.find((x) => x > t);
  return { recoveredMs, outputBackMs: firstAfter !== undefined ? firstAfter - t : NaN };
}

export default {
  name: 'streams',
  async run(): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'sf-bench-streams-'));
    try {
      const workspace = ensureWorkspace(join(dir, 'ws'));
      const config = loadConfig({
        logLevel: 'error',
        inference: { workspace },
        actors: { maxStreams: MAX_STREAMS + 2, heartbeatIntervalMs: 500, heartbeatMisses: 6, endedStreamRetentionMs: 0 },
        cluster: { cpuTarget: 16 },
      });
      const clip = join(dir, 'clip.ts');
      await run('ffmpeg', [
        '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${SIZE}x${SIZE}:rate=${FPS}:duration=${CLIP_SECONDS}`,
        '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-g', String(FPS), '-keyint_min', String(FPS), '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-f', 'mpegts', clip,
      ]);

      const base = await baseline(clip, workspace, config, dir);
      const n = await startBenchNode(config);
      const cap: Awaited<ReturnType<typeof capacityRun>>[] = [];
      try {
        for (let s = 1; s <= MAX_STREAMS; s++) {
          const r = await capacityRun(n, s, clip, workspace, dir);
          cap.push(r);
          if (r.dropPct >= 1) break;
        }
        const upd = await promptUpdateRun(n, clip, workspace, dir);
        const crash = await crashRun(n, clip, workspace, dir);
        // The same crash with a spare process pool (actors.spareWorkers = 1): no fork on restart.
        const spareCfg = loadConfig({ ...config, actors: { ...config.actors, spareWorkers: 1 } } as Parameters<typeof loadConfig>[0]);
        const ns = await startBenchNode(spareCfg);
        let crashSpare: Awaited<ReturnType<typeof crashRun>>;
        try {
          await startStream(ns, 'prime', workspace); // the pool fills once the node is in use
          await ns.runtime.stopStream('prime');
          const deadline = Date.now() + 30_000;
          while (!ns.runtime.processes({ spares: true }).some((p) => p.key === 'spare' && p.joined) && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 100));
          }
          crashSpare = await crashRun(ns, clip, workspace, dir);
        } finally {
          await ns.close();
        }
        const sustained = cap.filter((r) => r.dropPct < 1).reduce((m, r) => Math.max(m, r.streams), 0);
        const one = cap[0];

        console.log(`Clip ${SIZE}x${SIZE}@${FPS} fps, ${CLIP_SECONDS} s, invert graph; ${MAX_STREAMS} streams at most.\n`);
        console.log('| streams at once | drops % | drops by reason | latency p50 ms | latency p99 ms | start -> running ms | start -> first output byte ms |');
        console.log('|---|---|---|---|---|---|---|');
        for (const r of cap) console.log(`| ${r.streams} | ${r.dropPct.toFixed(2)} | ${r.why} | ${f1(r.p50)} | ${f1(r.p99)} | ${f1(r.startMs)} | ${f1(r.firstOutMs)} |`);
        console.log('\n| figure | baseline (bare loop, one process) | runtime | ratio |');
        console.log('|---|---|---|---|');
        console.log(`| streams at 30 fps with < 1% drops | ${(base.fps / FPS).toFixed(2)} (throughput ${f1(base.fps)} fps / 30) | ${sustained} | ${ratio(sustained, base.fps / FPS)} |`);
        console.log(`| start -> first output frame ms | ${f1(base.firstFrameMs)} (compile + first frame) | ${f1(one.firstOutMs)} | ${ratio(one.firstOutMs, base.firstFrameMs)} |`);
        console.log(`| in-service latency p50 ms | ${f1(base.graphP50)} (graph only) | ${f1(one.p50)} | ${ratio(one.p50, base.graphP50)} |`);
        console.log(`| in-service latency p99 ms | ${f1(base.graphP99)} | ${f1(one.p99)} | ${ratio(one.p99, base.graphP99)} |`);
        console.log(`| prompt update ms | ${f1(base.swapMs)} (compile + warm the new graph) | ${f1(upd.updateMs)} | ${ratio(upd.updateMs, base.swapMs)} |`);
        console.log(`| prompt update: largest output pts gap, frames | 1 | ${f1(upd.maxGapFrames)} | |`);
        console.log(`| worker crash -> running again ms | ${f1(one.startMs)} (a cold start) | ${f1(crash.recoveredMs)} | ${ratio(crash.recoveredMs, one.startMs)} |`);
        console.log(`| worker crash -> output flowing again ms | | ${f1(crash.outputBackMs)} | |`);
        console.log(`| worker crash -> running again ms, spare pool of 1 | ${f1(one.startMs)} | ${f1(crashSpare.recoveredMs)} | ${ratio(crashSpare.recoveredMs, one.startMs)} |`);
        console.log(`| worker crash -> output flowing again ms, spare pool of 1 | | ${f1(crashSpare.outputBackMs)} | |`);
      } finally {
        await n.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
