// Three `streamfleet serve` nodes (real processes) on one nats-server, a gateway trickle server of
// the test's own, six streams fed in real time. In one run, as an operator would see it from outside:
// placement spreads the streams by capacity and every route answers for every stream from every node;
// kill -9 of a node: its streams run again on survivors within 5 s with their latest prompts, the
// others lose no frame; SIGSTOP of a node beyond the lease: its streams are taken over, it stops its
// copies on SIGCONT, and no output channel gets segments from two owners (seqs, pts); a drain hands a
// node's streams to the others with an output gap of at most one segment, and the node exits.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeClip } from './helpers/clips.ts';
import { startNatsServer, type NatsServerHandle } from './helpers/nats-server.ts';
import { api } from './helpers/runtime-node.ts';
import { startServe, type ServeProc } from './helpers/serve-proc.ts';
import { publishClip } from './helpers/stream-io.ts';
import { largestGap, recordedFrames, recordOutput, type OutputRecord } from './helpers/output-record.ts';
import { startServer, type Running } from './helpers/trickle.ts';
import { alive } from '../bench/glass/procstat.ts';
const cmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
};

const FPS = 15;
const GOP = FPS; // one segment a second
const CLIP_S = 75;
const IDS = ['s1', 's2', 's3', 's4', 's5', 's6'];
const INVERT = { '1': { class_type: 'LoadTensor', inputs: {} }, '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } }, '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } } };

let dir: string;
let nats: NatsServerHandle;
let gateway: Running;
const nodes = new Map<string, ServeProc>();
const ac = new AbortController();
const outs = new Map<string, OutputRecord>();
let clip: string;

function collect(id: string): OutputRecord {
  return recordOutput(`${gateway.origin}/${id}-out`, join(dir, `${id}-out.ts`), { signal: ac.signal });
}

async function statusVia(node: ServeProc, id: string): Promise<any> {
  const r = await api(node.origin, 'GET', `/stream/${id}`);
  return r.status === 200 ? r.json : undefined;
}

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const ownerOf = async (via: ServeProc, id: string): Promise<string | undefined> => (await statusVia(via, id))?.node_id;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sf-cluster-'));
  clip = await makeClip(join(dir, 'clip.ts'), { seconds: CLIP_S, width: 128, height: 128, fps: FPS, gop: GOP });
  nats = await startNatsServer();
  gateway = await startServer();
  await Promise.all(
    ['node-a', 'node-b', 'node-c'].map(async (nodeId) => {
      const nodeDir = mkdtempSync(join(dir, `${nodeId}-`));
      const n = await startServe(nodeDir, { nodeId, bus: { natsUrl: nats.url }, actors: { maxStreams: 8 } }, ['--node-id', nodeId]);
      nodes.set(nodeId, n);
    }),
  );
  // Every node sees the others before the first start.
  const a = nodes.get('node-a')!;
  await until('3 nodes seen', async () => ((await api(a.origin, 'GET', '/nodes')).json.nodes?.length === 3 ? true : undefined), 15_000);
  for (const id of IDS) void publishClip(`${gateway.origin}/${id}-in`, clip, { signal: ac.signal, close: false }).catch(() => undefined);
}, 120_000);

afterAll(async () => {
  ac.abort();
  await Promise.all([...outs.values()].map((o) => o.done));
  const leftovers: number[] = [];
  for (const n of nodes.values()) {
    try {
      process.kill(n.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
    const { orphans } = await n.stop(20_000);
    leftovers.push(...orphans);
  }
  await gateway?.server.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
  expect(leftovers).toEqual([]);
}, 120_000);

describe('a cluster of three serve nodes on NATS', () => {
  it('places, fails over, fences and drains streams, every route answering from every node', async () => {
    const a = nodes.get('node-a')!;
    const all = [...nodes.values()];

    // ---- 1. six streams through node-a's API spread over the nodes by capacity ---------------------
    for (const id of IDS) {
      outs.set(id, collect(id));
      const r = await api(a.origin, 'POST', '/stream/start', {
        gateway_request_id: id,
        subscribe_url: `${gateway.origin}/${id}-in`,
        publish_url: `${gateway.origin}/${id}-out`,
        params: { width: 128, height: 128, prompts: [INVERT] },
      });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
    const placed = new Map<string, string>();
    for (const id of IDS) placed.set(id, (await ownerOf(a, id))!);
    const perNode = new Map<string, string[]>();
    for (const [id, n] of placed) perNode.set(n, [...(perNode.get(n) ?? []), id]);
    const nodesList = (await api(a.origin, 'GET', '/nodes')).json.nodes as Array<{ node_id: string; capacity: number }>;
    const totalCap = nodesList.reduce((s, n) => s + n.capacity, 0);
    for (const n of nodesList) {
      const share = (IDS.length * n.capacity) / totalCap;
      expect(perNode.get(n.node_id)?.length ?? 0, `${n.node_id}: ${JSON.stringify([...perNode])}`).toBeLessThanOrEqual(Math.ceil(share) + 1);
    }
    expect(perNode.size).toBe(3);
    // Every route, every stream, every node.
    for (const via of all) {
      const list = await api(via.origin, 'GET', '/streams');
      expect(Object.keys(list.json.streams).sort()).toEqual(IDS);
      for (const id of IDS) expect(list.json.streams[id].node_id).toBe(placed.get(id));
      const gs = await api(via.origin, 'GET', '/stream/status');
      expect(gs.json.stream_count).toBe(IDS.length);
      for (const id of IDS) {
        for (const path of [`/stream/${id}`, `/stream/${id}/status`]) {
          const r = await api(via.origin, 'GET', path);
          expect(r.status).toBe(200);
          expect(r.json.state).toBe('running');
        }
        expect((await api(via.origin, 'GET', `/stream/${id}/worker`)).json.request_id).toBe(id);
        expect((await api(via.origin, 'GET', `/stream/${id}/workspace-info`)).status).toBe(200);
      }
    }
    for (const via of all) expect((await api(via.origin, 'GET', '/readyz')).status).toBe(200);

    // Everyone's output is flowing.
    await until('output on every stream', async () => ([...outs.values()].every((o) => o.seqs.length >= 2) ? true : undefined), 20_000);

    // ---- 2. kill -9 of a node with 2 streams (not the one whose API we use) -----------------------
    const victimId = [...perNode.entries()].find(([n, ids]) => n !== 'node-a' && ids.length === 2)?.[0];
    expect(victimId, JSON.stringify([...perNode])).toBeDefined();
    const victim = nodes.get(victimId!)!;
    const victimStreams = perNode.get(victimId!)!;
    // The latest prompts of one of them (through another node's API): a survivor must run these.
    const updated = { '1': { class_type: 'LoadTensor', inputs: {} }, '2': { class_type: 'SaveTensor', inputs: { images: ['1', 0] } } };
    const upd = await api(a.origin, 'POST', `/stream/${victimStreams[0]}/update-prompts`, { prompts: [updated] });
    expect(upd.status, JSON.stringify(upd.json)).toBe(200);
    const promptIdsBefore = (await statusVia(a, victimStreams[0]))!.prompt_ids;
    // Prompt ids are content hashes: a different id is a different graph.
    expect(promptIdsBefore).not.toEqual((await statusVia(a, victimStreams[1]))!.prompt_ids);
    const killedAt = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    const recovered: Record<string, number> = {};
    await Promise.all(
      victimStreams.map(async (id) => {
        const out = outs.get(id)!;
        const seqsBefore = out.seqs.length;
        await until(`${id} running on a survivor`, async () => {
          const s = await statusVia(a, id);
          return s && s.node_id !== victimId && s.state === 'running' ? true : undefined;
        }, 15_000);
        // A segment that begins after the kill can only be the new owner's (the old one's last began before).
        const firstAfter = await until(`${id} output again`, async () => out.at.find((t, i) => i >= seqsBefore - 1 && t > killedAt), 15_000, 50);
        recovered[id] = firstAfter - killedAt;
      }),
    );
    for (const [id, ms] of Object.entries(recovered)) expect(ms, `${id} flowed again after ${ms} ms`).toBeLessThanOrEqual(5_000);
    const after = (await statusVia(a, victimStreams[0]))!;
    expect(after.prompt_ids).toEqual(promptIdsBefore);
    nodes.delete(victimId!);
    await victim.stop(5_000);

    // ---- 3. SIGSTOP a node beyond the lease, then SIGCONT ----------------------------------------
    const survivors = [...nodes.keys()];
    const frozenId = survivors.find((n) => n !== 'node-a')!;
    const frozen = nodes.get(frozenId)!;
    const stopAt = Date.now();
    const frozenStreams: string[] = [];
    for (const id of IDS) if ((await ownerOf(a, id)) === frozenId) frozenStreams.push(id);
    expect(frozenStreams.length).toBeGreaterThan(0);
    process.kill(frozen.pid, 'SIGSTOP');
    await until('frozen node streams taken over', async () => {
      for (const id of frozenStreams) {
        const s = await statusVia(a, id);
        if (!s || s.node_id === frozenId || s.state !== 'running') return undefined;
      }
      return true;
    }, 20_000);
    await new Promise((r) => setTimeout(r, 2_000));
    process.kill(frozen.pid, 'SIGCONT');
    // It stops its copies: it runs none of them, and its worker processes end.
    await until('the resumed node holds no copies', async () => {
      const list = await api(frozen.origin, 'GET', '/streams');
      return Object.values(list.json.streams as Record<string, any>).every((s) => s.node_id !== frozenId) ? true : undefined;
    }, 15_000);
    const workerProcs = (n: ServeProc) => [...n.childrenSeen].filter((p) => alive(p) && cmdline(p).includes('/streamfleet/worker-'));
    expect(frozen.childrenSeen.size).toBeGreaterThan(0);
    await until('its worker processes end', async () => (workerProcs(frozen).length === 0 ? true : undefined), 15_000);

    // ---- 4. drain node-a (2+ streams): they keep flowing elsewhere, node-a exits ------------------
    const c = nodes.get(frozenId)!;
    const drainedStreams: string[] = [];
    for (const id of IDS) if ((await ownerOf(c, id)) === 'node-a') drainedStreams.push(id);
    expect(drainedStreams.length).toBeGreaterThanOrEqual(2);
    const drainAt = Date.now();
    const dr = await api(c.origin, 'POST', '/node/node-a/drain');
    expect(dr.status, JSON.stringify(dr.json)).toBe(202);
    await until('node-a drained and gone', async () => (!alive(a.pid) ? true : undefined), 40_000, 200);
    for (const id of drainedStreams) {
      const s = await statusVia(c, id);
      expect(s?.node_id).toBe(frozenId);
      expect(s?.state).toBe('running');
    }
    const drainedSpan = Date.now() - drainAt;
    const { orphans } = await a.stop(5_000);
    expect(orphans).toEqual([]);
    nodes.delete('node-a');
    // Let output flow a while after the moves, then stop everything and read the outputs.
    await new Promise((r) => setTimeout(r, 3_000));
    ac.abort();
    await Promise.all([...outs.values()].map((o) => o.done));

    // ---- every output channel: one writer at a time -----------------------------------------------
    const gaps: Record<string, { kill?: number; drain?: number }> = {};
    for (const id of IDS) {
      const out = outs.get(id)!;
      // Segments from two owners would repeat a seq or go back.
      for (let i = 1; i < out.seqs.length; i++) expect(out.seqs[i], `${id} seqs ${out.seqs.join(',')}`).toBeGreaterThan(out.seqs[i - 1]!);
      const frames = await recordedFrames(out);
      expect(frames.length).toBeGreaterThan(FPS * 5);
      for (let i = 1; i < frames.length; i++) expect(frames[i]!.pts, `${id} frame ${i}: pts strictly increasing`).toBeGreaterThan(frames[i - 1]!.pts);
      gaps[id] = {};
      // The kill touched only the victim's streams: every other one lost no frame from its second
      // segment (the first may begin mid-stream) until the SIGSTOP.
      if (!victimStreams.includes(id)) {
        gaps[id]!.kill = largestGap(frames, FPS, out.at[1] ?? 0, stopAt);
        expect(gaps[id]!.kill, `${id}: frames lost while another node was killed`).toBe(0);
      }
      // A drained stream's output gap: at most one segment (GOP frames).
      if (drainedStreams.includes(id)) {
        gaps[id]!.drain = largestGap(frames, FPS, drainAt - 1_000, Infinity);
        expect(gaps[id]!.drain, `${id} drain gap in frames`).toBeLessThanOrEqual(GOP);
      }
    }
    console.log(`cluster: failover output again after ${JSON.stringify(recovered)} ms; drain took ${drainedSpan} ms; gaps in frames ${JSON.stringify(gaps)}`);
  }, 240_000);
});
