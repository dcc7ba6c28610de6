// The embedded bus against the shared contract, plus what only the embedded bus can show.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { createBus } from '../src/transport/create-bus.ts';
import { LocalBus } from '../src/transport/local/local-bus.ts';
import { busContract } from './helpers/bus-contract.ts';

busContract('embedded (local)', async () => {
  const bus = new LocalBus();
  return {
    a: bus,
    b: bus,
    fresh: async () => new LocalBus(),
    close: () => bus.close(),
  };
});

describe('embedded bus', () => {
  it('createBus picks the embedded bus when no NATS URL is configured', async () => {
    const bus = await createBus(loadConfig().bus);
    expect(bus.kind).toBe('local');
    await bus.close();
  });

  it('a reader that stops reading loses new messages beyond maxPendingMessages, reported as slowConsumer', async () => {
    const bus = new LocalBus({ maxPendingMessages: 3 });
    const statuses = bus.status()[Symbol.asyncIterator]();
    const sub = bus.subscribe('slow');
    for (let i = 0; i < 5; i++) bus.publish('slow', i);
    const first = await statuses.next();
    expect(first.value).toEqual({ type: 'slowConsumer', subject: 'slow', dropped: 1 });
    expect((await statuses.next()).value).toEqual({ type: 'slowConsumer', subject: 'slow', dropped: 2 });
    await sub.drain();
    const got: unknown[] = [];
    for await (const m of sub) got.push(m.json());
    expect(got).toEqual([0, 1, 2]);
    await bus.close();
  });

  it('the publisher may reuse its buffer after publish and put', async () => {
    const bus = new LocalBus();
    const sub = bus.subscribe('buf');
    const kv = await bus.kv('b');
    const buf = new Uint8Array([1, 2, 3]);
    bus.publish('buf', buf);
    await kv.put('k', buf);
    buf.fill(9);
    for await (const m of sub) {
      expect([...m.data]).toEqual([1, 2, 3]);
      break;
    }
    expect([...(await kv.get('k'))!.value]).toEqual([1, 2, 3]);
    await bus.close();
  });
});
