// `npm run bench -- cluster`: three `streamfleet serve` nodes (real processes) on one nats-server,
// streams fed in real time through a gateway trickle server of the bench's own, every figure read
// from outside (the API and the output channels).
//   spread:    streams placed per node as streams are added through one node's API.
//   baseline:  a worker process killed (-9) on its node: the node restarts it (same-node recovery).
//   failover:  a node killed (-9): its streams run again on survivors (new node started after).
//   drain:     POST /node/{id}/drain: its streams handed to the others, the node exits.
// Times are from the fault to the first output byte of a segment written after it; gaps are the
// frames missing from the output around it (from the output's pts). Bounded: about two minutes.
import '../src/polyfill.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeClip } from '../test/helpers/clips.ts';
import { startNatsServer } from '../test/helpers/nats-server.ts';
import { largestGap, recordedFrames, recordOutput, type OutputRecord } from '../test/helpers/output-record.ts';
import { api } from '../test/helpers/runtime-node.ts';
import { startServe, type ServeProc } from '../test/helpers/serve-proc.ts';
import { publishClip } from '../test/helpers/stream-io.ts';
import { startServer } from '../test/helpers/trickle.ts';
import { alive } from './glass/procstat.ts';

const FPS = 15;
const GOP = FPS;
const STREAMS = 6;
const ROUNDS = Number(process.env.SF_BENCH_CLUSTER_ROUNDS ?? 3);
const INVERT = { '1': { class_type: 'LoadTensor', inputs: {} }, '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } }, '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } } };

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};
const max = (xs: number[]): number => (xs.length ? Math.max(...xs) : NaN);

async function until<T>(f: () => Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return undefined;
}

async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sf-bench-cluster-'));
  const ac = new AbortController();
  const nats = await startNatsServer();
  const gateway = await startServer();
  const nodes = new Map<string, ServeProc>();
  const outs = new Map<string, OutputRecord>();
  let serial = 0;
  const addNode = async (): Promise<ServeProc> => {
    const nodeId = `node-${++serial}`;
    const n = await startServe(mkdtempSync(join(dir, `${nodeId}-`)), { nodeId, bus: { natsUrl: nats.url }, actors: { maxStreams: 8 } }, ['--node-id', nodeId]);
    nodes.set(nodeId, n);
    return n;
  };
  const anyNode = (): ServeProc => [...nodes.values()][0]!;
  const ownerOf = async (id: string): Promise<string | undefined> => {
    const r = await api(anyNode().origin, 'GET', `/stream/${id}`);
    return r.status === 200 && r.json.state === 'running' ? (r.json.node_id as string) : undefined;
  };
  /** The running streams of each node, most first (once every stream runs somewhere). */
  const streamsByNode = async (ids: string[]): Promise<Map<string, string[]>> => {
    const counts = new Map<string, string[]>();
    for (const id of ids) {
      const n = (await until(() => ownerOf(id), 15_000))!;
      counts.set(n, [...(counts.get(n) ?? []), id]);
    }
    return new Map([...counts.entries()].sort((a, b) => b[1].length - a[1].length));
  };
  /** ms from `t0` to the first output segment of `id` that began after it. */
  const flowingAgain = async (id: string, t0: number): Promise<number> => {
    const out = outs.get(id)!;
    const t = await until(async () => out.at.find((x) => x > t0), 20_000);
    return t === undefined ? NaN : t - t0;
  };
  try {
    const clip = await makeClip(join(dir, 'clip.ts'), { seconds: 240, width: 128, height: 128, fps: FPS, gop: GOP });
    for (let i = 0; i < 3; i++) await addNode();
    await until(async () => ((await api(anyNode().origin, 'GET', '/nodes')).json.nodes?.length === 3 ? true : undefined), 15_000);
    const ids = Array.from({ length: STREAMS }, (_, i) => `c${i + 1}`);
    for (const id of ids) void publishClip(`${gateway.origin}/${id}-in`, clip, { signal: ac.signal, close: false }).catch(() => undefined);

    // ---- spread ----
    console.log('### spread (streams per node as streams are added through node-1)\n');
    console.log(`| streams | ${[...nodes.keys()].join(' | ')} |`);
    console.log(`|---|${[...nodes.keys()].map(() => '---').join('|')}|`);
    const entry = nodes.get('node-1')!;
    for (const [i, id] of ids.entries()) {
      outs.set(id, recordOutput(`${gateway.origin}/${id}-out`, join(dir, `${id}-out.ts`), { signal: ac.signal }));
      const r = await api(entry.origin, 'POST', '/stream/start', {
        gateway_request_id: id,
        subscribe_url: `${gateway.origin}/${id}-in`,
        publish_url: `${gateway.origin}/${id}-out`,
        params: { width: 128, height: 128, prompts: [INVERT] },
      });
      if (r.status !== 200) throw new Error(`start ${id}: ${r.status} ${JSON.stringify(r.json)}`);
      const per = new Map<string, number>();
      for (const s of Object.values((await api(entry.origin, 'GET', '/streams')).json.streams as Record<string, { node_id: string }>)) per.set(s.node_id, (per.get(s.node_id) ?? 0) + 1);
      console.log(`| ${i + 1} | ${[...nodes.keys()].map((n) => per.get(n) ?? 0).join(' | ')} |`);
    }
    await until(async () => ([...outs.values()].every((o) => o.seqs.length >= 2) ? true : undefined), 20_000);

    // ---- baseline: a worker process killed, its own node restarts it ----
    const restartMs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const id = ids[r % ids.length]!;
      const s = await api(anyNode().origin, 'GET', `/stream/${id}`);
      const pid = s.json.worker_status?.pid as number | null;
      if (!pid) continue;
      const t0 = Date.now();
      process.kill(pid, 'SIGKILL');
      restartMs.push(await flowingAgain(id, t0));
      await new Promise((res) => setTimeout(res, 1_500));
    }

    // ---- failover: a node killed; a new node joins after ----
    const failMs: number[] = [];
    const failGap: number[] = [];
    const failEvents: Array<{ ids: string[]; t0: number }> = [];
    for (let r = 0; r < ROUNDS; r++) {
      const counts = await streamsByNode(ids);
      const [victimId, its] = [...counts.entries()].filter(([n]) => n !== [...nodes.keys()][0])[0]!;
      const victim = nodes.get(victimId)!;
      const t0 = Date.now();
      process.kill(victim.pid, 'SIGKILL');
      const times = await Promise.all(its.map((id) => flowingAgain(id, t0)));
      failMs.push(...times);
      failEvents.push({ ids: its, t0 });
      nodes.delete(victimId);
      await victim.stop(5_000);
      await addNode();
      await new Promise((res) => setTimeout(res, 2_000));
    }

    // ---- drain ----
    const drainMs: number[] = [];
    const drainFlowMs: number[] = [];
    const drainEvents: Array<{ ids: string[]; t0: number }> = [];
    for (let r = 0; r < ROUNDS; r++) {
      const counts = await streamsByNode(ids);
      const [nodeId, its] = [...counts.entries()][0]!;
      const node = nodes.get(nodeId)!;
      const via = [...nodes.values()].find((n) => n !== node)!;
      const t0 = Date.now();
      const d = await api(via.origin, 'POST', `/node/${nodeId}/drain`);
      if (d.status !== 202) throw new Error(`drain ${nodeId}: ${d.status} ${JSON.stringify(d.json)}`);
      drainFlowMs.push(...(await Promise.all(its.map((id) => flowingAgain(id, t0)))));
      await until(async () => (!alive(node.pid) ? true : undefined), 40_000, 100);
      drainMs.push(Date.now() - t0);
      drainEvents.push({ ids: its, t0 });
      nodes.delete(nodeId);
      await node.stop(5_000);
      await addNode();
      await new Promise((res) => setTimeout(res, 2_000));
    }

    ac.abort();
    await Promise.all([...outs.values()].map((o) => o.done));
    const frames = new Map<string, Awaited<ReturnType<typeof recordedFrames>>>();
    for (const [id, o] of outs) frames.set(id, await recordedFrames(o));
    const gapsAround = (events: Array<{ ids: string[]; t0: number }>) =>
      events.flatMap((e) => e.ids.map((id) => largestGap(frames.get(id)!, FPS, e.t0 - 1_000, e.t0 + 10_000)));
    failGap.push(...gapsAround(failEvents));
    const drainGap = gapsAround(drainEvents);
    let backwards = 0;
    for (const f of frames.values()) for (let i = 1; i < f.length; i++) if (f[i]!.pts <= f[i - 1]!.pts) backwards++;

    const base = median(restartMs);
    console.log(`\n### faults (${ROUNDS} rounds each, ${STREAMS} streams of 128x128@${FPS}, 1 s segments; output pts going back: ${backwards})\n`);
    console.log('| case | output again: median ms | max ms | vs baseline (median) | output gap: median frames | max frames |');
    console.log('|---|---|---|---|---|---|');
    console.log(`| baseline: worker kill -9, same node | ${median(restartMs).toFixed(0)} | ${max(restartMs).toFixed(0)} | 1.00x | | |`);
    console.log(`| failover: node kill -9 | ${median(failMs).toFixed(0)} | ${max(failMs).toFixed(0)} | ${(median(failMs) / base).toFixed(2)}x | ${median(failGap)} | ${max(failGap)} |`);
    console.log(`| drain: POST /node/{id}/drain | ${median(drainFlowMs).toFixed(0)} | ${max(drainFlowMs).toFixed(0)} | ${(median(drainFlowMs) / base).toFixed(2)}x | ${median(drainGap)} | ${max(drainGap)} |`);
    console.log(`\ndrain: request -> node exited, median ${median(drainMs).toFixed(0)} ms, max ${max(drainMs).toFixed(0)} ms (segment = ${GOP} frames)`);
  } finally {
    ac.abort();
    for (const n of nodes.values()) await n.stop(10_000).catch(() => undefined);
    await gateway.server.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export default { name: 'cluster', run };
