// Fake worker effects for the machine tests: scripted spawn/warmup/apply outcomes, a handle on each
// worker's watcher (to send EXIT / HEARTBEAT as the process would), and a record of every call.
import { fromCallback, fromPromise, type AnyActorRef, type SnapshotFrom } from 'xstate';
import {
  workerMachine,
  type ApplyPromptsInput,
  type SpawnWorkerInput,
  type SpawnWorkerOutput,
  type StopWorkerInput,
  type WarmupWorkerInput,
  type WatchBusInput,
  type WatchWorkerInput,
  type WorkerEvent,
  type WorkerLimits,
} from '../../src/machines/index.ts';

/** What the next call of an effect does: succeed, fail with an error, or never settle (until aborted). */
import type { ComfyPrompt, StreamPrompt } from '../../src/stream-spec.ts';

export type Outcome = 'ok' | 'fail' | 'hang';

export interface FakeWorkerEffects {
  calls: {
    spawn: SpawnWorkerInput[];
    warmup: WarmupWorkerInput[];
    apply: ApplyPromptsInput[];
    stop: StopWorkerInput[];
    watch: WatchWorkerInput[];
  };
  /** Outcomes consumed call by call; an empty script means 'ok'. */
  script: { spawn: Outcome[]; warmup: Outcome[]; apply: Outcome[]; stop: Outcome[] };
  /** Calls whose AbortSignal fired (the machine left the state while the effect ran). */
  aborted: string[];
  /** Send an event from the watcher of a worker, as the process (exit, heartbeat) would. */
  fromProcess(workerId: string, event: WorkerEvent): void;
  watching(workerId: string): boolean;
  /** Send BUS_DOWN / BUS_UP from the bus watcher of a worker, as the host's bus connection would. */
  fromBus(workerId: string, event: { type: 'BUS_DOWN' } | { type: 'BUS_UP' }): void;
  logic: ReturnType<typeof workerMachine.provide>;
}

export function fakeWorkerEffects(): FakeWorkerEffects {
  let nextPid = 1000;
  const watchers = new Map<string, (e: WorkerEvent) => void>();
  const busWatchers = new Map<string, (e: WorkerEvent) => void>();
  const fx: Omit<FakeWorkerEffects, 'logic'> = {
    calls: { spawn: [], warmup: [], apply: [], stop: [], watch: [] },
    script: { spawn: [], warmup: [], apply: [], stop: [] },
    aborted: [],
    fromProcess(workerId, event) {
      const send = watchers.get(workerId);
      if (!send) throw new Error(`no watcher for ${workerId}`);
      send(event);
    },
    watching: (workerId) => watchers.has(workerId),
    fromBus(workerId, event) {
      const send = busWatchers.get(workerId);
      if (!send) throw new Error(`no bus watcher for ${workerId}`);
      send(event);
    },
  };
  async function play<T>(name: keyof FakeWorkerEffects['script'], signal: AbortSignal, value: () => T): Promise<T> {
    const outcome = fx.script[name].shift() ?? 'ok';
    if (outcome === 'fail') throw new Error(`${name} boom`);
    if (outcome === 'hang') {
      await new Promise<void>((_, reject) => {
        signal.addEventListener('abort', () => {
          fx.aborted.push(name);
          reject(new Error('aborted'));
        });
      });
    }
    return value();
  }
  const logic = workerMachine.provide({
    actors: {
      spawnWorker: fromPromise<SpawnWorkerOutput, SpawnWorkerInput>(async ({ input, signal }) => {
        fx.calls.spawn.push(input);
        return play('spawn', signal, () => ({ pid: nextPid++ }));
      }),
      warmupWorker: fromPromise<void, WarmupWorkerInput>(async ({ input, signal }) => {
        fx.calls.warmup.push(input);
        return play('warmup', signal, () => undefined);
      }),
      applyPrompts: fromPromise<void, ApplyPromptsInput>(async ({ input, signal }) => {
        fx.calls.apply.push(input);
        return play('apply', signal, () => undefined);
      }),
      stopWorker: fromPromise<void, StopWorkerInput>(async ({ input, signal }) => {
        fx.calls.stop.push(input);
        return play('stop', signal, () => undefined);
      }),
      watchWorker: fromCallback<WorkerEvent, WatchWorkerInput>(({ input, sendBack }) => {
        fx.calls.watch.push(input);
        watchers.set(input.workerId, sendBack);
        return () => watchers.delete(input.workerId);
      }),
      watchBus: fromCallback<WorkerEvent, WatchBusInput>(({ input, sendBack }) => {
        busWatchers.set(input.workerId, sendBack);
        return () => busWatchers.delete(input.workerId);
      }),
    },
  });
  return { ...fx, logic };
}

export const testLimits: WorkerLimits = {
  startTimeoutMs: 5_000,
  heartbeatIntervalMs: 1_000,
  heartbeatMisses: 3,
  restartBackoffBaseMs: 100,
  restartBackoffMaxMs: 1_000,
  maxRestarts: 5,
  restartWindowMs: 60_000,
};

/**
 * Resolves once the actor's snapshot satisfies `pred` (event-driven: no polling, no sleep); rejects
 * when the actor stops without ever satisfying it, so a broken machine fails fast instead of hanging.
 */
export function until<A extends AnyActorRef>(actor: A, pred: (s: SnapshotFrom<A>) => boolean): Promise<SnapshotFrom<A>> {
  return new Promise((resolve, reject) => {
    const check = (s: SnapshotFrom<A>) => {
      if (pred(s)) {
        sub?.unsubscribe();
        resolve(s);
        return true;
      }
      if ((s as { status?: string }).status !== 'active') {
        sub?.unsubscribe();
        reject(new Error(`actor ended (${JSON.stringify((s as { value?: unknown }).value)}) before the awaited condition held`));
        return true;
      }
      return false;
    };
    let sub: { unsubscribe(): void } | undefined;
    if (check(actor.getSnapshot())) return;
    sub = actor.subscribe({ next: (s: SnapshotFrom<A>) => void check(s), error: reject });
  });
}

/** A prompt the machines carry (they never look inside): its graph is a placeholder, never compiled. */
export function fakePrompt(id: string, prompt: ComfyPrompt = { '1': { class_type: 'SaveTensor', inputs: {} } }): StreamPrompt {
  return { id, prompt, graph: { id, nodes: [], inputNode: '1', outputNode: '1' } };
}
