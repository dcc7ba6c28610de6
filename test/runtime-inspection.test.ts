// Inspection of a running node: every actor is listed with its state, XState inspection records go
// to the ring buffer (SSE replay), to the bus on sf.inspect.<node>, and to a @statelyai/inspect
// WebSocket inspector when one is configured.
import { afterEach, describe, expect, it } from 'vitest';
// `ws` comes with @statelyai/inspect (isomorphic-ws); a real WebSocket server stands in for Stately's.
import { WebSocketServer } from 'ws';
import { subjects } from '../src/transport/subjects.ts';
import { api, startBody, startNode, type TestNode } from './helpers/runtime-node.ts';

let node: TestNode | undefined;
let wss: WebSocketServer | undefined;
afterEach(async () => {
  if (node) {
    const { orphans } = await node.close();
    node = undefined;
    expect(orphans).toEqual([]);
  }
  if (wss) {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss!.close(() => r()));
    wss = undefined;
  }
});

describe('runtime: inspection', () => {
  it('lists actors, records inspection events, publishes them on the bus and to a WebSocket inspector', async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss!.once('listening', () => r()));
    const port = (wss.address() as { port: number }).port;
    const fromInspector: string[] = [];
    const sawStream = new Promise<void>((resolve) => {
      wss!.on('connection', (sock) =>
        sock.on('message', (m) => {
          const text = String(m);
          fromInspector.push(text);
          if (text.includes('"inspected"')) resolve();
        }),
      );
    });
    node = await startNode({ http: { inspectUrl: `ws://127.0.0.1:${port}`, inspectBufferSize: 50 } });
    const n = node;
    const onBus = n.bus.subscribe(subjects.inspect(n.config.nodeId));
    const firstOnBus = (async () => {
      for await (const m of onBus) return m.json<{ stream_id?: string; type: string }>();
      return undefined;
    })();

    expect((await api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'inspected' }))).status).toBe(200);
    const actors = (await api(n.origin, 'GET', '/inspect/actors')).json;
    const stream = actors.actors.find((a: { machine: string }) => a.machine === 'stream');
    expect(stream.id).toBe('inspected');
    expect(stream.state).toEqual({ active: { running: 'flowing' } });
    expect(stream.context.architecture).toBe('dedicated');
    const worker = actors.actors.find((a: { machine: string }) => a.machine === 'worker');
    expect(worker.id).toBe('inspected/w0');
    expect(typeof worker.context.pid).toBe('number');

    const recent = n.runtime.recentInspection({ streamId: 'inspected' });
    expect(recent.length).toBeGreaterThan(0);
    expect(recent.length).toBeLessThanOrEqual(50);
    expect(recent.some((r) => r.type === '@xstate.snapshot')).toBe(true);
    for (let i = 1; i < recent.length; i++) expect(recent[i].seq).toBeGreaterThan(recent[i - 1].seq);

    const busRecord = await firstOnBus;
    expect(busRecord?.stream_id).toBe('inspected');
    await sawStream;
    expect(fromInspector.length).toBeGreaterThan(0);
    onBus.unsubscribe();
  }, 60_000);
});
