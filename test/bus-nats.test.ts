// The NATS bus against the shared contract, on a real nats-server started for this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { BusConnectError, BusDisconnectedError, type Bus } from '../src/transport/bus.ts';
import { createBus } from '../src/transport/create-bus.ts';
import { connectNatsBus } from '../src/transport/nats/nats-bus.ts';
import { busContract } from './helpers/bus-contract.ts';
import { startNatsServer, type NatsServerHandle } from './helpers/nats-server.ts';
import { freePort } from './helpers/ports.ts';

let server: NatsServerHandle;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.stop();
});

busContract('NATS (two connections to one nats-server)', async () => {
  const a = await connectNatsBus(server.url, { name: 'contract-a' });
  const b = await connectNatsBus(server.url, { name: 'contract-b' });
  return {
    a,
    b,
    fresh: () => connectNatsBus(server.url, { name: 'contract-fresh' }),
    close: async () => {
      await Promise.all([a.close(), b.close()]);
    },
  };
});

describe('NATS bus', () => {
  it('createBus connects to NATS when natsUrl is set', async () => {
    const bus = await createBus(loadConfig({ bus: { natsUrl: server.url } }).bus);
    expect(bus.kind).toBe('nats');
    await bus.close();
  });

  it('fails with BusConnectError when no server listens', async () => {
    const port = await freePort();
    const err = await connectNatsBus(`nats://127.0.0.1:${port}`, { connectTimeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusConnectError);
    expect((err as BusConnectError).code).toBe('BUS_CONNECT');
  });

  it('reports disconnect and close as status events when its server goes away', async () => {
    const own = await startNatsServer();
    const bus = await connectNatsBus(own.url, { maxReconnectAttempts: 0 });
    const seen: string[] = [];
    const watching = (async () => {
      for await (const st of bus.status()) seen.push(st.type);
    })();
    await own.stop();
    await bus.closed;
    await watching;
    expect(seen).toContain('disconnect');
    expect(seen.at(-1)).toBe('close');
    expect(bus.isClosed()).toBe(true);
  });

  it('stays open through an outage: connection() down, requests refused at once, then up again', async () => {
    const own = await startNatsServer();
    const cfg = { reconnectTimeWaitMs: 100 };
    const responder = await connectNatsBus(own.url, { ...cfg, name: 'outage-responder' });
    const bus = await connectNatsBus(own.url, { ...cfg, name: 'outage-requester' });
    const connectionAfter = (b: Bus, type: 'disconnect' | 'reconnect') =>
      (async () => {
        for await (const st of b.status()) if (st.type === type) return b.connection();
        return 'closed';
      })();
    try {
      const inbox = responder.subscribe('outage.echo');
      void (async () => {
        for await (const m of inbox) m.respond(m.json());
      })();
      await responder.flush();
      expect(bus.connection()).toBe('up');
      expect((await bus.request('outage.echo', 'before')).json()).toBe('before');

      const down = connectionAfter(bus, 'disconnect');
      await own.kill();
      expect(await down).toBe('down');
      const t0 = performance.now();
      const err = await bus.request('outage.echo', 'during', { timeoutMs: 5_000 }).catch((e: unknown) => e);
      expect(performance.now() - t0).toBeLessThan(1_000);
      expect(err).toBeInstanceOf(BusDisconnectedError);
      expect((err as BusDisconnectedError).code).toBe('BUS_DISCONNECTED');
      // Publishes while down do not throw (nats.js buffers them); the bus is not closed.
      bus.publish('outage.note', 'buffered');
      expect(bus.isClosed()).toBe(false);

      const up = Promise.all([connectionAfter(bus, 'reconnect'), connectionAfter(responder, 'reconnect')]);
      await own.restart();
      expect(await up).toEqual(['up', 'up']);
      // The responder's subscription is re-sent on reconnect; its flush says the server has it.
      await responder.flush();
      expect((await bus.request('outage.echo', 'after')).json()).toBe('after');
    } finally {
      await bus.close();
      await responder.close();
      await own.stop();
    }
  }, 30_000);

  it('holds publishes made while disconnected up to reconnectBufferBytes, sends them on reconnect, drops the rest', async () => {
    const own = await startNatsServer();
    const bus = await connectNatsBus(own.url, { reconnectTimeWaitMs: 100, reconnectBufferBytes: 1_000, name: 'outage-buffer' });
    try {
      const sub = bus.subscribe('outage.held');
      await bus.flush();
      const next = (type: string) =>
        (async () => {
          for await (const st of bus.status()) if (st.type === type) return;
        })();
      const down = next('disconnect');
      await own.kill();
      await down;
      // 20 publishes of 118 bytes (subject and JSON): the first 8 fit in 1000 bytes.
      const msg = (i: number) => ({ i, pad: 'x'.repeat(90) });
      expect('outage.held'.length + JSON.stringify(msg(10)).length).toBe(118);
      for (let i = 10; i < 30; i++) bus.publish('outage.held', msg(i));
      const up = next('reconnect');
      await own.restart();
      await up;
      const got: number[] = [];
      bus.publish('outage.held', { i: -1 });
      for await (const m of sub) {
        const { i } = m.json<{ i: number }>();
        if (i === -1) break;
        got.push(i);
      }
      expect(got).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
    } finally {
      await bus.close();
      await own.stop();
    }
  }, 30_000);

  it('KV written through one connection survives that connection closing', async () => {
    const a = await connectNatsBus(server.url);
    const r = await (await a.kv('survive')).create('stream.s1', { owner: 'node-a' });
    await a.close();
    const b = await connectNatsBus(server.url);
    const e = await (await b.kv('survive')).get('stream.s1');
    expect(e?.revision).toBe(r);
    expect(e?.json()).toEqual({ owner: 'node-a' });
    await b.close();
  });
});
