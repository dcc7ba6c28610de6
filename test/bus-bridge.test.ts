// The IPC bridge with real forked processes (tsx): the shared contract over the bridge, and a
// worker process that joins its parent's bus, answers, publishes, and leaves nothing behind.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BusBridgeUnavailableError, BusNoRespondersError, type Bus } from '../src/transport/bus.ts';
import { bridgeChild, type ChildBridge } from '../src/transport/local/bridge-parent.ts';
import { connectParentBus } from '../src/transport/local/bridge-child.ts';
import { LocalBus } from '../src/transport/local/local-bus.ts';
import { subjects } from '../src/transport/subjects.ts';
import { busContract } from './helpers/bus-contract.ts';

const hostScript = fileURLToPath(new URL('./helpers/bus-bridge-host.ts', import.meta.url));
const workerScript = fileURLToPath(new URL('./helpers/bus-bridge-worker.ts', import.meta.url));

function forkTs(script: string, args: string[] = []): ChildProcess {
  return fork(script, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await exited(child);
}

/** A forked host serving an embedded bus; this process talks to it through the bridge. */
async function hostedBus(): Promise<{ bus: Bus; child: ChildProcess }> {
  const child = forkTs(hostScript);
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`bridge host exited with ${code}`)));
  });
  return { bus: connectParentBus({ ipc: child }), child };
}

busContract('embedded, through the IPC bridge to a forked process', async () => {
  const { bus, child } = await hostedBus();
  const extra: ChildProcess[] = [];
  return {
    a: bus,
    b: bus,
    fresh: async () => {
      const h = await hostedBus();
      extra.push(h.child);
      return h.bus;
    },
    close: async () => {
      await bus.close();
      await Promise.all([child, ...extra].map(stop));
    },
  };
});

describe('bridge to a forked worker process', () => {
  let bus: LocalBus;
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child) await stop(child);
    child = undefined;
    await bus?.close();
  });

  /** Forks the stand-in worker, bridges it, and waits for its first heartbeat. */
  async function startWorker(streamId: string): Promise<ChildBridge> {
    bus = new LocalBus();
    const hb = bus.subscribe(subjects.workerHb(streamId, 0));
    child = forkTs(workerScript, [streamId]);
    const bridge = bridgeChild(bus, child);
    for await (const m of hb) {
      expect(m.json()).toMatchObject({ ready: true, pid: child.pid });
      break;
    }
    return bridge;
  }

  it('the worker answers requests on its inbox and publishes events onto the parent bus', async () => {
    const bridge = await startWorker('s1');
    const r = await bus.request(subjects.procCmd('s1'), { op: 'echo', x: [1, 'two'] }, { timeoutMs: 30_000 });
    expect(r.json()).toEqual({ echo: [1, 'two'], pid: child!.pid });

    const events = bus.subscribe(subjects.streamEvt('s1'));
    const ack = await bus.request(subjects.procCmd('s1'), { op: 'publish', n: 5 }, { timeoutMs: 30_000 });
    expect(ack.json()).toEqual({ published: 5 });
    const got: unknown[] = [];
    for await (const m of events) {
      got.push(m.json());
      if (got.length === 5) break;
    }
    // Published before the reply on the same channel: all five are already here, in order.
    expect(got).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
    expect(bridge.subscriptionCount).toBe(2);
  });

  it('the worker is one member of a queue group beside an in-process member', async () => {
    await startWorker('s2');
    const local = bus.subscribe('svc.work', { queue: 'svc' });
    void (async () => {
      for await (const m of local) m.respond({ by: 'parent', n: m.json() });
    })();
    const replies = await Promise.all([...Array(60).keys()].map((i) => bus.request('svc.work', i, { timeoutMs: 30_000 })));
    const by = replies.map((r) => r.json<{ by: string; n: number }>());
    expect(by.map((x) => x.n)).toEqual([...Array(60).keys()]);
    expect(new Set(by.map((x) => x.by))).toEqual(new Set(['parent', 'child']));
  });

  it('the worker writes KV through the bridge and the parent sees it in a watch', async () => {
    await startWorker('s3');
    const kv = await bus.kv('sf_test');
    const w = await kv.watch({ key: 'stream.>', initial: false });
    const res = await bus.request(subjects.procCmd('s3'), { op: 'kv', bucket: 'sf_test', key: 'stream.s3', value: { state: 'running' } }, { timeoutMs: 30_000 });
    for await (const c of w) {
      expect([c.operation, c.key, c.json(), c.revision]).toEqual(['PUT', 'stream.s3', { state: 'running' }, res.json<{ revision: number }>().revision]);
      break;
    }
  });

  it('a worker killed with SIGKILL leaves no subscriptions behind', async () => {
    const bridge = await startWorker('s4');
    expect(bridge.subscriptionCount).toBe(2);
    child!.kill('SIGKILL');
    await bridge.closed;
    expect(bridge.subscriptionCount).toBe(0);
    await expect(bus.request(subjects.procCmd('s4'), { op: 'echo', x: 1 }, { timeoutMs: 60_000 })).rejects.toBeInstanceOf(BusNoRespondersError);
    await expect(bus.request('svc.work', 1, { timeoutMs: 60_000 })).rejects.toBeInstanceOf(BusNoRespondersError);
  });

  it('a worker that closes its bus and exits leaves no subscriptions behind', async () => {
    const bridge = await startWorker('s5');
    const r = await bus.request(subjects.procCmd('s5'), { op: 'close' }, { timeoutMs: 30_000 });
    expect(r.json()).toEqual({ closing: true });
    // With its bus closed the worker holds nothing open, so it exits by itself.
    await exited(child!);
    await bridge.closed;
    expect(bridge.subscriptionCount).toBe(0);
    expect(child!.exitCode).toBe(0);
  });

  it('malformed bus messages from the worker are dropped and the bridge keeps working', async () => {
    const bridge = await startWorker('s6');
    await bus.request(subjects.procCmd('s6'), { op: 'garbage' }, { timeoutMs: 30_000 });
    const r = await bus.request(subjects.procCmd('s6'), { op: 'echo', x: 'still here' }, { timeoutMs: 30_000 });
    expect(r.json<{ echo: string }>().echo).toBe('still here');
    expect(bridge.subscriptionCount).toBe(2);
  });

  it('connectParentBus in a process without an IPC channel throws BusBridgeUnavailableError', () => {
    const noIpc = { on: () => noIpc, off: () => noIpc };
    expect(() => connectParentBus({ ipc: noIpc })).toThrow(BusBridgeUnavailableError);
  });
});
