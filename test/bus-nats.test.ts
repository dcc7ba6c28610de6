// The NATS bus against the shared contract, on a real nats-server started for this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { BusConnectError } from '../src/transport/bus.ts';
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
