// The cases of the glass-to-glass bench. Each is bounded (clip length + a few seconds) and stops
// every process it started by PID.
//   trickleAlone: publish into a bare `streamfleet trickle-server` and read the same channel back.
//   ffmpegCli:    the ffmpeg CLI doing the same per-frame work on the clip, CPU per frame.
//   serviceCase:  `streamfleet serve` with N streams (invert prompt), fed paced (or burst) segments.
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startStream, stopStream, streamStatus, workerPid, type StreamStatus } from './api.ts';
import { keepAliveAgent, parseBase, simpleRequest, sleep } from './http.ts';
import { atNormalPriority, startService, startTrickleServer } from './procs.ts';
import { alive, clockTicks, memKb, ProcWatch, reapedChildrenTicks } from './procstat.ts';
import { quantile as quantileOf } from './stats.ts';
import { publish, type PublishMode, type PublishResult } from './publisher.ts';
import { StampingSubscriber } from './subscriber.ts';
import type { ClipSegment } from './ts.ts';

export interface Clip {
  path: string;
  segments: ClipSegment[];
  /** every video pts of the clip, in order */
  pts: number[];
  fps: number;
  width: number;
  height: number;
  seconds: number;
}

export interface CaseResult {
  label: string;
  kind: 'trickle' | 'ffmpeg' | 'service';
  streams: number;
  mode: PublishMode | null;
  framesIn: number;
  framesOut: number;
  lost: number;
  /** output frames whose pts no input frame had */
  unmatched: number;
  latMs: number[];
  /** per stream: CPU ms of its worker process(es) / frames it output */
  cpuMsPerFrame: number[];
  /** CPU ms of the main process (node / trickle server / ffmpeg) / all frames out */
  mainCpuMsPerFrame: number;
  /** per worker: peak RSS (VmHWM) in KiB, read at the end of the case */
  peakRssKb: number[];
  /** the main process's peak RSS (VmHWM), KiB */
  mainPeakRssKb: number;
  /** per stream: POST /stream/start sent -> first output byte arrived */
  startToFirstOutMs: number[];
  /** per stream: first input write -> first output byte arrived */
  firstInToFirstOutMs: number[];
  /** per stream: how long POST /stream/start took to answer */
  startAnswerMs: number[];
  load: [number, number];
  loopDelayP99Ms: number;
  pubLateP99Ms: number;
  /** this process's own CPU over the case, % of one core */
  benchCpuPct: number;
  notes: string[];
  wallMs: number;
  /** per frame, for SF_GLASS_DUMP: stream index, pts, input last byte sent, output last byte arrived (NaN: lost) */
  detail: Array<{ stream: number; pts: number; sentAt: number; arrivedAt: number }>;
  /** for SF_GLASS_DUMP: per stream, the output segments read and the first 470s, times in ms since publishing began */
  subLogs: Array<{ stream: number; segments: Array<Record<string, unknown>>; early470: Array<Record<string, unknown>> }>;
}

const env = (k: string, d: number) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : d);
const DRAIN_MS = env('SF_GLASS_DRAIN_MS', 4_000);
const START_CONCURRENCY = Math.max(1, env('SF_GLASS_START_CONCURRENCY', 2));
/** a case stops starting streams after this long; the ones not started count as failed (all lost) */
const START_BUDGET_MS = env('SF_GLASS_START_BUDGET_MS', 90_000);
const LEAD_MS = 300;
/** event-loop delay sampling; the histogram holds timer intervals, so the lag is a value minus this */
const LOOP_RES_MS = 5;

function emptyResult(label: string, kind: CaseResult['kind'], streams: number, mode: PublishMode | null): CaseResult {
  return {
    label,
    kind,
    streams,
    mode,
    framesIn: 0,
    framesOut: 0,
    lost: 0,
    unmatched: 0,
    latMs: [],
    cpuMsPerFrame: [],
    mainCpuMsPerFrame: NaN,
    peakRssKb: [],
    mainPeakRssKb: NaN,
    startToFirstOutMs: [],
    firstInToFirstOutMs: [],
    startAnswerMs: [],
    load: [loadavg()[0], NaN],
    loopDelayP99Ms: NaN,
    pubLateP99Ms: NaN,
    benchCpuPct: NaN,
    notes: [],
    wallMs: 0,
    detail: [],
    subLogs: [],
  };
}

function benchCpu(since: NodeJS.CpuUsage, wallMs: number): number {
  const u = process.cpuUsage(since);
  return ((u.user + u.system) / 1000 / wallMs) * 100;
}

/** Warning/error log lines grouped: pino lines by level, code and msg; other lines by their text. */
function summarizeLog(lines: string[]): string {
  const counts = new Map<string, number>();
  for (const line of lines) {
    let key = line.trim().slice(0, 120);
    // Stack-trace lines of a native crash report: one group.
    if (/^\s*(\d+: |-----|what\(\):)/.test(line)) key = '(crash report lines)';
    try {
      const j = JSON.parse(line) as { level?: number; msg?: string; code?: string; err?: unknown };
      const lvl = j.level === 40 ? 'warn' : j.level === 50 ? 'error' : j.level === 60 ? 'fatal' : String(j.level);
      key = `${lvl} ${j.code ? `${j.code} ` : ''}"${j.msg ?? ''}"`;
    } catch {
      /* a raw stderr line */
    }
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const all = [...counts].map(([k, n]) => `${k} x${n}`);
  return all.slice(0, 6).join('; ') + (all.length > 6 ? `; ${all.length - 6} more kinds` : '');
}

function summarizeErrors(prefix: string, errs: string[]): string | null {
  if (!errs.length) return null;
  const counts = new Map<string, number>();
  for (const e of errs) {
    const k = e.replace(/\b\d+\b/g, 'N');
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return `${prefix}: ` + [...counts].map(([k, n]) => `${k} x${n}`).join('; ');
}

/** Matches a subscriber's output frames to a publisher's input frames by pts. */
function matchFrames(r: CaseResult, pts: number[], pub: PublishResult | null, sub: StampingSubscriber | null, stream = 0): number {
  r.framesIn += pts.length;
  for (const p of pts) r.detail.push({ stream, pts: p, sentAt: pub?.sentAt.get(p) ?? NaN, arrivedAt: sub?.frames.get(p)?.lastByteAt ?? NaN });
  let out = 0;
  if (!sub) {
    r.lost += pts.length;
    return 0;
  }
  const inSet = new Set(pts);
  for (const p of sub.frames.keys()) if (!inSet.has(p)) r.unmatched++;
  for (const p of pts) {
    const o = sub.frames.get(p);
    const i = pub?.sentAt.get(p);
    if (o && i !== undefined) {
      r.latMs.push(o.lastByteAt - i);
      out++;
    } else r.lost++;
  }
  r.framesOut += out;
  return out;
}

function lastOutIdx(sub: StampingSubscriber | null, pts: number[]): number {
  let last = -1;
  pts.forEach((p, i) => {
    if (sub?.frames.has(p)) last = i;
  });
  return last;
}

/** Resolves once every input pts came out (or is the PES still arriving, quiet for 300 ms), or at the deadline. */
async function drain(subs: Array<StampingSubscriber | null>, pts: number[], deadline: number): Promise<void> {
  const complete = (s: StampingSubscriber) => {
    const pending = s.pendingPts();
    const quiet = performance.now() - s.lastChunkAt > 300;
    return pts.every((p) => s.frames.has(p) || (p === pending && quiet));
  };
  while (performance.now() < deadline) {
    if (subs.every((s) => !s || s.stats.closed || complete(s))) return;
    await sleep(50);
  }
}

function subscriberNotes(r: CaseResult, subs: Array<StampingSubscriber | null>, base: number): void {
  const jumps = subs.flatMap((s) => s?.stats.jumps ?? []);
  if (jumps.length) r.notes.push(`subscriber 470 jumps: ${jumps.length} (${jumps.slice(0, 4).map((j) => `${j.from}->${j.to}`).join(', ')})`);
  const early = subs.reduce((a, s) => a + (s?.stats.early470 ?? 0), 0);
  if (early) {
    const eg = subs
      .flatMap((s) => s?.stats.log470 ?? [])
      .slice(0, 3)
      .map((e) => `seq ${e.seq} latest ${e.latest}${e.preconnect ? ' (preconnected)' : ''} at +${((e.at - base) / 1000).toFixed(1)} s`);
    r.notes.push(`subscriber 470 for a seq ahead of the live edge (asked again): ${early} (e.g. ${eg.join('; ')})`);
  }
  subs.forEach((s, stream) => {
    if (!s) return;
    const rel = (t: number) => Math.round(t - base);
    r.subLogs.push({
      stream,
      segments: s.stats.segLog.map((g) => ({ ...g, headersAt: rel(g.headersAt), endAt: rel(g.endAt) })),
      early470: s.stats.log470.map((e) => ({ ...e, at: rel(e.at), answeredAfterMs: Math.round(e.answeredAfterMs) })),
    });
  });
  const empties = subs.flatMap((s) => (s?.stats.segLog ?? []).filter((g) => g.bytes === 0).map((g) => `seq ${g.seq} at +${((g.endAt - base) / 1000).toFixed(1)} s`));
  if (empties.length) r.notes.push(`empty output segments (200, no bytes): ${empties.length} (e.g. ${empties.slice(0, 3).join('; ')})`);
  const dups = subs.reduce((a, s) => a + (s?.stats.duplicates ?? 0), 0);
  if (dups) r.notes.push(`duplicate output pts: ${dups}`);
  const cut = subs.reduce((a, s) => a + (s?.stats.cutAtStop ?? 0), 0);
  if (cut) r.notes.push(`last PES still open at the end of the case (closed by us, stamped by its last chunk): ${cut}`);
  const e = summarizeErrors('subscriber errors', subs.flatMap((s) => s?.stats.errors ?? []));
  if (e) r.notes.push(e);
  if (r.unmatched) r.notes.push(`output pts matching no input pts: ${r.unmatched}`);
}

// ------------------------------------------------------------------------------------------------

export async function trickleAlone(clip: Clip, dir: string): Promise<CaseResult> {
  const r = emptyResult('trickle server alone (floor)', 'trickle', 1, 'paced');
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const loop = monitorEventLoopDelay({ resolution: LOOP_RES_MS });
  let server: Awaited<ReturnType<typeof startTrickleServer>> | null = null;
  const agent = keepAliveAgent();
  try {
    server = await startTrickleServer(dir, 'alone');
    const target = parseBase(server.url);
    const ch = 'glass-alone';
    await simpleRequest(agent, target, 'POST', `/${ch}`, { 'Expect-Content': 'video/MP2T' });
    const watch = new ProcWatch();
    watch.add(server.pid);
    watch.start();
    loop.enable();
    const sub = new StampingSubscriber(agent, target, ch, 0);
    const startAt = performance.now() + LEAD_MS;
    const pub = await publish({ agent, target, channel: ch, segments: clip.segments, t0: startAt, mode: 'paced', fps: clip.fps });
    await drain([sub], clip.pts, performance.now() + DRAIN_MS);
    await sub.stop();
    loop.disable();
    watch.stop();
    r.load[1] = loadavg()[0];
    const out = matchFrames(r, clip.pts, pub, sub);
    r.mainCpuMsPerFrame = watch.cpuMs(server.pid) / Math.max(out, 1);
    r.cpuMsPerFrame.push(r.mainCpuMsPerFrame);
    r.mainPeakRssKb = watch.samples.get(server.pid)?.hwmKb ?? NaN;
    r.firstInToFirstOutMs.push(sub.firstByteAt - pub.firstWriteAt);
    r.pubLateP99Ms = quantileOf(pub.lateMs, 0.99);
    r.loopDelayP99Ms = Math.max(0, loop.percentile(99) / 1e6 - LOOP_RES_MS);
    const pe = summarizeErrors('publisher', pub.errors);
    if (pe) r.notes.push(pe);
    subscriberNotes(r, [sub], startAt);
    await simpleRequest(agent, target, 'DELETE', `/${ch}`);
  } catch (err) {
    r.notes.push(`case failed: ${(err as Error).message}`);
    if (!r.framesIn) {
      r.framesIn = clip.pts.length;
      r.lost = clip.pts.length;
    }
  } finally {
    loop.disable();
    agent.destroy();
    if (server) {
      const s = await server.stop(10_000);
      if (s.killed.length) r.notes.push(`had to SIGKILL leftover pids ${s.killed.join(',')}`);
      if (server.problems.length) r.notes.push(`trickle server log: ${summarizeLog(server.problems)}`);
    }
    r.wallMs = performance.now() - t0;
    r.benchCpuPct = benchCpu(cpu0, r.wallMs);
  }
  return r;
}

// ------------------------------------------------------------------------------------------------

/**
 * The ffmpeg CLI doing the same work as one stream, as fast as it can (CPU does not depend on
 * pacing much). CPU = the growth of our own cutime+cstime across spawning and reaping it: the
 * kernel adds a reaped child's utime+stime there exactly (nothing else of ours exits meanwhile).
 * Peak RSS from polling its /proc/<pid>/status VmHWM. Median of `reps` runs.
 */
export async function ffmpegCli(clip: Clip, label: string, vf: string, reps = 3): Promise<CaseResult> {
  const r = emptyResult(label, 'ffmpeg', 1, null);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const cpu: number[] = [];
  const hwm: number[] = [];
  // prettier-ignore
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-threads', '1', '-i', clip.path,
    '-vf', vf, '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-threads', '1',
    '-c:a', 'copy', '-f', 'mpegts', '-y', '/dev/null'];
  for (let i = 0; i < reps; i++) {
    const before = reapedChildrenTicks();
    const [cmd, argv] = atNormalPriority('ffmpeg', args);
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    let peak = 0;
    const poll = setInterval(() => {
      const m = child.pid ? memKb(child.pid) : null;
      if (m && Number.isFinite(m.hwmKb)) peak = Math.max(peak, m.hwmKb);
    }, 50);
    const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
    clearInterval(poll);
    if (code !== 0) {
      r.notes.push(`ffmpeg exited ${code}: ${err.trim().slice(0, 200)}`);
      continue;
    }
    cpu.push(((reapedChildrenTicks() - before) * 1000) / clockTicks());
    if (peak) hwm.push(peak);
  }
  const frames = clip.pts.length;
  r.framesIn = frames;
  r.framesOut = cpu.length ? frames : 0;
  r.lost = frames - r.framesOut;
  const cpuMs = quantileOf(cpu, 0.5);
  r.cpuMsPerFrame = cpu.length ? [cpuMs / frames] : [];
  r.mainCpuMsPerFrame = cpu.length ? cpuMs / frames : NaN;
  r.peakRssKb = hwm.length ? [quantileOf(hwm, 0.5)] : [];
  r.load[1] = loadavg()[0];
  r.notes.push(`ffmpeg -vf ${vf}: CPU ms per run ${cpu.map((c) => c.toFixed(0)).join(', ')} for ${frames} frames`);
  r.wallMs = performance.now() - t0;
  r.benchCpuPct = benchCpu(cpu0, r.wallMs);
  return r;
}

// ------------------------------------------------------------------------------------------------

interface StreamRun {
  id: string;
  startSentAt: number;
  answer: { status: number; ms: number; text: string; error?: string } | null;
  sub: StampingSubscriber | null;
  pub: PublishResult | null;
  pids: number[];
  status: StreamStatus | null;
  finalStatus: StreamStatus | null;
}

/**
 * `flowing`: the gateway's order. Each stream's publisher starts sending its clip (paced) as its
 * POST /stream/start is sent, so start -> first out byte is the service's alone (no bench lead);
 * the frames sent while the worker starts are a backlog, so its latency figures are not comparable.
 */
export async function serviceCase(clip: Clip, dir: string, workspace: string, n: number, mode: PublishMode, tag: string, flowing = false, serveArgs: string[] = []): Promise<CaseResult> {
  const label =
    mode === 'burst' ? `service, ${n} stream, burst (whole segments)` : flowing ? `service, ${n} stream, input flowing before start` : `service, ${n} stream${n > 1 ? 's' : ''}`;
  const r = emptyResult(label, 'service', n, flowing ? null : mode);
  const t0 = performance.now();
  const flows: Promise<void>[] = [];
  const cpu0 = process.cpuUsage();
  const loop = monitorEventLoopDelay({ resolution: LOOP_RES_MS });
  const agent = keepAliveAgent();
  const runs: StreamRun[] = [];
  let node: Awaited<ReturnType<typeof startService>> | null = null;
  const watch = new ProcWatch();
  const mainWatch = new ProcWatch();
  let statusTimer: NodeJS.Timeout | null = null;
  let base = NaN;
  try {
    node = await startService(dir, workspace, Math.max(n, 1), tag, serveArgs);
    const target = parseBase(node.trickle);
    const api = node.api;
    mainWatch.add(node.pid);
    // Streams start a few at a time (all at once would only queue process forks on 2 cores).
    const ids = Array.from({ length: n }, (_, i) => `glass-${tag}-${i}`);
    let nextIdx = 0;
    const startOne = async (id: string) => {
      // As an orchestrator does, the channels exist before the runner gets their URLs.
      await simpleRequest(agent, target, 'POST', `/${id}`, { 'Expect-Content': 'video/MP2T' });
      await simpleRequest(agent, target, 'POST', `/${id}-out`, { 'Expect-Content': 'video/MP2T' });
      const run: StreamRun = { id, startSentAt: 0, answer: null, sub: null, pub: null, pids: [], status: null, finalStatus: null };
      run.sub = new StampingSubscriber(agent, target, `${id}-out`, 0);
      run.startSentAt = performance.now();
      if (flowing) flows.push(publish({ agent, target, channel: id, segments: clip.segments, t0: run.startSentAt, mode, fps: clip.fps }).then((p) => void (run.pub = p)));
      run.answer = await startStream(api, {
        id,
        subscribeUrl: `${node!.trickle}/${id}`,
        publishUrl: `${node!.trickle}/${id}-out`,
        width: clip.width,
        height: clip.height,
      });
      r.startAnswerMs.push(run.answer.ms);
      if (run.answer.status !== 200) {
        r.notes.push(`start ${id}: HTTP ${run.answer.status} ${run.answer.error ?? run.answer.text.slice(0, 200)}`);
        await run.sub.stop();
        run.sub = null;
      } else {
        run.status = await streamStatus(api, id);
        const pid = workerPid(run.status);
        if (pid) run.pids.push(pid);
        else r.notes.push(`start ${id}: no worker pid in status (${JSON.stringify(run.status?.worker_status ?? null)})`);
      }
      runs.push(run);
    };
    const startDeadline = performance.now() + START_BUDGET_MS;
    await Promise.all(
      Array.from({ length: Math.min(START_CONCURRENCY, n) }, async () => {
        while (nextIdx < ids.length && performance.now() < startDeadline) await startOne(ids[nextIdx++]);
      }),
    );
    if (nextIdx < ids.length) r.notes.push(`start budget of ${START_BUDGET_MS / 1000} s spent: ${ids.length - nextIdx} stream(s) not started (counted lost)`);
    runs.sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
    for (const run of runs) for (const p of run.pids) watch.add(p);
    watch.start();
    mainWatch.start();
    // Worker restarts show up as a new pid: follow them.
    let polling = false;
    statusTimer = setInterval(() => {
      if (polling) return; // a slow answer must not pile polls up
      polling = true;
      void Promise.all(
        runs.map(async (run) => {
          if (!run.sub) return;
          const pid = workerPid(await streamStatus(api, run.id));
          if (pid && !run.pids.includes(pid)) {
            run.pids.push(pid);
            watch.add(pid);
          }
        }),
      ).finally(() => (polling = false));
    }, 1_000);
    loop.enable();
    // All publish at once, start offsets spread over one segment.
    const segMs = (clip.segments[0]?.pts.length ?? 60) * (1000 / clip.fps);
    base = performance.now() + LEAD_MS;
    await Promise.all(flows);
    await Promise.all(
      runs.map(async (run, i) => {
        if (!run.sub || flowing) return;
        run.pub = await publish({ agent, target, channel: run.id, segments: clip.segments, t0: base + (i * segMs) / n, mode, fps: clip.fps });
      }),
    );
    await drain(
      runs.map((x) => x.sub),
      clip.pts,
      performance.now() + DRAIN_MS,
    );
    loop.disable();
    if (statusTimer) clearInterval(statusTimer);
    statusTimer = null;
    watch.stop();
    mainWatch.stop();
    r.load[1] = loadavg()[0];
    for (const run of runs) await run.sub?.stop();
    for (const run of runs) if (run.sub) run.finalStatus = await streamStatus(api, run.id);
    // Figures.
    const anonKb: number[] = [];
    let allOut = 0;
    const streamNotes: string[] = [];
    for (const [i, run] of runs.entries()) {
      const out = matchFrames(r, clip.pts, run.pub, run.sub, i);
      allOut += out;
      if (!run.sub) continue;
      const cpu = run.pids.reduce((a, p) => a + watch.cpuMs(p), 0);
      r.cpuMsPerFrame.push(out > 0 ? cpu / out : NaN);
      for (const p of run.pids) {
        const s = watch.samples.get(p);
        if (s) r.peakRssKb.push(s.hwmKb);
        if (s) anonKb.push(s.anonPeakKb);
      }
      if (Number.isFinite(run.sub.firstByteAt)) {
        r.startToFirstOutMs.push(run.sub.firstByteAt - run.startSentAt);
        if (run.pub) r.firstInToFirstOutMs.push(run.sub.firstByteAt - run.pub.firstWriteAt);
      }
      // One line per stream that did not simply run: worker exits, restarts, its state at the end.
      const fs = run.finalStatus;
      const what: string[] = [];
      if (run.pids.length > 1) what.push(`worker pid changed ${run.pids.join(' -> ')}`);
      for (const p of run.pids) {
        const g = watch.samples.get(p)?.goneAt ?? NaN;
        if (Number.isFinite(g)) what.push(`worker pid ${p} exited ${((g - base) / 1000).toFixed(1)} s after publishing began`);
      }
      if (what.length || (fs && fs.state !== 'running') || fs?.restart_count) {
        const endPid = workerPid(fs);
        what.push(
          `last output frame ${lastOutIdx(run.sub, clip.pts)} of ${clip.pts.length - 1}`,
          `at the end: state ${fs?.state ?? 'unknown'}${fs?.end_reason ? ` (${fs.end_reason})` : ''}, restart_count ${fs?.restart_count ?? 'n/a'}, ` +
            `worker pid ${endPid ?? 'none'}${endPid && !alive(endPid) ? ' (not alive)' : ''}`,
        );
        streamNotes.push(`${run.id}: ${what.join('; ')}`);
      }
    }
    // Many streams often say the same: keep the first few in full.
    const anon = anonKb.filter(Number.isFinite);
    if (anon.length) {
      r.notes.push(`peak private memory (RssAnon) per worker: ${(anon.reduce((x, y) => x + y, 0) / anon.length / 1024).toFixed(0)} MiB mean, ${(Math.max(...anon) / 1024).toFixed(0)} max (RSS less shared file pages)`);
    }
    for (const n of streamNotes.slice(0, 4)) r.notes.push(n);
    if (streamNotes.length > 4) r.notes.push(`... and ${streamNotes.length - 4} more stream(s) with such notes (${streamNotes.length} of ${n} in all)`);
    r.mainCpuMsPerFrame = mainWatch.cpuMs(node.pid) / Math.max(allOut, 1);
    r.mainPeakRssKb = mainWatch.samples.get(node.pid)?.hwmKb ?? NaN;
    const late = runs.flatMap((x) => x.pub?.lateMs ?? []);
    r.pubLateP99Ms = quantileOf(late, 0.99);
    r.loopDelayP99Ms = Math.max(0, loop.percentile(99) / 1e6 - LOOP_RES_MS);
    const drops = runs.reduce((a, x) => a + (x.finalStatus?.stats?.frames_dropped ?? 0), 0);
    if (drops) r.notes.push(`service-reported frames_dropped (sum): ${drops}`);
    const pe = summarizeErrors('publisher', runs.flatMap((x) => x.pub?.errors ?? []));
    if (pe) r.notes.push(pe);
    subscriberNotes(
      r,
      runs.map((x) => x.sub),
      base,
    );
    // Stop the streams (as a gateway does), then close the input channels.
    const stops = await Promise.all(runs.filter((x) => x.sub || x.answer?.status === 200).map((x) => stopStream(api, x.id)));
    const badStops = stops.filter((s) => s.status !== 200);
    if (badStops.length) r.notes.push(`DELETE /stream: ${badStops.length} answered ${badStops.map((s) => s.status || s.error).join(',')}`);
    const stopMs = stops.map((s) => s.ms);
    if (stopMs.length) r.notes.push(`DELETE /stream took ${quantileOf(stopMs, 0.5).toFixed(0)} ms median, ${Math.max(...stopMs).toFixed(0)} ms max`);
    for (const run of runs) await simpleRequest(agent, target, 'DELETE', `/${run.id}`);
  } catch (err) {
    r.notes.push(`case failed: ${(err as Error).stack?.split('\n').slice(0, 2).join(' ') ?? err}`);
  } finally {
    loop.disable();
    if (statusTimer) clearInterval(statusTimer);
    watch.stop();
    mainWatch.stop();
    for (const run of runs) await run.sub?.stop();
    // Streams that never got to start count as all lost.
    const counted = runs.length;
    if (r.framesIn < n * clip.pts.length) {
      const missing = n * clip.pts.length - r.framesIn;
      r.framesIn += missing;
      r.lost += missing;
      if (counted < n) r.notes.push(`${n - counted} stream(s) never started`);
    }
    agent.destroy();
    if (node) {
      // Worker pids still alive after DELETE /stream (they should be gone).
      await sleep(500);
      const stillAlive = runs.flatMap((x) => x.pids).filter(alive);
      if (stillAlive.length) r.notes.push(`worker pids still alive 0.5 s after DELETE /stream: ${stillAlive.join(',')}`);
      const s = await node.stop(20_000);
      if (s.killed.length) r.notes.push(`had to SIGKILL leftover pids ${s.killed.join(',')}`);
      if (s.exitCode !== 0) r.notes.push(`serve exited ${s.exitCode ?? s.signal} after SIGTERM (${s.stopMs.toFixed(0)} ms)`);
      if (node.problems.length) r.notes.push(`service log: ${summarizeLog(node.problems)}`);
    }
    r.wallMs = performance.now() - t0;
    r.benchCpuPct = benchCpu(cpu0, r.wallMs);
  }
  return r;
}
