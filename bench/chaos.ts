// `npm run chaos`: faults tried from outside on a real node, in turn, while 3 streams run live.
// A real nats-server (JetStream, its own store), `streamfleet serve --nats` as a child process with
// ephemeral ports and its embedded trickle server, three streams each fed by this process's own
// paced publisher (one 256x256@30 H.264 clip, a segment per second) and read back by its own
// stamping subscriber. The faults, one after the other:
//   kill -9 of s0's worker; NATS killed for 5 s; NATS killed for 60 s (SF_CHAOS_LONG_OUTAGE_S);
//   s1's publisher restarts its timestamps from the clip's start; a garbage segment on s2's input;
//   a reader that opens s0's output and never reads.
// Per fault it prints the frames each stream lost beyond the fault's own window (only the killed
// worker's stream has one: from the kill until its new worker's first output), the recovery time,
// and at the end whether every channel closed. Exits 1 when any figure breaks its bar.
import '../src/polyfill.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { startNatsServer, type NatsServerHandle } from '../test/helpers/nats-server.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { call, startStream, streamStatus, workerPid } from './glass/api.ts';
import { keepAliveAgent, parseBase, simpleRequest, sleep, type Target } from './glass/http.ts';
import { killAllChildren, startService, type ServiceNode } from './glass/procs.ts';
import { StampingSubscriber } from './glass/subscriber.ts';
import { cutSegments, scanTs, type ClipSegment } from './glass/ts.ts';
import type http from 'node:http';

const exec = promisify(execFile);
const FPS = 30;
const SIZE = 256;
const LONG_OUTAGE_S = Number(process.env.SF_CHAOS_LONG_OUTAGE_S || 60);
const SHORT_OUTAGE_S = 5;
/** Seconds of the run each fault gets after it starts (recovery and observation). */
const SETTLE_S = 6;
/** API calls during an outage must answer within this (issue 9). */
const API_BAR_MS = 1_000;
const STREAMS = ['s0', 's1', 's2'];

interface Fault {
  name: string;
  /** seconds from the first frame due */
  at: number;
  until: number;
  recoveryMs: number;
  notes: string[];
  ok: boolean;
}

async function makeClip(dir: string, seconds: number): Promise<Buffer> {
  const path = join(dir, 'chaos.ts');
  // prettier-ignore
  await exec('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${SIZE}x${SIZE}:rate=${FPS}:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', String(FPS), '-keyint_min', String(FPS), '-sc_threshold', '0', '-bf', '0',
    '-c:a', 'aac', '-b:a', '48k', '-f', 'mpegts', path]);
  return readFileSync(path);
}

// ---- live publisher: segments at their due times, seq continuing, garbage or a timestamp reset on cue

interface Feed {
  id: string;
  /** performance.now() when each pts of the clip was sent, for the pass through the clip that sent it */
  sent: Array<{ pts: number; at: number; pass: number }>;
  errors: string[];
  stop: () => void;
  done: Promise<void>;
}

function feed(agent: http.Agent, t: Target, id: string, segments: ClipSegment[], t0: number, cues: { garbageAtSeg?: number; restartAtSeg?: number }): Feed {
  const f: Feed = { id, sent: [], errors: [], stop: () => undefined, done: Promise.resolve() };
  let stopped = false;
  f.stop = () => void (stopped = true);
  const segMs = 1000;
  f.done = (async () => {
    let seq = 0;
    let pass = 0;
    let clipSeg = 0;
    for (let slot = 0; !stopped; slot++) {
      const due = t0 + slot * segMs;
      await sleep(due - performance.now());
      if (stopped) break;
      let body: Buffer[];
      let pts: number[] = [];
      if (cues.garbageAtSeg === slot) body = [Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 7919 + 13) & 0xff))];
      else {
        if (cues.restartAtSeg === slot) {
          clipSeg = 0;
          pass++;
        }
        if (clipSeg >= segments.length) break;
        const seg = segments[clipSeg++];
        body = seg.units.map((u) => u.bytes);
        pts = seg.pts;
      }
      const s = seq++;
      await new Promise<void>((resolve) => {
        const req = request({ agent, host: t.host, port: t.port, method: 'POST', path: `${t.base}/${id}/${s}`, headers: { 'content-type': 'video/MP2T' } }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode !== 200) f.errors.push(`POST ${s}: ${res.statusCode}`);
          });
        });
        req.on('error', (e) => f.errors.push(`POST ${s}: ${e.message}`));
        req.flushHeaders();
        void (async () => {
          for (let k = 0; k < body.length; k++) {
            await sleep(due + (k * segMs) / Math.max(1, body.length) - performance.now());
            req.write(body[k]);
            if (pts[k] !== undefined) f.sent.push({ pts: pts[k], at: performance.now(), pass });
          }
          req.end();
          resolve();
        })();
      });
    }
    await simpleRequest(agent, t, 'DELETE', `/${id}`);
  })();
  return f;
}

// ---- the run --------------------------------------------------------------------------------------

async function closedFor(agent: http.Agent, t: Target, ch: string): Promise<boolean> {
  const r = await simpleRequest(agent, t, 'GET', `/${ch}/next`, {}, 2_000);
  return r.status === 404 || (r.status === 200 && 'headers' in r && r.headers['lp-trickle-closed'] !== undefined);
}

export async function runChaos(): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), 'sf-chaos-'));
  const agent = keepAliveAgent();
  let node: ServiceNode | null = null;
  let nats: NatsServerHandle | null = null;
  const faults: Fault[] = [];
  const subs = new Map<string, StampingSubscriber>();
  const feeds: Feed[] = [];
  let hung: http.ClientRequest | null = null;
  const log = (s: string) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  try {
    // Timeline (s from the first frame due): warm-up, then one fault after another.
    const plan = {
      kill: 4,
      shortOutage: 4 + SETTLE_S,
      longOutage: 4 + 2 * SETTLE_S + SHORT_OUTAGE_S,
    };
    const tsRestart = plan.longOutage + LONG_OUTAGE_S + SETTLE_S;
    const garbage = tsRestart + SETTLE_S;
    const hang = garbage + SETTLE_S;
    const end = hang + SETTLE_S;
    const bytes = await makeClip(dir, end + 4);
    const segments = cutSegments(bytes, scanTs(bytes));
    log(`clip ${segments.length} segments; run ${end} s`);
    nats = await startNatsServer();
    liveNats = nats;
    node = await startService(dir, join(dir, 'ws'), 8, 'chaos', ['--nats', nats.url]);
    const t = parseBase(node.trickle);
    const api = node.api;
    for (const id of STREAMS) {
      for (const ch of [id, `${id}-out`, `${id}-events`]) await simpleRequest(agent, t, 'POST', `/${ch}`, { 'Expect-Content': ch.endsWith('events') ? 'application/json' : 'video/MP2T' });
      subs.set(id, new StampingSubscriber(agent, t, `${id}-out`, 0));
      const r = await startStream(api, { id, subscribeUrl: `${node.trickle}/${id}`, publishUrl: `${node.trickle}/${id}-out`, eventsUrl: `${node.trickle}/${id}-events`, width: SIZE, height: SIZE });
      if (r.status !== 200) throw new Error(`start ${id}: ${r.status} ${r.text.slice(0, 300)}`);
    }
    const pids0 = new Map<string, number | null>();
    for (const id of STREAMS) pids0.set(id, workerPid(await streamStatus(api, id)));
    const t0 = performance.now() + 300;
    const at = (s: number) => sleep(t0 + s * 1000 - performance.now());
    feeds.push(feed(agent, t, 's0', segments, t0, {}));
    feeds.push(feed(agent, t, 's1', segments, t0, { restartAtSeg: tsRestart }));
    feeds.push(feed(agent, t, 's2', segments, t0, { garbageAtSeg: garbage }));

    // 1. kill -9 of s0's worker
    await at(plan.kill);
    {
      const f: Fault = { name: 'kill -9 of s0 worker', at: plan.kill, until: plan.shortOutage, recoveryMs: NaN, notes: [], ok: true };
      const pid = workerPid(await streamStatus(api, 's0'));
      const killedAt = performance.now();
      if (pid) process.kill(pid, 'SIGKILL');
      const sub = subs.get('s0')!;
      const before = sub.frames.size;
      while (performance.now() < t0 + f.until * 1000) {
        const st = await streamStatus(api, 's0');
        if (sub.frames.size > before + 1 && workerPid(st) !== pid && st?.state === 'running') {
          f.recoveryMs = performance.now() - killedAt;
          break;
        }
        await sleep(50);
      }
      if (!Number.isFinite(f.recoveryMs)) f.ok = false;
      pids0.set('s0', workerPid(await streamStatus(api, 's0')));
      faults.push(f);
      log(`kill: recovered in ${f.recoveryMs.toFixed(0)} ms`);
    }
    // 2, 3. NATS outages
    for (const [name, start, secs] of [
      ['NATS down 5 s', plan.shortOutage, SHORT_OUTAGE_S],
      [`NATS down ${LONG_OUTAGE_S} s`, plan.longOutage, LONG_OUTAGE_S],
    ] as const) {
      await at(start);
      const f: Fault = { name, at: start, until: start + secs + SETTLE_S, recoveryMs: NaN, notes: [], ok: true };
      await nats.kill();
      await sleep(Math.min(1_500, secs * 500));
      const ready = await call('GET', `${api}/readyz`, undefined, 5_000);
      const status = await call('GET', `${api}/stream/s1`, undefined, 5_000);
      const start2 = await call('POST', `${api}/stream/start`, { subscribe_url: `${node.trickle}/x`, publish_url: `${node.trickle}/x-out`, gateway_request_id: 'during-outage', params: { width: SIZE, height: SIZE } }, 5_000);
      f.notes.push(`during: /readyz ${ready.status}, status ${status.status} in ${status.ms.toFixed(0)} ms, start ${start2.status} in ${start2.ms.toFixed(0)} ms`);
      if (ready.status !== 503 || status.status !== 503 || status.ms > API_BAR_MS || start2.status !== 503 || start2.ms > API_BAR_MS) f.ok = false;
      await at(start + secs);
      await nats.restart();
      const back = performance.now();
      while (performance.now() < t0 + f.until * 1000) {
        const r = await call('GET', `${api}/readyz`, undefined, 2_000);
        if (r.status === 200) {
          f.recoveryMs = performance.now() - back;
          break;
        }
        await sleep(100);
      }
      if (!Number.isFinite(f.recoveryMs)) f.ok = false;
      const after = await call('POST', `${api}/stream/start`, { subscribe_url: `${node.trickle}/y`, publish_url: `${node.trickle}/y-out`, gateway_request_id: 'after-outage', params: { width: SIZE, height: SIZE } }, 30_000);
      const list = await call('GET', `${api}/streams`, undefined, 5_000);
      const listed = Object.keys((list.json as { streams?: object } | null)?.streams ?? {});
      await call('DELETE', `${api}/stream/after-outage`, undefined, 30_000);
      f.notes.push(`after: start ${after.status}, /streams lists ${STREAMS.filter((s) => listed.includes(s)).length}/${STREAMS.length}`);
      if (after.status !== 200 || !STREAMS.every((s) => listed.includes(s))) f.ok = false;
      for (const id of STREAMS) {
        const pid = workerPid(await streamStatus(api, id));
        if (pid !== pids0.get(id)) {
          f.notes.push(`${id}: worker restarted (${pids0.get(id)} -> ${pid})`);
          f.ok = false;
          pids0.set(id, pid);
        }
      }
      faults.push(f);
      log(`${name}: ${f.notes.join('; ')}`);
    }
    // 4. s1's publisher restarts its timestamps (the feed does it at its cue)
    await at(tsRestart);
    faults.push({ name: 's1 publisher restarts timestamps', at: tsRestart, until: garbage, recoveryMs: NaN, notes: [], ok: true });
    // 5. a garbage segment on s2's input (the feed sends it at its cue)
    await at(garbage);
    faults.push({ name: 'garbage segment on s2 input', at: garbage, until: hang, recoveryMs: NaN, notes: [], ok: true });
    // 6. a reader that opens s0's output and never reads
    await at(hang);
    {
      const next = await simpleRequest(agent, t, 'GET', '/s0-out/next', {}, 2_000);
      const seq = 'body' in next ? Number(next.body.trim()) : 0;
      hung = request({ host: t.host, port: t.port, method: 'GET', path: `${t.base}/s0-out/${seq}` }, (res) => res.pause());
      hung.on('error', () => undefined);
      hung.end();
      faults.push({ name: 'a reader hangs on s0 output', at: hang, until: end, recoveryMs: NaN, notes: [], ok: true });
    }
    await at(end);
    for (const f of feeds) f.stop();
    await Promise.all(feeds.map((f) => f.done));
    // The inputs are closed: every stream ends by itself; then every channel must be closed.
    const endDeadline = performance.now() + 20_000;
    for (const id of STREAMS) {
      while (performance.now() < endDeadline) {
        const st = await streamStatus(api, id);
        if (!st || st.state === 'terminated' || st.state === 'failed') break;
        await sleep(100);
      }
    }
    await sleep(1_000);
    const closed: string[] = [];
    const open: string[] = [];
    for (const id of STREAMS) for (const ch of [`${id}-out`, `${id}-events`]) ((await closedFor(agent, t, ch)) ? closed : open).push(ch);
    for (const s of subs.values()) await s.stop();

    // ---- figures ----------------------------------------------------------------------------------
    const killFault = faults[0];
    const killWindow: [number, number] = [t0 + killFault.at * 1000, t0 + killFault.at * 1000 + (Number.isFinite(killFault.recoveryMs) ? killFault.recoveryMs : SETTLE_S * 1000)];
    const phaseOf = (sentAt: number) => faults.findIndex((f) => sentAt >= t0 + f.at * 1000 && sentAt < t0 + f.until * 1000);
    const lost = faults.map(() => new Map<string, number>(STREAMS.map((s) => [s, 0])));
    for (const fd of feeds) {
      const sub = subs.get(fd.id)!;
      const outPts = [...sub.frames.keys()].sort((a, b) => a - b);
      const outSet = new Set(outPts);
      // After s1's timestamp restart its output is rebased by one constant offset: the first output
      // pts past the last one before the restart belongs to the restart's first frame.
      const firstPass1 = fd.sent.find((x) => x.pass === 1);
      const lastPass0 = [...fd.sent].reverse().find((x) => x.pass === 0 && outSet.has(x.pts));
      const rebasedStart = lastPass0 ? outPts.find((p) => p > lastPass0.pts) : undefined;
      const offset = firstPass1 && rebasedStart !== undefined ? rebasedStart - firstPass1.pts : 0;
      for (const x of fd.sent) {
        const p = phaseOf(x.at);
        if (p < 0) continue;
        const outP = x.pass === 1 ? x.pts + offset : x.pts;
        if (outSet.has(outP)) continue;
        if (fd.id === 's0' && x.at >= killWindow[0] && x.at <= killWindow[1]) continue;
        lost[p].set(fd.id, (lost[p].get(fd.id) ?? 0) + 1);
      }
      for (const e of fd.errors.slice(0, 3)) faults[faults.length - 1].notes.push(`${fd.id} publisher: ${e}`);
    }
    for (const [i, f] of faults.entries()) if ([...lost[i].values()].some((n) => n > 0)) f.ok = false;

    // The longest silence of each stream's output while a fault's phase lasted (what a viewer sees).
    const gapMs = faults.map((f) =>
      STREAMS.map((id) => {
        const from = t0 + f.at * 1000;
        const to = t0 + f.until * 1000;
        const at = [...subs.get(id)!.frames.values()].map((x) => x.lastByteAt).filter((x) => x >= from && x < to).sort((x, y) => x - y);
        let g = at.length ? at[0] - from : to - from;
        for (let i = 1; i < at.length; i++) g = Math.max(g, at[i] - at[i - 1]);
        return g;
      }),
    );
    console.log(`3 streams ${SIZE}x${SIZE}@${FPS}, one 1 s segment each per second, invert prompt; serve --nats (nats-server ${nats.url}); faults in turn:\n`);
    console.log('| fault | at s | frames lost beyond its window (s0 / s1 / s2) | longest output gap ms (s0 / s1 / s2) | recovery ms | notes | ok |');
    console.log('|---|---:|---|---|---:|---|---|');
    for (const [i, f] of faults.entries()) {
      const l = STREAMS.map((s) => lost[i].get(s) ?? 0).join(' / ');
      const g = gapMs[i].map((x) => x.toFixed(0)).join(' / ');
      console.log(`| ${f.name} | ${f.at} | ${l} | ${g} | ${Number.isFinite(f.recoveryMs) ? f.recoveryMs.toFixed(0) : 'n/a'} | ${f.notes.join('<br>').replace(/\|/g, '\\|')} | ${f.ok ? 'yes' : '**no**'} |`);
    }
    const allClosed = open.length === 0;
    console.log(`\nChannels closed at the end: ${closed.length}/${closed.length + open.length}${open.length ? ` (still open: ${open.join(', ')})` : ''}.`);
    const totals = STREAMS.map((s) => `${s}: ${subs.get(s)!.frames.size} out of ${feeds.find((f) => f.id === s)!.sent.length} sent`).join(', ');
    console.log(`Frames: ${totals} (s0's kill window excluded above, not here).`);
    if (node.problems.length) console.log(`Service warnings/errors logged: ${node.problems.length} (log: ${node.logPath}).`);
    return faults.every((f) => f.ok) && allClosed;
  } finally {
    hung?.destroy();
    for (const f of feeds) f.stop();
    for (const s of subs.values()) await s.stop().catch(() => undefined);
    await node?.stop().catch(() => undefined);
    await nats?.stop();
    agent.destroy();
    if (process.env.SF_CHAOS_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
    else console.log(`(kept ${dir})`);
  }
}

let liveNats: NatsServerHandle | null = null;
const onSignal = () => {
  killAllChildren();
  if (liveNats) process.kill(liveNats.pid, 'SIGKILL');
  process.exit(130);
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);
const ok = await runChaos();
console.log(ok ? '\nchaos: every fault held' : '\nchaos: FAILED (see the table)');
process.exit(ok ? 0 : 1);
