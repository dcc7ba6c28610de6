// The worker machine driven by fake effects and xstate's SimulatedClock: supervision, backoff,
// heartbeats, prompt updates and STOP from every state. No sleeps: time moves only by clock.increment.
import { describe, expect, test } from 'vitest';
import { createActor, SimulatedClock, type Actor } from 'xstate';
import {
  backoffDelayMs,
  machineDefinition,
  machines,
  workerLimitsFrom,
  workerMachine,
  workerStateName,
  type WorkerLimits,
  type WorkerNotification,
  type WorkerSnapshot,
} from '../src/machines/index.ts';
import { defaultConfig } from '../src/config.ts';
import { fakePrompt, fakeWorkerEffects, testLimits, until, type FakeWorkerEffects } from './helpers/worker-fakes.ts';

const prompts = [fakePrompt('p1', { '1': { class_type: 'LoadTensor', inputs: {} } })];

interface Rig {
  fx: FakeWorkerEffects;
  clock: SimulatedClock;
  actor: Actor<typeof workerMachine>;
  notes: WorkerNotification[];
  state: () => string;
  reach: (state: string) => Promise<void>;
}

function rig(limits: Partial<WorkerLimits> = {}, setup?: (fx: FakeWorkerEffects) => void): Rig {
  const fx = fakeWorkerEffects();
  setup?.(fx);
  const clock = new SimulatedClock();
  const actor = createActor(fx.logic, {
    clock,
    input: {
      streamId: 's1',
      workerId: 'w0',
      prompts,
      width: 512,
      height: 512,
      limits: { ...testLimits, ...limits },
      env: { now: () => clock.now(), random: () => 0.5 },
    },
  });
  const notes: WorkerNotification[] = [];
  actor.on('*', (e) => notes.push(e));
  actor.start();
  const state = () => workerStateName(actor.getSnapshot());
  const reach = async (s: string) => {
    await until(actor, (snap) => workerStateName(snap) === s);
  };
  return { fx, clock, actor, notes, state, reach };
}

const types = (notes: WorkerNotification[]) => notes.map((n) => n.type);

/** The worker's state by its API name, with its context. */
const workerStatus = (snap: WorkerSnapshot) => ({ ...snap.context, state: workerStateName(snap) });

describe('worker machine', () => {
  test('spawns, warms up and runs with the pid the spawn reported', async () => {
    const r = rig();
    expect(r.state()).toBe('spawning');
    await r.reach('running');
    expect(workerStateName(r.actor.getSnapshot())).toBe('running');
    expect(r.actor.getSnapshot().context).toMatchObject({ workerId: 'w0', pid: 1000, restartCount: 0, startedAt: 0 });
    expect(r.fx.calls.spawn).toEqual([{ streamId: 's1', workerId: 'w0', prompts, width: 512, height: 512 }]);
    expect(r.fx.calls.warmup).toEqual([{ streamId: 's1', workerId: 'w0', pid: 1000, prompts, width: 512, height: 512 }]);
    expect(r.fx.calls.watch).toEqual([{ streamId: 's1', workerId: 'w0', pid: 1000 }]);
    expect(types(r.notes)).toEqual(['WORKER_WARMING', 'WORKER_RUNNING']);
    r.actor.stop();
  });

  test('a heartbeat miss restarts the worker: restarting -> running with restartCount 1', async () => {
    const r = rig();
    await r.reach('running');
    const timeout = testLimits.heartbeatIntervalMs * testLimits.heartbeatMisses;
    r.clock.increment(timeout - 1);
    r.fx.fromProcess('w0', { type: 'HEARTBEAT', stats: { fps: 30 } });
    r.clock.increment(timeout - 1);
    expect(r.state()).toBe('running');
    expect(r.actor.getSnapshot().context.lastStats).toEqual({ fps: 30 });
    expect(r.actor.getSnapshot().context.lastHeartbeatAt).toBe(timeout - 1);
    r.clock.increment(1);
    expect(r.state()).toBe('restarting');
    expect(r.actor.getSnapshot().context.lastError).toBe('heartbeat timeout');
    // The hung process is reaped before a new one is forked.
    await until(r.actor, (s) => s.context.pid === undefined);
    expect(r.fx.calls.stop).toEqual([{ streamId: 's1', workerId: 'w0', pid: 1000 }]);
    r.clock.increment(backoffDelayMs(testLimits, 0, () => 0.5));
    await r.reach('running');
    const s = workerStatus(r.actor.getSnapshot());
    expect(s.restartCount).toBe(1);
    expect(s.pid).toBe(1001);
    expect(r.fx.calls.spawn).toHaveLength(2);
    expect(types(r.notes)).toEqual(['WORKER_WARMING', 'WORKER_RUNNING', 'WORKER_STATS', 'WORKER_RESTARTING', 'WORKER_WARMING', 'WORKER_RUNNING']);
    r.actor.stop();
  });

  test('bus down: heartbeat silence is not a crash; back up, the heartbeat timer starts afresh', async () => {
    const r = rig();
    await r.reach('running');
    const timeout = testLimits.heartbeatIntervalMs * testLimits.heartbeatMisses;
    r.clock.increment(timeout - 1);
    r.fx.fromBus('w0', { type: 'BUS_DOWN' });
    // A minute of silence while the bus is down: still running, nothing reaped.
    for (let i = 0; i < 60; i++) r.clock.increment(1_000);
    expect(r.state()).toBe('running');
    expect(r.fx.calls.stop).toEqual([]);
    expect(workerStatus(r.actor.getSnapshot()).restartCount).toBe(0);
    r.fx.fromBus('w0', { type: 'BUS_UP' });
    r.clock.increment(timeout - 1);
    expect(r.state()).toBe('running');
    r.fx.fromProcess('w0', { type: 'HEARTBEAT', stats: { fps: 30 } });
    r.clock.increment(timeout - 1);
    expect(r.state()).toBe('running');
    // The bus is up and the worker silent: that is a hang again.
    r.clock.increment(1);
    expect(r.state()).toBe('restarting');
    expect(r.actor.getSnapshot().context.lastError).toBe('heartbeat timeout');
    r.actor.stop();
  });

  test('bus down before the worker runs: it runs without a heartbeat timer until the bus is back', async () => {
    const r = rig();
    r.fx.fromBus('w0', { type: 'BUS_DOWN' });
    await r.reach('running');
    const timeout = testLimits.heartbeatIntervalMs * testLimits.heartbeatMisses;
    r.clock.increment(10 * timeout);
    expect(r.state()).toBe('running');
    expect(r.fx.calls.stop).toEqual([]);
    r.fx.fromBus('w0', { type: 'BUS_UP' });
    r.clock.increment(timeout);
    expect(r.state()).toBe('restarting');
    r.actor.stop();
  });

  test('bus down: a real exit restarts at once, and the new process is forked once the bus is back', async () => {
    const r = rig();
    await r.reach('running');
    r.fx.fromBus('w0', { type: 'BUS_DOWN' });
    r.fx.fromProcess('w0', { type: 'EXIT', code: 1, signal: null });
    expect(r.state()).toBe('restarting');
    expect(workerStatus(r.actor.getSnapshot()).restartCount).toBe(1);
    // Backed off, yet no fork while the bus is down: a new process could not join it.
    r.clock.increment(60_000);
    expect(r.state()).toBe('restarting');
    expect(r.fx.calls.spawn).toHaveLength(1);
    r.fx.fromBus('w0', { type: 'BUS_UP' });
    await r.reach('running');
    expect(r.fx.calls.spawn).toHaveLength(2);
    expect(workerStatus(r.actor.getSnapshot())).toMatchObject({ restartCount: 1, pid: 1001 });
    r.actor.stop();
  });

  test('restart backoff doubles from the base up to the cap, with jitter from the random source', async () => {
    const r = rig({ maxRestarts: 10, restartBackoffBaseMs: 100, restartBackoffMaxMs: 1_000 });
    // random 0.5 with equal jitter: 0.75 of min(base * 2^n, max).
    const expected = [75, 150, 300, 600, 750, 750];
    for (const [n, delay] of expected.entries()) {
      await r.reach('running');
      r.fx.fromProcess('w0', { type: 'EXIT', code: 1, signal: null });
      expect(r.state()).toBe('restarting');
      expect(r.actor.getSnapshot().context.backoffMs).toBe(delay);
      const note = r.notes.at(-1);
      expect(note).toEqual({ type: 'WORKER_RESTARTING', workerId: 'w0', reason: 'exited with code 1', restartCount: n + 1, delayMs: delay });
      r.clock.increment(delay - 1);
      expect(r.state()).toBe('restarting');
      r.clock.increment(1);
      expect(r.state()).toBe('spawning');
    }
    // An exited process is not reaped again.
    expect(r.fx.calls.stop).toEqual([]);
    r.actor.stop();
  });

  test('backoff arithmetic: cap, floor at half, random clamped', () => {
    const l = { ...testLimits, restartBackoffBaseMs: 100, restartBackoffMaxMs: 1_000 };
    expect(backoffDelayMs(l, 0, () => 0)).toBe(50);
    expect(backoffDelayMs(l, 0, () => 0.999)).toBe(99);
    expect(backoffDelayMs(l, 20, () => 0)).toBe(500);
    expect(backoffDelayMs(l, 20, () => 7)).toBe(1_000);
    expect(backoffDelayMs({ ...l, restartBackoffBaseMs: 0 }, 3, () => 0.5)).toBe(0);
  });

  test('a crash loop fails the worker with the reason after maxRestarts within the window', async () => {
    const r = rig({ maxRestarts: 2, restartWindowMs: 10_000 });
    for (let i = 0; i < 2; i++) {
      await r.reach('running');
      r.fx.fromProcess('w0', { type: 'EXIT', code: 1, signal: null });
      r.clock.increment(r.actor.getSnapshot().context.backoffMs);
    }
    await r.reach('running');
    r.fx.fromProcess('w0', { type: 'EXIT', code: null, signal: 'SIGSEGV' });
    expect(r.state()).toBe('failed');
    const s = workerStatus(r.actor.getSnapshot());
    expect(s).toMatchObject({ failReason: 'killed by signal SIGSEGV', restartCount: 2, pid: undefined });
    expect(r.notes.at(-1)).toEqual({ type: 'WORKER_FAILED', workerId: 'w0', reason: 'killed by signal SIGSEGV', restartCount: 2 });
    // failed waits for STOP (the stream decides), then terminates.
    r.actor.send({ type: 'STOP' });
    await r.reach('terminated');
    expect(r.actor.getSnapshot().status).toBe('done');
  });

  test('restarts outside the window do not accumulate', async () => {
    const r = rig({ maxRestarts: 1, restartWindowMs: 1_000 });
    for (let i = 0; i < 4; i++) {
      await r.reach('running');
      r.clock.increment(1_000); // the previous restart leaves the window
      r.fx.fromProcess('w0', { type: 'HEARTBEAT' }); // (keeps the heartbeat timer from firing first)
      r.fx.fromProcess('w0', { type: 'EXIT', code: 2, signal: null });
      expect(r.state()).toBe('restarting');
      // The backoff starts over too: attempt 0 each time.
      expect(r.actor.getSnapshot().context.backoffMs).toBe(75);
      expect(r.actor.getSnapshot().context.recentRestarts).toHaveLength(1);
      r.clock.increment(75);
    }
    await r.reach('running');
    expect(r.actor.getSnapshot().context.restartCount).toBe(4);
    // Two crashes inside the window are one too many.
    r.fx.fromProcess('w0', { type: 'EXIT', code: 2, signal: null });
    expect(r.state()).toBe('failed');
    expect(r.actor.getSnapshot().context.failReason).toBe('exited with code 2');
    r.actor.stop();
  });

  test('spawn failures and spawn timeouts count as crashes', async () => {
    const r = rig({ maxRestarts: 1 }, (fx) => {
      fx.script.spawn.push('fail', 'hang');
    });
    await until(r.actor, (s) => s.context.lastError !== undefined);
    expect(r.state()).toBe('restarting');
    expect(r.actor.getSnapshot().context.lastError).toBe('spawn failed: spawn boom');
    r.clock.increment(75);
    expect(r.state()).toBe('spawning');
    r.clock.increment(testLimits.startTimeoutMs);
    // Second crash within the window with maxRestarts 1: failed, and the hanging spawn was aborted.
    expect(r.state()).toBe('failed');
    expect(r.actor.getSnapshot().context.failReason).toBe(`spawn failed: timed out after ${testLimits.startTimeoutMs} ms`);
    expect(r.fx.aborted).toEqual(['spawn']);
    r.actor.stop();
  });

  test('warmup failures and warmup timeouts count as crashes and reap the process', async () => {
    const r = rig({}, (fx) => {
      fx.script.warmup.push('fail', 'hang');
    });
    await until(r.actor, (s) => s.context.lastError !== undefined);
    expect(r.actor.getSnapshot().context.lastError).toBe('warmup failed: warmup boom');
    await until(r.actor, (s) => s.context.pid === undefined);
    expect(r.fx.calls.stop.map((c) => c.pid)).toEqual([1000]);
    r.clock.increment(75);
    await r.reach('warmup');
    r.clock.increment(testLimits.startTimeoutMs);
    expect(r.state()).toBe('restarting');
    expect(r.actor.getSnapshot().context.lastError).toBe(`warmup failed: timed out after ${testLimits.startTimeoutMs} ms`);
    expect(r.fx.aborted).toEqual(['warmup']);
    await until(r.actor, (s) => s.context.pid === undefined);
    r.clock.increment(150);
    await r.reach('running');
    expect(workerStatus(r.actor.getSnapshot())).toMatchObject({ restartCount: 2, pid: 1002 });
    r.actor.stop();
  });

  test('a manual RESTART reaps and respawns at once without spending the crash budget', async () => {
    const r = rig({ maxRestarts: 0 });
    await r.reach('running');
    r.actor.send({ type: 'RESTART' });
    expect(r.state()).toBe('restarting');
    await r.reach('running');
    expect(r.fx.calls.stop.map((c) => c.pid)).toEqual([1000]);
    expect(workerStatus(r.actor.getSnapshot())).toMatchObject({ restartCount: 1, pid: 1001 });
    expect(r.actor.getSnapshot().context.recentRestarts).toEqual([]);
    r.actor.stop();
  });

  test('UPDATE_PROMPTS without a size change swaps prompts in the running process', async () => {
    const r = rig();
    await r.reach('running');
    const next = [fakePrompt('p2', { x: { class_type: 'SaveTensor', inputs: {} } })];
    r.actor.send({ type: 'UPDATE_PROMPTS', prompts: next, width: 512, height: 512 });
    await until(r.actor, (s) => s.context.prompts === next);
    expect(r.state()).toBe('running');
    expect(r.fx.calls.apply).toEqual([{ streamId: 's1', workerId: 'w0', pid: 1000, prompts: next }]);
    expect(r.fx.calls.spawn).toHaveLength(1);
    expect(r.fx.calls.warmup).toHaveLength(1);
    expect(r.notes.at(-1)).toEqual({ type: 'WORKER_PROMPTS_APPLIED', workerId: 'w0', warmupPerformed: false });
    r.actor.stop();
  });

  test('a failed prompt swap keeps the old prompts and reports the error', async () => {
    const r = rig({}, (fx) => fx.script.apply.push('fail'));
    await r.reach('running');
    r.actor.send({ type: 'UPDATE_PROMPTS', prompts: [fakePrompt('p2', {})] });
    await until(r.actor, () => r.notes.at(-1)?.type === 'WORKER_PROMPTS_APPLIED');
    expect(r.notes.at(-1)).toEqual({ type: 'WORKER_PROMPTS_APPLIED', workerId: 'w0', warmupPerformed: false, error: 'apply boom' });
    expect(r.actor.getSnapshot().context.prompts).toBe(prompts);
    expect(r.state()).toBe('running');
    r.actor.stop();
  });

  test('UPDATE_PROMPTS with a new size re-warms the same process', async () => {
    const r = rig();
    await r.reach('running');
    const next = [fakePrompt('p3', {})];
    r.actor.send({ type: 'UPDATE_PROMPTS', prompts: next, width: 256, height: 384 });
    expect(r.state()).toBe('warmup');
    await r.reach('running');
    expect(r.fx.calls.warmup.at(-1)).toEqual({ streamId: 's1', workerId: 'w0', pid: 1000, prompts: next, width: 256, height: 384 });
    expect(r.fx.calls.spawn).toHaveLength(1);
    expect(r.fx.calls.apply).toHaveLength(0);
    // The watcher was not torn down: the same process is watched throughout.
    expect(r.fx.calls.watch).toHaveLength(1);
    expect(r.notes.filter((n) => n.type === 'WORKER_PROMPTS_APPLIED')).toEqual([
      { type: 'WORKER_PROMPTS_APPLIED', workerId: 'w0', warmupPerformed: true },
    ]);
    expect(r.actor.getSnapshot().context).toMatchObject({ width: 256, height: 384, restartCount: 0, pid: 1000 });
    r.actor.stop();
  });

  test('UPDATE_PROMPTS before running is applied by the coming warmup', async () => {
    const r = rig({}, (fx) => fx.script.spawn.push('fail'));
    await until(r.actor, (s) => s.context.lastError !== undefined);
    const next = [fakePrompt('p4', {})];
    r.actor.send({ type: 'UPDATE_PROMPTS', prompts: next, width: 128 });
    r.clock.increment(75);
    await r.reach('running');
    expect(r.fx.calls.spawn.at(-1)).toMatchObject({ prompts: next, width: 128, height: 512 });
    expect(r.notes.filter((n) => n.type === 'WORKER_PROMPTS_APPLIED')).toEqual([
      { type: 'WORKER_PROMPTS_APPLIED', workerId: 'w0', warmupPerformed: true },
    ]);
    r.actor.stop();
  });

  test('STATS from the process are kept and forwarded', async () => {
    const r = rig();
    await r.reach('running');
    r.fx.fromProcess('w0', { type: 'STATS', stats: { frames: 10 } });
    expect(r.actor.getSnapshot().context.lastStats).toEqual({ frames: 10 });
    expect(r.notes.at(-1)).toEqual({ type: 'WORKER_STATS', workerId: 'w0', stats: { frames: 10 } });
    r.actor.stop();
  });

  describe('STOP from every state ends in terminated with stopWorker invoked', () => {
    // [state, how to get there after start, pid stopWorker must get]
    const cases: Array<[string, (r: Rig) => Promise<void>, number | undefined]> = [
      ['spawning', async () => {}, undefined],
      ['warmup', async () => {}, 1000],
      ['running', async () => {}, 1000],
      [
        'restarting',
        async (r) => {
          await r.reach('running');
          r.fx.fromProcess('w0', { type: 'EXIT', code: 1, signal: null });
        },
        undefined,
      ],
      [
        'failed',
        async (r) => {
          await r.reach('running');
          r.fx.fromProcess('w0', { type: 'EXIT', code: 1, signal: null });
        },
        undefined,
      ],
    ];
    for (const [state, prepare, pid] of cases) {
      test(`from ${state}`, async () => {
        const r = rig(state === 'failed' ? { maxRestarts: 0 } : {}, (fx) => {
          if (state === 'spawning') fx.script.spawn.push('hang');
          if (state === 'warmup') fx.script.warmup.push('hang');
        });
        await prepare(r);
        await r.reach(state);
        r.actor.send({ type: 'STOP' });
        expect(['stopping', 'terminated']).toContain(r.state());
        await r.reach('terminated');
        expect(r.fx.calls.stop.at(-1)).toEqual({ streamId: 's1', workerId: 'w0', pid });
        expect(r.notes.at(-1)).toEqual({ type: 'WORKER_TERMINATED', workerId: 'w0' });
        expect(r.actor.getSnapshot().status).toBe('done');
        expect(r.actor.getSnapshot().context.pid).toBeUndefined();
        if (state === 'spawning' || state === 'warmup') expect(r.fx.aborted).toEqual([state === 'spawning' ? 'spawn' : 'warmup']);
      });
    }

    test('from stopping (a second STOP is ignored)', async () => {
      const r = rig({}, (fx) => fx.script.stop.push('hang'));
      await r.reach('running');
      r.actor.send({ type: 'STOP' });
      r.actor.send({ type: 'STOP' });
      expect(r.state()).toBe('stopping');
      expect(r.fx.calls.stop).toHaveLength(1);
      r.actor.stop();
    });

    test('a failing stopWorker still terminates, keeping the error', async () => {
      const r = rig({}, (fx) => fx.script.stop.push('fail'));
      await r.reach('running');
      r.actor.send({ type: 'STOP' });
      await r.reach('terminated');
      expect(r.actor.getSnapshot().context.lastError).toBe('stop failed: stop boom');
    });
  });

  test('without host effects, the placeholder fails the worker with a typed reason', async () => {
    const clock = new SimulatedClock();
    const actor = createActor(workerMachine, {
      clock,
      input: { streamId: 's', workerId: 'w', prompts, width: 8, height: 8, limits: { ...testLimits, maxRestarts: 0 } },
    }).start();
    await until(actor, (s) => workerStateName(s) === 'failed');
    expect(actor.getSnapshot().context.failReason).toBe('spawn failed: actor spawnWorker is not provided by the host');
    actor.stop();
  });

  test('limits come from the actors config section', () => {
    expect(workerLimitsFrom()).toEqual({
      startTimeoutMs: defaultConfig.actors.workerStartTimeoutMs,
      heartbeatIntervalMs: defaultConfig.actors.heartbeatIntervalMs,
      heartbeatMisses: defaultConfig.actors.heartbeatMisses,
      restartBackoffBaseMs: defaultConfig.actors.restartBackoffBaseMs,
      restartBackoffMaxMs: defaultConfig.actors.restartBackoffMaxMs,
      maxRestarts: defaultConfig.actors.maxRestarts,
      restartWindowMs: defaultConfig.actors.restartWindowMs,
      inputEndDrainMs: defaultConfig.actors.inputEndDrainMs,
    });
  });

  test('machine definitions serialise to JSON for the visualizer', () => {
    const worker = machineDefinition('worker') as { id: string; states: Record<string, unknown> };
    expect(worker.id).toBe('worker');
    expect(Object.keys(worker.states).sort()).toEqual(['failed', 'live', 'restarting', 'spawning', 'stopping', 'terminated', 'waitingForBus']);
    const stream = machineDefinition('stream') as { id: string; states: Record<string, unknown> };
    expect(Object.keys(stream.states).sort()).toEqual(['active', 'failed', 'stopping', 'terminated']);
    expect(Object.keys(machines).sort()).toEqual(['stream', 'worker']);
    expect(typeof machines.stream.toJSON).toBe('function');
  });
});
