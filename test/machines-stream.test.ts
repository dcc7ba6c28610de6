// The stream machine with the real worker machine as its `workerLogic` (fake process effects) and
// xstate's SimulatedClock: architecture-specific spawning, reactions to worker notifications,
// prompt updates and switches, degraded input, and every way a stream ends.
import { describe, expect, test } from 'vitest';
import { createActor, fromCallback, SimulatedClock, type Actor, type ActorRefFrom } from 'xstate';
import {
  streamMachine,
  streamStateName,
  workerMachine,
  streamStatus,
  workerStateName,

  type SharedWorkerInput,
  type SwitchPromptCommand,
  type SwitchPromptInput,
  type StreamEmitted,
  type StreamPrompt,
  type WorkerEvent,
  type WorkerLimits,
  type WorkerSnapshot,
} from '../src/machines/index.ts';
import { fakePrompt, fakeWorkerEffects, testLimits, until, type FakeWorkerEffects } from './helpers/worker-fakes.ts';
import { StreamSpec, type Architecture } from '../src/stream-spec.ts';

const P = (id: string): StreamPrompt => fakePrompt(id, { [id]: { class_type: 'SaveTensor', inputs: {} } });

interface Rig {
  fx: FakeWorkerEffects;
  clock: SimulatedClock;
  actor: Actor<typeof streamMachine>;
  emitted: StreamEmitted[];
  state: () => string;
  reach: (s: string) => Promise<void>;
  worker: (id: string) => WorkerSnapshot;
  workerRef: (id: string) => ActorRefFrom<typeof workerMachine>;
}

function rig(
  opts: {
    architecture?: Architecture;
    prompts?: StreamPrompt[];
    limits?: Partial<WorkerLimits>;
    machine?: typeof streamMachine;
    setup?: (fx: FakeWorkerEffects) => void;
  } = {},
): Rig {
  const fx = fakeWorkerEffects();
  opts.setup?.(fx);
  const clock = new SimulatedClock();
  const machine = (opts.machine ?? streamMachine).provide({ actors: { workerLogic: fx.logic } });
  const actor = createActor(machine, {
    clock,
    input: {
      id: 's1',
      subscribeUrl: 'http://127.0.0.1:3389/s1',
      publishUrl: 'http://127.0.0.1:3389/s1-out',
      width: 512,
      height: 512,
      architecture: opts.architecture ?? 'dedicated',
      prompts: opts.prompts ?? [P('a')],
      limits: { ...testLimits, ...opts.limits },
      env: { now: () => clock.now(), random: () => 0.5 },
    },
  });
  const emitted: StreamEmitted[] = [];
  actor.on('*', (e) => emitted.push(e));
  actor.start();
  const state = () => streamStateName(actor.getSnapshot());
  return {
    fx,
    clock,
    actor,
    emitted,
    state,
    reach: async (s) => void (await until(actor, (snap) => streamStateName(snap) === s)),
    worker: (id) => actor.getSnapshot().children[id]!.getSnapshot() as WorkerSnapshot,
    workerRef: (id) => actor.getSnapshot().children[id] as ActorRefFrom<typeof workerMachine>,
  };
}

describe('stream machine', () => {
  test('a dedicated stream spawns one worker and goes spawning -> warmup -> running', async () => {
    const seen: string[] = [];
    const r = rig({ setup: (fx) => fx.script.warmup.push('hang') });
    r.actor.subscribe((s) => seen.push(streamStateName(s)));
    expect(r.state()).toBe('spawning');
    await r.reach('warmup');
    expect(r.fx.calls.spawn).toHaveLength(1);
    expect(r.fx.calls.spawn[0]).toMatchObject({ streamId: 's1', workerId: 'w0', prompts: [P('a')] });
    // Let the hanging warmup time out: the worker restarts, then warms up for real.
    r.clock.increment(testLimits.startTimeoutMs);
    await until(r.workerRef('w0'), (w) => w.context.pid === undefined);
    expect(r.fx.calls.stop.map((c) => c.pid)).toEqual([1000]);
    r.clock.increment(75);
    await r.reach('running');
    const s = streamStatus(r.actor.getSnapshot());
    expect(s).toMatchObject({ state: 'running', running: true, restartCount: 1, degraded: false, architecture: 'dedicated' });
    expect(s.workers).toEqual([{ workerId: 'w0', state: 'running', pid: 1001, restartCount: 1, lastError: expect.stringMatching(/^warmup failed/), gone: false }]);
    expect(s.runningSince).toBe(testLimits.startTimeoutMs + 75);
    expect(seen).toContain('restarting');
    r.actor.stop();
  });

  test('a worker restart takes the stream to restarting and back to running', async () => {
    const r = rig();
    await r.reach('running');
    r.fx.fromProcess('w0', { type: 'EXIT', code: 137, signal: null });
    expect(r.state()).toBe('restarting');
    expect(streamStatus(r.actor.getSnapshot()).workers[0]).toMatchObject({ state: 'restarting', lastError: 'exited with code 137' });
    r.clock.increment(75);
    await r.reach('running');
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ restartCount: 1, workers: [{ pid: 1001, state: 'running' }] });
    r.actor.stop();
  });

  test("a failed worker fails the stream with the worker's reason and stops the workers", async () => {
    const r = rig({ limits: { maxRestarts: 0 } });
    await r.reach('running');
    r.fx.fromProcess('w0', { type: 'EXIT', code: 3, signal: null });
    await r.reach('failed');
    const snap = r.actor.getSnapshot();
    expect(snap.status).toBe('done');
    expect(snap.output).toEqual({ endReason: undefined, failReason: 'exited with code 3' });
    expect(streamStatus(snap)).toMatchObject({ state: 'failed', running: false, failReason: 'exited with code 3', workers: [{ state: 'terminated' }] });
    expect(r.fx.calls.stop).toHaveLength(1);
  });

  test('STOP stops every worker through stopWorker, then terminates', async () => {
    const r = rig({ architecture: 'prompt_worker', prompts: [P('a'), P('b')] });
    await r.reach('running');
    r.actor.send({ type: 'STOP' });
    await r.reach('terminated');
    expect(r.fx.calls.stop.map((c) => [c.workerId, c.pid]).sort()).toEqual([
      ['w0', 1000],
      ['w1', 1001],
    ]);
    expect(r.actor.getSnapshot().output).toEqual({ endReason: 'stopped', failReason: undefined });
    expect(streamStatus(r.actor.getSnapshot()).endedAt).toBe(0);
  });

  describe('STOP from every state stops the workers through stopWorker, then terminates', () => {
    const cases: Array<[string, (r: Rig) => Promise<void>, Array<number | undefined>]> = [
      ['spawning', async () => {}, [undefined]],
      ['warmup', async () => {}, [1000]],
      ['running', async () => {}, [1000]],
      [
        'restarting',
        async (r) => {
          await r.reach('running');
          r.fx.fromProcess('w0', { type: 'EXIT', code: 1, signal: null });
        },
        [undefined],
      ],
    ];
    for (const [state, prepare, pids] of cases) {
      test(`from ${state}`, async () => {
        const r = rig({
          setup: (fx) => {
            if (state === 'spawning') fx.script.spawn.push('hang');
            if (state === 'warmup') fx.script.warmup.push('hang');
          },
        });
        await prepare(r);
        await r.reach(state);
        r.actor.send({ type: 'STOP' });
        await r.reach('terminated');
        expect(r.fx.calls.stop.map((c) => c.pid)).toEqual(pids);
        expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ endReason: 'stopped', workers: [{ state: 'terminated', gone: true }] });
      });
    }

    test('while stopping, prompt updates and switches are refused and a pending update is answered', async () => {
      const r = rig({ setup: (fx) => fx.script.stop.push('hang') });
      await r.reach('running');
      r.fx.script.apply.push('hang');
      r.actor.send({ type: 'UPDATE_PROMPTS', prompts: [P('b')], requestId: 'pending' });
      r.actor.send({ type: 'STOP' });
      expect(r.state()).toBe('stopping');
      r.actor.send({ type: 'UPDATE_PROMPTS', prompts: [P('c')], requestId: 'late' });
      r.actor.send({ type: 'SWITCH_PROMPT', promptId: 'a' });
      expect(r.emitted).toEqual([
        { type: 'PROMPTS_UPDATED', requestId: 'pending', promptsCount: 1, warmupPerformed: false, error: 'stream is ending' },
        { type: 'PROMPTS_UPDATED', requestId: 'late', promptsCount: 1, warmupPerformed: false, error: 'stream is ending' },
        { type: 'PROMPT_SWITCH_REJECTED', promptId: 'a', code: 'STREAM_NOT_FOUND' },
      ]);
      r.actor.stop();
    });
  });

  test.each(['input_ended', 'input_timeout'] as const)('INPUT_ENDED %s terminates the stream with that reason', async (reason) => {
    const r = rig();
    await r.reach('running');
    r.actor.send({ type: 'INPUT_ENDED', reason });
    await r.reach('terminated');
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ state: 'terminated', endReason: reason, failReason: undefined });
  });

  test('INPUT_ENDED after output drains: the stream runs until stats show no output, or the drain time passes', async () => {
    const stats = { fpsIn: 30, fpsOut: 30, latencyP50: 5, latencyP99: 9, drops: 0 };
    const r = rig({ limits: { inputEndDrainMs: 1_000 } });
    await r.reach('running');
    r.actor.send({ type: 'FRAME_STATS', pid: 1000, frameCount: 10, ...stats });
    r.actor.send({ type: 'INPUT_ENDED', reason: 'input_ended' });
    expect(r.actor.getSnapshot().matches({ active: 'draining' })).toBe(true);
    expect(streamStatus(r.actor.getSnapshot()).state).toBe('running');
    r.actor.send({ type: 'INPUT_ENDED', reason: 'input_ended' });
    r.actor.send({ type: 'FRAME_STATS', pid: 1000, frameCount: 20, ...stats });
    expect(r.actor.getSnapshot().matches({ active: 'draining' })).toBe(true);
    r.actor.send({ type: 'FRAME_STATS', pid: 1000, frameCount: 25, ...stats, fpsOut: 0 });
    await r.reach('terminated');
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ endReason: 'input_ended', frameCount: 25 });

    const t = rig({ limits: { inputEndDrainMs: 1_000 } });
    await t.reach('running');
    t.actor.send({ type: 'FRAME_STATS', pid: 1000, frameCount: 10, ...stats });
    t.actor.send({ type: 'INPUT_ENDED', reason: 'input_ended' });
    t.clock.increment(999);
    expect(t.actor.getSnapshot().matches({ active: 'draining' })).toBe(true);
    t.clock.increment(1);
    await t.reach('terminated');
    expect(streamStatus(t.actor.getSnapshot()).endReason).toBe('input_ended');
  });

  test('frames and drops are counted across processes: a restarted process counts from zero again', async () => {
    const stats = { fpsIn: 30, fpsOut: 30, latencyP50: 5, latencyP99: 9 };
    const r = rig();
    await r.reach('running');
    r.actor.send({ type: 'FRAME_STATS', pid: 1000, frameCount: 40, ...stats, drops: 2 });
    r.actor.send({ type: 'FRAME_STATS', pid: 1000, frameCount: 60, ...stats, drops: 1 });
    r.actor.send({ type: 'FRAME_STATS', pid: 1001, frameCount: 5, ...stats, drops: 0 });
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ frameCount: 65, stats: { drops: 3 } });
    r.actor.stop();
  });

  test('OUTPUT_FAILED fails the stream with its reason', async () => {
    const r = rig();
    await r.reach('warmup');
    r.actor.send({ type: 'OUTPUT_FAILED', reason: 'publish: 404 Stream not found' });
    await r.reach('failed');
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ failReason: 'publish: 404 Stream not found', endReason: undefined });
    expect(r.fx.calls.stop).toHaveLength(1);
  });

  test('input stalls mark the running stream degraded until input resumes', async () => {
    const r = rig();
    await r.reach('running');
    r.clock.increment(500);
    r.actor.send({ type: 'INPUT_STALLED' });
    expect(r.actor.getSnapshot().matches({ active: { running: 'degraded' } })).toBe(true);
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ state: 'running', degraded: true, degradedSince: 500 });
    r.actor.send({ type: 'INPUT_STALLED' });
    expect(streamStatus(r.actor.getSnapshot()).degradedSince).toBe(500);
    r.actor.send({ type: 'INPUT_RESUMED' });
    expect(r.actor.getSnapshot().matches({ active: { running: 'flowing' } })).toBe(true);
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ degraded: false, degradedSince: undefined });
    r.actor.stop();
  });

  test('a stall noticed while restarting shows as degraded once running again', async () => {
    const r = rig();
    await r.reach('running');
    r.fx.fromProcess('w0', { type: 'EXIT', code: 1, signal: null });
    r.actor.send({ type: 'INPUT_STALLED' });
    r.clock.increment(75);
    await r.reach('running');
    expect(r.actor.getSnapshot().matches({ active: { running: 'degraded' } })).toBe(true);
    r.actor.stop();
  });

  test("a heartbeat enters once, through its worker actor: the stats worker's figures are counted, the input's end comes first", async () => {
    const figures = { fpsIn: 30, fpsOut: 30, latencyP50: 5, latencyP99: 9, drops: 1, dropsByReason: { late: 1 }, latenciesMs: [5] };
    const r = rig({ architecture: 'prompt_worker', prompts: [P('a'), P('b')], limits: { inputEndDrainMs: 1_000 } });
    await r.reach('running');
    r.fx.fromProcess('w0', { type: 'HEARTBEAT', stats: { x: 1 }, frames: { pid: 7, frameCount: 10, lastOutputPts: '900', lastInputPts: '800', ...figures } });
    // Not the active prompt's worker: its figures are not the stream's.
    r.fx.fromProcess('w1', { type: 'HEARTBEAT', stats: { x: 2 }, frames: { pid: 7, frameCount: 99, ...figures } });
    const c = r.actor.getSnapshot().context;
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ frameCount: 10, stats: { fpsOut: 30, drops: 1 } });
    expect(c.resumeAt).toEqual({ outputPts: '900', inputPts: '800' });
    expect(r.emitted.filter((e) => e.type === 'FRAMES_COUNTED')).toEqual([
      { type: 'FRAMES_COUNTED', frames: { pid: 7, frameCount: 10, lastOutputPts: '900', lastInputPts: '800', ...figures }, frameCount: 10, drops: 1 },
    ]);
    // The input's end and figures showing no more output, in one heartbeat: the stream ends at once.
    r.fx.fromProcess('w0', { type: 'HEARTBEAT', stats: {}, inputEnded: 'input_ended', frames: { pid: 7, frameCount: 12, ...figures, fpsOut: 0 } });
    await r.reach('terminated');
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ endReason: 'input_ended', frameCount: 12 });
  });

  test('FRAME_STATS and worker stats land in the status', async () => {
    const r = rig();
    await r.reach('running');
    r.actor.send({ type: 'FRAME_STATS', frameCount: 42, fpsIn: 30, fpsOut: 29.5, latencyP50: 12, latencyP99: 30, drops: 1 });
    r.fx.fromProcess('w0', { type: 'HEARTBEAT', stats: { graphMs: 3 } });
    const s = streamStatus(r.actor.getSnapshot());
    expect(s.frameCount).toBe(42);
    expect(s.stats).toEqual({ fpsIn: 30, fpsOut: 29.5, latencyP50: 12, latencyP99: 30, drops: 1 });
    expect(s.workers[0]!.stats).toEqual({ graphMs: 3 });
    r.actor.stop();
  });

  test('UPDATE_PROMPTS without a size change is answered with warmupPerformed false', async () => {
    const r = rig();
    await r.reach('running');
    r.actor.send({ type: 'UPDATE_PROMPTS', prompts: [P('b')], requestId: 'r1' });
    await until(r.actor, (s) => s.context.lastPromptUpdate !== undefined);
    expect(r.emitted).toEqual([{ type: 'PROMPTS_UPDATED', requestId: 'r1', promptsCount: 1, warmupPerformed: false }]);
    expect(r.fx.calls.apply.at(-1)).toMatchObject({ workerId: 'w0', prompts: [P('b')] });
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ promptIds: ['b'], activePromptId: 'b', state: 'running' });
    r.actor.stop();
  });

  test('UPDATE_PROMPTS with a new size re-warms the worker and says so', async () => {
    const r = rig();
    await r.reach('running');
    r.actor.send({ type: 'UPDATE_PROMPTS', prompts: [P('c')], width: 320, height: 240, requestId: 'r2' });
    await until(r.actor, (s) => s.context.lastPromptUpdate !== undefined);
    expect(r.emitted).toEqual([{ type: 'PROMPTS_UPDATED', requestId: 'r2', promptsCount: 1, warmupPerformed: true }]);
    expect(r.fx.calls.warmup.at(-1)).toMatchObject({ width: 320, height: 240, prompts: [P('c')], pid: 1000 });
    expect(r.fx.calls.spawn).toHaveLength(1);
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ width: 320, height: 240, state: 'running', restartCount: 0 });
    r.actor.stop();
  });

  test('an empty prompt update is refused without touching the workers', async () => {
    const r = rig();
    await r.reach('running');
    r.actor.send({ type: 'UPDATE_PROMPTS', prompts: [] });
    expect(r.emitted).toEqual([{ type: 'PROMPTS_UPDATED', promptsCount: 0, warmupPerformed: false, error: 'no prompts given' }]);
    expect(r.fx.calls.apply).toHaveLength(0);
    r.actor.stop();
  });

  test('RESTART_WORKER restarts the dedicated worker', async () => {
    const r = rig();
    await r.reach('running');
    r.actor.send({ type: 'RESTART_WORKER' });
    expect(r.state()).toBe('restarting');
    await r.reach('running');
    expect(streamStatus(r.actor.getSnapshot())).toMatchObject({ restartCount: 1, workers: [{ pid: 1001, restartCount: 1 }] });
    r.actor.stop();
  });

  describe('prompt_worker', () => {
    test('spawns one worker per prompt, each with its own prompt', async () => {
      const r = rig({ architecture: 'prompt_worker', prompts: [P('a'), P('b'), P('c')] });
      await r.reach('running');
      expect(r.fx.calls.spawn.map((c) => [c.workerId, c.prompts.map((p) => p.id)])).toEqual([
        ['w0', ['a']],
        ['w1', ['b']],
        ['w2', ['c']],
      ]);
      const s = streamStatus(r.actor.getSnapshot());
      expect(s.workers.map((w) => [w.workerId, w.promptId, w.state])).toEqual([
        ['w0', 'a', 'running'],
        ['w1', 'b', 'running'],
        ['w2', 'c', 'running'],
      ]);
      expect(s.activePromptId).toBe('a');
      r.actor.stop();
    });

    test('the stream runs only once every prompt worker runs', async () => {
      const r = rig({ architecture: 'prompt_worker', prompts: [P('a'), P('b')], setup: (fx) => fx.script.warmup.push('ok', 'hang') });
      await until(r.workerRef('w0'), (w) => workerStateName(w) === 'running');
      await until(r.workerRef('w1'), (w) => workerStateName(w) === 'warmup');
      expect(r.state()).toBe('warmup');
      r.actor.stop();
    });

    test('SWITCH_PROMPT changes the active prompt; unknown ids are refused', async () => {
      const r = rig({ architecture: 'prompt_worker', prompts: [P('a'), P('b')] });
      await r.reach('running');
      r.actor.send({ type: 'SWITCH_PROMPT', promptId: 'b' });
      expect(r.actor.getSnapshot().context.activePromptId).toBe('b');
      r.actor.send({ type: 'SWITCH_PROMPT', promptId: 'zzz' });
      expect(r.actor.getSnapshot().context.activePromptId).toBe('b');
      expect(r.emitted).toEqual([
        { type: 'PROMPT_SWITCHED', activePromptId: 'b' },
        { type: 'PROMPT_SWITCH_REJECTED', promptId: 'zzz', code: 'PROMPT_NOT_FOUND' },
      ]);
      r.actor.stop();
    });

    test('UPDATE_PROMPTS stops workers of removed prompts and spawns workers for new ones', async () => {
      const r = rig({ architecture: 'prompt_worker', prompts: [P('a'), P('b')] });
      await r.reach('running');
      r.actor.send({ type: 'SWITCH_PROMPT', promptId: 'a' });
      r.actor.send({ type: 'UPDATE_PROMPTS', prompts: [P('b'), P('c')] });
      await until(r.actor, (s) => s.context.lastPromptUpdate !== undefined);
      expect(r.emitted.at(-1)).toEqual({ type: 'PROMPTS_UPDATED', promptsCount: 2, warmupPerformed: true });
      const s = streamStatus(r.actor.getSnapshot());
      expect(s.workers.map((w) => [w.workerId, w.promptId, w.state])).toEqual([
        ['w0', 'a', 'terminated'],
        ['w1', 'b', 'running'],
        ['w2', 'c', 'running'],
      ]);
      expect(r.fx.calls.stop.map((c) => c.workerId)).toEqual(['w0']);
      // The active prompt was removed: the first remaining one takes over.
      expect(s.activePromptId).toBe('b');
      expect(s.state).toBe('running');
      r.actor.stop();
    });

    test('a size change re-warms every prompt worker', async () => {
      const r = rig({ architecture: 'prompt_worker', prompts: [P('a'), P('b')] });
      await r.reach('running');
      r.actor.send({ type: 'UPDATE_PROMPTS', prompts: [P('a'), P('b')], width: 256 });
      await until(r.actor, (s) => s.context.lastPromptUpdate !== undefined);
      expect(r.emitted.at(-1)).toEqual({ type: 'PROMPTS_UPDATED', promptsCount: 2, warmupPerformed: true });
      expect(r.fx.calls.warmup.slice(2).map((c) => [c.workerId, c.width, c.prompts.map((p) => p.id)])).toEqual([
        ['w0', 256, ['a']],
        ['w1', 256, ['b']],
      ]);
      r.actor.stop();
    });
  });

  test("a prompt switch is the process's: the active prompt changes when it answers, and a refusal keeps the old one", async () => {
    const asked: SwitchPromptCommand[] = [];
    const answers: Array<(error?: string) => void> = [];
    const switchPrompt = fromCallback<SwitchPromptCommand, SwitchPromptInput>(({ receive, sendBack }) => {
      receive((e) => {
        asked.push(e);
        answers.push((error) => sendBack({ type: 'PROMPT_SWITCH_DONE', promptId: e.promptId, by: e.by, ...(error ? { error } : {}) }));
      });
    });
    const r = rig({ architecture: 'prompt_worker', prompts: [P('a'), P('b')], machine: streamMachine.provide({ actors: { switchPrompt } }) });
    await r.reach('running');
    r.actor.send({ type: 'SWITCH_PROMPT', promptId: 'b' });
    expect(asked).toEqual([{ type: 'SWITCH_PROMPT', promptId: 'b', by: 'request' }]);
    expect(r.actor.getSnapshot().context.activePromptId).toBe('a');
    answers[0]!();
    expect(r.actor.getSnapshot().context.activePromptId).toBe('b');
    r.actor.send({ type: 'SWITCH_PROMPT', promptId: 'a' });
    answers[1]!('PROMPT_NOT_FOUND: no worker');
    expect(r.actor.getSnapshot().context.activePromptId).toBe('b');
    expect(r.emitted).toEqual([
      { type: 'PROMPT_SWITCHED', activePromptId: 'b' },
      { type: 'PROMPT_SWITCH_FAILED', promptId: 'a', error: 'PROMPT_NOT_FOUND: no worker' },
    ]);
    // An update that removes the active prompt switches the process once it settled.
    r.actor.send({ type: 'UPDATE_PROMPTS', prompts: [P('a'), P('c')] });
    await until(r.actor, (s) => s.context.lastPromptUpdate !== undefined);
    expect(asked.at(-1)).toEqual({ type: 'SWITCH_PROMPT', promptId: 'a', by: 'prompt_update' });
    r.actor.stop();
  });

  test('SWITCH_PROMPT on a dedicated stream is refused', async () => {
    const r = rig();
    await r.reach('running');
    r.actor.send({ type: 'SWITCH_PROMPT', promptId: 'a' });
    expect(r.emitted).toEqual([{ type: 'PROMPT_SWITCH_REJECTED', promptId: 'a', code: 'NOT_PROMPT_WORKER' }]);
    r.actor.stop();
  });

  describe('shared', () => {
    function sharedAttachment(log: Array<WorkerEvent | SharedWorkerInput>) {
      return fromCallback<WorkerEvent, SharedWorkerInput>(({ input, sendBack, receive }) => {
        log.push(input);
        sendBack({ type: 'WORKER_WARMING', workerId: input.workerId, pid: 77 });
        sendBack({ type: 'WORKER_RUNNING', workerId: input.workerId, pid: 77 });
        receive((e) => {
          log.push(e);
          if (e.type === 'UPDATE_PROMPTS') sendBack({ type: 'WORKER_PROMPTS_APPLIED', workerId: input.workerId, warmupPerformed: false });
          if (e.type === 'STOP') sendBack({ type: 'WORKER_TERMINATED', workerId: input.workerId });
        });
      });
    }

    test("attaches to the node's shared worker, routes prompt updates to it, detaches on STOP", async () => {
      const log: Array<WorkerEvent | SharedWorkerInput> = [];
      const machine = streamMachine.provide({ actors: { attachSharedWorker: sharedAttachment(log) } });
      const r = rig({ architecture: 'shared', machine });
      await r.reach('running');
      // A worker actor's input: the stream's limits and clock (one supervision for dedicated and shared).
      const { limits, env } = r.actor.getSnapshot().context;
      expect(log[0]).toEqual({ streamId: 's1', workerId: 'shared', prompts: [P('a')], width: 512, height: 512, limits, env });
      expect(streamStatus(r.actor.getSnapshot()).workers).toEqual([{ workerId: 'shared', state: 'running', pid: 77, restartCount: 0, gone: false }]);
      r.actor.send({ type: 'UPDATE_PROMPTS', prompts: [P('z')] });
      expect(r.emitted).toEqual([{ type: 'PROMPTS_UPDATED', promptsCount: 1, warmupPerformed: false }]);
      // The shared worker serves other streams: one stream does not restart it.
      r.actor.send({ type: 'RESTART_WORKER' });
      r.actor.send({ type: 'STOP' });
      await r.reach('terminated');
      expect(log.slice(1).map((e) => ('type' in e ? e.type : '?'))).toEqual(['UPDATE_PROMPTS', 'STOP']);
      expect(r.fx.calls.spawn).toHaveLength(0);
    });

    test('without a host attachment the stream fails with the typed reason', async () => {
      const r = rig({ architecture: 'shared' });
      await r.reach('failed');
      expect(streamStatus(r.actor.getSnapshot()).failReason).toBe('actor attachSharedWorker is not provided by the host');
    });
  });

  test('the stream spec schema accepts a valid spec and names what is wrong with a bad one', () => {
    const good = {
      id: 's1',
      subscribeUrl: 'http://127.0.0.1:3389/s1',
      publishUrl: 'http://127.0.0.1:3389/s1-out',
      width: 512,
      height: 512,
      architecture: 'prompt_worker',
      prompts: [P('a')],
    };
    expect(StreamSpec.parse(good)).toEqual(good);
    const bad = StreamSpec.safeParse({ ...good, prompts: [], architecture: 'pool' });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['architecture', 'prompts']);
  });
});
