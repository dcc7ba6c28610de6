// Issue 11, acceptance 5: kill -9 of one of the 3 nats-servers loses nothing. A real 3-server
// JetStream cluster from infra/nats/cluster, the buckets with 3 replicas, two nodes on all three URLs,
// one stream started through each with a live publisher and a subscriber counting output frames.
// The server node-a is connected to is SIGKILLed: every stream keeps running and its output keeps
// coming, both APIs answer every request during and after, and every KV record is still there.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuckets } from '../infra/nats/ensure-buckets.ts';
import { TrickleSubscriber } from '../src/transport/trickle/index.ts';
import { makeClip, tempDir } from './helpers/clips.ts';
import { monitorJson, startCluster, type ConfServer } from './helpers/nats-conf.ts';
import { api, startBody, startNode, waitStatus, type TestNode } from './helpers/runtime-node.ts';
import { publishClip } from './helpers/stream-io.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const conf = (n: number): string => readFileSync(join(root, 'infra', 'nats', 'cluster', `nats-${n}.conf`), 'utf8');

/**
 * Video frames in one MPEG-TS segment: PES packets begun (payload_unit_start with a 00 00 01 start
 * code; PSI sections start with a pointer field instead). The clips have no audio, so every PES is a
 * video frame.
 */
function framesIn(ts: Uint8Array): number {
  let n = 0;
  for (let off = 0; off + 188 <= ts.length; off += 188) {
    if (ts[off] !== 0x47 || !(ts[off + 1] & 0x40)) continue;
    const afc = (ts[off + 3] >> 4) & 3;
    if (!(afc & 1)) continue;
    const p = off + 4 + (afc & 2 ? 1 + ts[off + 4] : 0);
    if (p + 3 <= off + 188 && ts[p] === 0 && ts[p + 1] === 0 && ts[p + 2] === 1) n++;
  }
  return n;
}

interface Counter {
  frames: number;
  segments: number;
  done: Promise<void>;
}

/** Reads `url` from seq 0 until `signal` aborts, counting the frames of every complete segment. */
function countOutput(url: string, signal: AbortSignal): Counter {
  const c: Counter = { frames: 0, segments: 0, done: Promise.resolve() };
  const sub = new TrickleSubscriber(url, { start: 0, waitForChannel: 60_000, signal });
  c.done = (async () => {
    try {
      for await (const seg of sub) {
        const parts: Uint8Array[] = [];
        try {
          for await (const chunk of seg.body) parts.push(chunk);
        } catch {
          // cut short: count what arrived
        }
        c.frames += framesIn(Buffer.concat(parts));
        c.segments++;
      }
    } catch {
      // aborted
    }
  })();
  return c;
}

let dir: ReturnType<typeof tempDir>;
let clip: string;
let servers: ConfServer[] = [];
const nodes: TestNode[] = [];
const conns: NatsConnection[] = [];
const abort = new AbortController();
const counters: Counter[] = [];

beforeAll(async () => {
  dir = tempDir('sf-cluster-nats-');
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 60, fps: 30, gop: 30, width: 160, height: 120 });
  servers = await startCluster([1, 2, 3].map(conf));
});
afterAll(async () => {
  abort.abort();
  await Promise.all(counters.map((c) => c.done));
  await Promise.all(conns.map((nc) => nc.close().catch(() => undefined)));
  const orphans: number[] = [];
  for (const n of nodes.splice(0)) orphans.push(...(await n.close()).orphans);
  await Promise.all(servers.map((s) => s.stop()));
  dir.remove();
  expect(orphans).toEqual([]);
});

interface Connz {
  connections?: Array<{ name?: string }>;
}

describe('a 3-server NATS cluster loses one server', () => {
  it('kill -9 of the server a node uses: streams keep running and flowing, the API answers, no record is lost', async () => {
    const natsUrl = servers.map((s) => s.url).join(',');
    const reports = await ensureBuckets(natsUrl.split(','), { replicas: 3, waitMs: 30_000 });
    expect(reports.map((r) => r.replicas)).toEqual([3, 3]);

    const a = await startNode({ nodeId: 'node-a', bus: { natsUrl } });
    nodes.push(a);
    const b = await startNode({ nodeId: 'node-b', bus: { natsUrl } });
    nodes.push(b);

    const streams = [
      { id: 'keep-a', via: a },
      { id: 'keep-b', via: b },
    ];
    for (const s of streams) {
      void publishClip(`${s.via.trickleBase}/${s.id}-in`, clip, { signal: abort.signal }).catch(() => undefined);
      counters.push(countOutput(`${s.via.trickleBase}/${s.id}-out`, abort.signal));
      const r = await api(s.via.origin, 'POST', '/stream/start', startBody(s.via, { id: s.id }));
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
    for (const s of streams) await waitStatus(a, s.id, (st) => st.state === 'running' && st.frame_count > 0, 30_000);
    // Output flows on both before the loss.
    for (const c of counters) await expect.poll(() => c.frames, { timeout: 30_000, interval: 100 }).toBeGreaterThan(0);

    const bucket = async (node: TestNode, name: string) => (await node.bus.kv(name)).keys().then((k) => k.sort());
    const before = { streams: await bucket(a, a.config.bus.streamsBucket), nodes: await bucket(a, a.config.bus.nodesBucket) };
    expect(before.streams).toEqual(['keep-a', 'keep-b']);
    expect(before.nodes).toEqual(['node-a', 'node-b']);

    // The server node-a's own connection is on (its connection name is its node id).
    const onServer = await Promise.all(servers.map((s) => monitorJson<Connz>(s, '/connz?limit=1024')));
    const victim = onServer.findIndex((c) => (c.connections ?? []).some((x) => x.name === 'node-a'));
    expect(victim).toBeGreaterThanOrEqual(0);
    const survivors = servers.filter((_s, i) => i !== victim);

    // During and after the loss every request to either node is answered, and every stream stays
    // running. A node whose own connection was on the lost server answers 503 BUS_UNAVAILABLE ("try
    // again shortly") for the moment its client takes to reconnect to a survivor (src/actors/bus-guard.ts);
    // that moment is bounded (the first 2 s) and after it every answer is 200.
    const answers: Array<{ t: number; ms: number; what: string; status: number; code?: string }> = [];
    const states = new Set<string>();
    const lists: string[] = [];
    let tKill = 0;
    const ask = async (node: TestNode, path: string): Promise<any> => {
      const t0 = performance.now();
      const r = await api(node.origin, 'GET', path);
      answers.push({ t: t0 - tKill, ms: performance.now() - t0, what: `${node.config.nodeId} ${path}`, status: r.status, code: r.json?.code });
      return r.status === 200 ? r.json : undefined;
    };
    const pollApi = (): Promise<unknown> =>
      Promise.all(
        [a, b].map(async (node) => {
          const list = await ask(node, '/streams');
          if (list) lists.push(Object.keys(list.streams).sort().join(','));
          for (const s of streams) {
            const st = await ask(node, `/stream/${s.id}`);
            if (st) states.add(st.state);
          }
        }),
      );
    const framesAtKill = counters.map((c) => c.frames);
    tKill = performance.now();
    await servers[victim].kill();
    // Until every stream has sent at least 3 s of video after the kill (90 frames), and for 8 s at least.
    const enough = (): boolean => counters.every((c, i) => c.frames - framesAtKill[i] >= 90);
    const deadline = Date.now() + 20_000;
    while ((!enough() || performance.now() - tKill < 8_000) && Date.now() < deadline) {
      await pollApi();
      await new Promise((r) => setTimeout(r, 100));
    }
    const not200 = answers.filter((x) => x.status !== 200);
    const slow = answers.filter((x) => x.ms > 500);
    process.stderr.write(`cluster-nats-failure: ${answers.length} answers, slowest ${Math.round(Math.max(...answers.map((x) => x.ms)))} ms; over 500 ms: ${JSON.stringify(slow)}\n`);
    if (not200.length) process.stderr.write(`cluster-nats-failure: not 200 after the kill: ${JSON.stringify(not200)}\n`);
    // While node-a's client moves to another server its bus is down for a moment: 503 BUS_UNAVAILABLE
    // from node-a is the documented answer then. A stream that does not answer for that moment is
    // not "not found" (its record is active): node-b answers what node-a last broadcast.
    const transient = (x: (typeof answers)[number]): boolean => x.t <= 2_000 && x.status === 503 && x.code === 'BUS_UNAVAILABLE';
    expect(not200.filter((x) => !transient(x))).toEqual([]);
    // GET /streams answers from the cluster view (the nodes' broadcasts): the whole cluster, every time.
    expect(lists.filter((l) => l !== 'keep-a,keep-b')).toEqual([]);
    expect(answers.filter((x) => x.t > 2_000).length).toBeGreaterThanOrEqual(6);
    expect([...states]).toEqual(['running']);
    expect(counters.map((c, i) => c.frames - framesAtKill[i] >= 90), JSON.stringify({ framesAtKill, now: counters.map((c) => c.frames) })).toEqual([true, true]);

    for (const node of [a, b]) for (const s of streams) expect((await api(node.origin, 'GET', `/stream/${s.id}`)).json.state).toBe('running');

    // node-a moved to a surviving server.
    const after = await Promise.all(survivors.map((s) => monitorJson<Connz>(s, '/connz?limit=1024')));
    expect(after.some((c) => (c.connections ?? []).some((x) => x.name === 'node-a'))).toBe(true);

    // No record lost: every key of both buckets is there and readable, through both nodes and through a
    // fresh connection to each surviving server. Reads (get) answer at once. Listing keys makes an
    // ephemeral consumer, which nats-server before 2.12 may place on the lost server (nats-server#3791,
    // fixed by #7165): such a listing times out (5 s) and is asked again; nothing else says when a
    // listing will be placed on a live server.
    const retried = async <T>(f: () => Promise<T>): Promise<T> => {
      for (const end = Date.now() + 30_000; ; ) {
        try {
          return await f();
        } catch (err) {
          if (Date.now() > end) throw err;
        }
      }
    };
    const t0 = performance.now();
    expect({ streams: await retried(() => bucket(a, a.config.bus.streamsBucket)), nodes: await retried(() => bucket(b, b.config.bus.nodesBucket)) }).toEqual(before);
    process.stderr.write(`cluster-nats-failure: both buckets listed in ${Math.round(performance.now() - t0)} ms (${Math.round(performance.now() - tKill)} ms after the kill)\n`);
    for (const [node, name, keys] of [
      [a, a.config.bus.streamsBucket, before.streams],
      [b, b.config.bus.streamsBucket, before.streams],
      [a, a.config.bus.nodesBucket, before.nodes],
      [b, b.config.bus.nodesBucket, before.nodes],
    ] as const) {
      const kv = await node.bus.kv(name);
      for (const k of keys) expect((await kv.get(k))?.json(), `${name}/${k} via ${node.config.nodeId}`).toBeTruthy();
    }
    for (const s of survivors) {
      const nc = await connect({ servers: s.url });
      conns.push(nc);
      const kvm = new Kvm(nc);
      for (const [name, keys] of [
        [a.config.bus.streamsBucket, before.streams],
        [a.config.bus.nodesBucket, before.nodes],
      ] as const) {
        const kv = await kvm.open(name);
        expect((await kv.status()).replicas).toBe(3);
        for (const k of keys) {
          const e = await kv.get(k);
          expect(e?.operation, `${name}/${k} via ${s.url}`).toBe('PUT');
          expect(() => e!.json()).not.toThrow();
        }
      }
    }
  }, 90_000);
});
