// Two nodes on one real nats-server: any node's HTTP edge serves any stream (its commands travel to
// the hosting node over the bus), an id runs once cluster-wide (the KV record's compare-and-set),
// and both nodes register with a heartbeat.
import { afterEach, describe, expect, it } from 'vitest';
import { NodeRecord } from '../src/actors/registry.ts';
import { startNatsServer, type NatsServerHandle } from './helpers/nats-server.ts';
import { api, startBody, startNode, type TestNode } from './helpers/runtime-node.ts';

let nodes: TestNode[] = [];
let nats: NatsServerHandle | undefined;
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    const { orphans } = await n.close();
    expect(orphans).toEqual([]);
  }
  await nats?.stop();
  nats = undefined;
});

describe('runtime: a cluster of two nodes on NATS', () => {
  it('serves a stream hosted on node A through node B, and runs an id once', async () => {
    nats = await startNatsServer();
    const a = await startNode({ nodeId: 'node-a', bus: { natsUrl: nats.url } });
    nodes.push(a);
    const b = await startNode({ nodeId: 'node-b', bus: { natsUrl: nats.url } });
    nodes.push(b);

    expect((await api(a.origin, 'POST', '/stream/start', startBody(a, { id: 'roamer' }))).status).toBe(200);
    const viaB = await api(b.origin, 'GET', '/stream/roamer');
    expect(viaB.status).toBe(200);
    expect(viaB.json.state).toBe('running');
    expect(a.runtime.processes().map((p) => p.key)).toEqual(['stream:roamer']);
    expect(b.runtime.processes()).toEqual([]);
    expect(Object.keys((await api(b.origin, 'GET', '/streams')).json.streams)).toEqual(['roamer']);

    // Same id through the other node: refused, the record names its owner.
    const again = await api(b.origin, 'POST', '/stream/start', startBody(a, { id: 'roamer' }));
    expect(again.status).toBe(409);

    const upd = await api(b.origin, 'POST', '/stream/roamer/update-prompts', {
      prompts: [{ '1': { class_type: 'LoadTensor', inputs: {} }, '2': { class_type: 'SaveTensor', inputs: { images: ['1', 0] } } }],
    });
    expect(upd.status, JSON.stringify(upd.json)).toBe(200);
    expect((await api(a.origin, 'GET', '/stream/roamer')).json.prompt_ids).toEqual((await api(b.origin, 'GET', '/stream/roamer')).json.prompt_ids);

    const kv = await a.bus.kv(a.config.bus.nodesBucket);
    const registered = (await kv.keys()).sort();
    expect(registered).toEqual(['node-a', 'node-b']);
    const capacity = NodeRecord.parse((await kv.get('node-a'))!.json()).capacity;
    expect(capacity).toBeGreaterThan(0);
    expect(capacity).toBeLessThanOrEqual(a.config.actors.maxStreams);

    expect((await api(b.origin, 'DELETE', '/stream/roamer')).status).toBe(200);
    expect((await api(a.origin, 'GET', '/stream/roamer')).json.state).toBe('terminated');
    expect(a.runtime.processes()).toEqual([]);
  }, 120_000);
});
