// infra/'s NATS configs on real nats-servers (each file's own text, with ports, store dirs and route
// addresses rewritten to ephemeral ones in a temp copy), and infra/nats/ensure-buckets.ts against them.
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { EnsureBucketsError, ensureBuckets } from '../infra/nats/ensure-buckets.ts';
import { defaultConfig } from '../src/config.ts';
import { connectNatsBus } from '../src/transport/nats/nats-bus.ts';
import { isPortTaken, NatsConfError } from '../src/cli/nats-cluster.ts';
import { startCluster, startFromConf, untilMonitor, type ConfServer, type Jsz } from './helpers/nats-conf.ts';
import { freePort } from './helpers/ports.ts';

const infra = (p: string): string => readFileSync(new URL(`../infra/${p}`, import.meta.url), 'utf8');

const conns: NatsConnection[] = [];
async function client(server: ConfServer): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  conns.push(nc);
  return nc;
}
afterAll(async () => {
  await Promise.all(conns.map((nc) => nc.close().catch(() => undefined)));
});

describe('infra/nats/single.conf', () => {
  let server: ConfServer;
  beforeAll(async () => {
    server = await startFromConf(infra('nats/single.conf'), { client: await freePort(), monitor: await freePort() });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('runs one server with JetStream on its store dir and a monitoring port', async () => {
    const jsz = await untilMonitor<Jsz>(server, '/jsz', (b) => b.config !== undefined);
    expect(jsz.config!.store_dir).toMatch(/sf-infra-nats-.*\/store\/jetstream$/);
    expect(jsz.meta_cluster).toBeUndefined();
  });

  it('holds a KV bucket: a value put through one connection is read through another', async () => {
    const a = await client(server);
    const kv = await new Kvm(a).create('infra_single');
    const rev = await kv.put('stream.s1', 'owner=node-a');
    const b = await client(server);
    const e = await (await new Kvm(b).open('infra_single')).get('stream.s1');
    expect(e?.revision).toBe(rev);
    expect(e?.string()).toBe('owner=node-a');
  });
});

describe('a port taken between its pick and the bind', () => {
  it('fails the start with an error that says so (what a start on ephemeral ports picks again on), and leaves nothing running', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const taken = (holder.address() as AddressInfo).port;
    try {
      const err = await startFromConf(infra('nats/single.conf'), { client: taken, monitor: await freePort() }).then(
        (s) => s.stop().then(() => undefined),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NatsConfError);
      expect(isPortTaken(err)).toBe(true);
      expect(isPortTaken(new NatsConfError('nats-server not ready after 15000 ms'))).toBe(false);
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });
});

describe('infra/nats/cluster (3 servers)', () => {
  let servers: ConfServer[] = [];
  beforeAll(async () => {
    servers = await startCluster([1, 2, 3].map((n) => infra(`nats/cluster/nats-${n}.conf`)));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('forms one JetStream cluster: every server routed to the other two, one meta leader of 3 peers', async () => {
    const names = new Set<string>();
    for (const s of servers) {
      const jsz = await untilMonitor<Jsz>(s, '/jsz', (b) => Boolean(b.meta_cluster?.leader));
      expect(jsz.meta_cluster).toMatchObject({ name: 'streamfleet', cluster_size: 3 });
      names.add(jsz.meta_cluster!.leader!);
    }
    expect(names.size).toBe(1);
  });

  it('ensure-buckets creates sf_streams and sf_nodes with 3 replicas, then keeps them', async () => {
    const first = await ensureBuckets(servers[0].url, { replicas: 3, waitMs: 10_000 });
    expect(first).toEqual([
      { bucket: defaultConfig.bus.streamsBucket, action: 'created', replicas: 3 },
      { bucket: defaultConfig.bus.nodesBucket, action: 'created', replicas: 3 },
    ]);
    const again = await ensureBuckets([servers[1].url, servers[2].url], { replicas: 3 });
    expect(again.map((r) => [r.action, r.replicas])).toEqual([
      ['kept', 3],
      ['kept', 3],
    ]);
  });

  it("a node's bus opens the 3-replica bucket as it is", async () => {
    const bus = await connectNatsBus(servers[2].url, { name: 'infra-node' });
    try {
      await (await bus.kv(defaultConfig.bus.streamsBucket)).create('stream.via-bus', { owner: 'node-c' });
    } finally {
      await bus.close();
    }
    const si = await (await jetstreamManager(await client(servers[0]))).streams.info(`KV_${defaultConfig.bus.streamsBucket}`);
    expect(si.config.num_replicas).toBe(3);
    expect(si.cluster?.replicas?.length).toBe(2);
  });

  it('ensure-buckets raises a bucket a node created with one replica to three, keeping its values', async () => {
    const bus = await connectNatsBus(servers[0].url, { name: 'infra-r1' });
    try {
      await (await bus.kv('infra_r1')).put('k', 'kept');
    } finally {
      await bus.close();
    }
    const jsm = await jetstreamManager(await client(servers[1]));
    expect((await jsm.streams.info('KV_infra_r1')).config.num_replicas).toBe(1);
    expect(await ensureBuckets(servers[1].url, { replicas: 3, buckets: ['infra_r1'] })).toEqual([{ bucket: 'infra_r1', action: 'scaled', replicas: 3 }]);
    expect((await jsm.streams.info('KV_infra_r1')).config.num_replicas).toBe(3);
    const e = await (await new Kvm(await client(servers[2])).open('infra_r1')).get('k');
    expect(e?.json()).toBe('kept');
  });

  it('ensure-buckets refuses more replicas than the cluster has servers, with a coded error', async () => {
    const err = await ensureBuckets(servers[0].url, { replicas: 5, buckets: ['infra_r5'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnsureBucketsError);
    expect((err as EnsureBucketsError).code).toBe('ENSURE_BUCKETS');
  });

  it("a value put via one server is read via another; with the bucket's leader stopped the other two still read and write", async () => {
    const bucket = defaultConfig.bus.streamsBucket;
    const ncs = await Promise.all(servers.map((s) => client(s)));
    const kvs = await Promise.all(ncs.map((nc) => new Kvm(nc).open(bucket)));
    const rev = await kvs[0].put('stream.ha', 'epoch-1');
    expect((await kvs[1].get('stream.ha'))?.string()).toBe('epoch-1');
    expect((await kvs[2].get('stream.ha'))?.revision).toBe(rev);

    // Stop the worst one to lose: the server leading this bucket's Raft group.
    const leader = (await (await jetstreamManager(ncs[0])).streams.info(`KV_${bucket}`)).cluster?.leader;
    const down = servers.findIndex((s, i) => `nats-${i + 1}` === leader);
    expect(down).toBeGreaterThanOrEqual(0);
    const up = [0, 1, 2].filter((i) => i !== down);
    // The client of the stopped server moves to a server it learned from the cluster.
    const moved = (async () => {
      for await (const st of ncs[down].status()) if (st.type === 'reconnect') return st.server;
      return undefined;
    })();
    await servers[down].stop();
    expect(up.map((i) => servers[i].url.replace('nats://', ''))).toContain(await moved);

    // Reads need any replica; writes need the two survivors to elect a new leader (they say when).
    expect((await kvs[up[0]].get('stream.ha'))?.string()).toBe('epoch-1');
    const jsm = await jetstreamManager(ncs[up[0]]);
    let newLeader: string | undefined;
    for (const deadline = Date.now() + 20_000; !newLeader || newLeader === leader; ) {
      if (Date.now() > deadline) throw new Error(`no new leader for KV_${bucket} (was ${leader})`);
      newLeader = await jsm.streams.info(`KV_${bucket}`).then((si) => si.cluster?.leader, () => undefined);
      if (!newLeader || newLeader === leader) await new Promise((r) => setTimeout(r, 100));
    }
    const rev2 = await kvs[up[0]].put('stream.ha', 'epoch-2');
    expect((await kvs[up[1]].get('stream.ha'))?.revision).toBe(rev2);
    // ...and through the client whose server went away.
    expect((await kvs[down].get('stream.ha'))?.string()).toBe('epoch-2');
  });
});

describe('infra/k8s/nats.yaml ConfigMap', () => {
  let servers: ConfServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('its nats.conf forms a 3-server JetStream cluster named by $POD_NAME and holds a 3-replica bucket', async () => {
    const docs = parseAllDocuments(infra('k8s/nats.yaml')).map((d) => d.toJS() as { kind?: string; data?: Record<string, string> });
    const conf = docs.find((d) => d.kind === 'ConfigMap')?.data?.['nats.conf'];
    expect(conf).toBeDefined();
    servers = await startCluster([conf!, conf!, conf!], (i) => ({ POD_NAME: `nats-${i}` }));
    const jsz = await untilMonitor<Jsz>(servers[0], '/jsz', (b) => Boolean(b.meta_cluster?.leader));
    expect(jsz.meta_cluster?.cluster_size).toBe(3);
    expect(['nats-0', 'nats-1', 'nats-2']).toContain(jsz.meta_cluster?.leader);
    expect(await ensureBuckets(servers[0].url, { replicas: 3, buckets: ['infra_k8s'], waitMs: 10_000 })).toEqual([
      { bucket: 'infra_k8s', action: 'created', replicas: 3 },
    ]);
    await (await new Kvm(await client(servers[0])).open('infra_k8s')).put('k', 'v');
    expect((await (await new Kvm(await client(servers[2])).open('infra_k8s')).get('k'))?.string()).toBe('v');
  });
});
