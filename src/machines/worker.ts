// The worker machine: one actor per worker process. Pure definition: forking, talking to the process
// and killing it are named actors that the host (src/actors) provides with `.provide()`; time comes
// from the actor system's clock (named delays) and `input.env`.
//
//   spawning -> live.warmup -> live.running <-> restarting -> ... ; any -> stopping -> terminated
//   a crash with no restart budget left -> failed (the process is reaped first)
//
// The bus (BUS_DOWN / BUS_UP from `watchBus`): heartbeats travel on it, so while it is down their
// silence proves nothing. A running worker then waits for the bus instead of timing out (its
// process and media path do not need the bus), and gets a full heartbeat timeout once it is back;
// a crashed worker is respawned only when the bus is up (a fresh process must join it). A real
// EXIT still counts at once.
import { assign, enqueueActions, fromCallback, fromPromise, setup, type SnapshotFrom } from 'xstate';
import { ActorNotProvidedError, errorMessage, isPromptRejection } from './errors.ts';
import {
  backoffDelayMs,
  defaultEnv,
  heartbeatTimeoutMs,
  restartsInWindow,
  type MachineEnv,
  type WorkerLimits,
} from './limits.ts';
import type { StreamPrompt } from '../stream-spec.ts';

export type { StreamPrompt };

/** What a worker process reports about itself (frames, fps, latency...); opaque to the machine. */
export type WorkerStats = Readonly<Record<string, unknown>>;

/** One heartbeat's figures for the stream, from the process that runs it (the host reads them out of the heartbeat, once). */
export interface FrameStats {
  /** The process the figures come from: a new one counts its frames from zero again. */
  pid?: number;
  /** Frames the process output since it started (the stream machine adds those of earlier processes). */
  frameCount: number;
  fpsIn: number;
  fpsOut: number;
  latencyP50: number;
  latencyP99: number;
  /** Frames dropped in this heartbeat's window (the stream machine keeps the total). */
  drops: number;
  /** The window's drops by reason and latencies (passed on to the host's metrics, not kept). */
  dropsByReason?: Readonly<Record<string, number>>;
  latenciesMs?: readonly number[];
  /** Where a restarted process resumes (the last frame output, and its input's pts). */
  lastOutputPts?: string;
  lastInputPts?: string;
}

/** What a heartbeat adds to the bare sign of life (the stream machine's business, carried through). */
export interface HeartbeatNews {
  frames?: FrameStats;
  /** The input is over (repeated by every heartbeat once it is: an `input_ended` event may be lost). */
  inputEnded?: 'input_ended' | 'input_timeout';
}

export interface WorkerInput {
  streamId: string;
  workerId: string;
  prompts: StreamPrompt[];
  width: number;
  height: number;
  limits: WorkerLimits;
  /** Clock and random source; defaults to Date.now / Math.random. */
  env?: Partial<MachineEnv>;
}

/** Events the worker accepts (EXIT / HEARTBEAT / STATS normally come from `watchWorker`). */
export type WorkerEvent =
  | ({ type: 'HEARTBEAT'; stats?: WorkerStats } & HeartbeatNews)
  | { type: 'STATS'; stats: WorkerStats }
  | { type: 'EXIT'; code: number | null; signal: string | null }
  | { type: 'STOP' }
  | { type: 'RESTART' }
  /** The host's bus connection was lost / is back (from `watchBus`). */
  | { type: 'BUS_DOWN' }
  | { type: 'BUS_UP' }
  | { type: 'UPDATE_PROMPTS'; prompts: StreamPrompt[]; width?: number; height?: number; warmup?: boolean };

/**
 * What a worker tells its parent (sendParent, when it has one) and its observers (`actor.on(type)`).
 * Every notification names the worker, so one stream can supervise several.
 */
export type WorkerNotification =
  | { type: 'WORKER_WARMING'; workerId: string; pid: number | undefined }
  | { type: 'WORKER_RUNNING'; workerId: string; pid: number | undefined }
  | { type: 'WORKER_RESTARTING'; workerId: string; reason: string; restartCount: number; delayMs: number }
  | { type: 'WORKER_FAILED'; workerId: string; reason: string; restartCount: number }
  | { type: 'WORKER_TERMINATED'; workerId: string }
  | ({ type: 'WORKER_STATS'; workerId: string; stats: WorkerStats } & HeartbeatNews)
  | { type: 'WORKER_PROMPTS_APPLIED'; workerId: string; warmupPerformed: boolean; error?: string; rejected?: boolean };

export interface WorkerContext extends Omit<WorkerInput, 'env'> {
  env: MachineEnv;
  /** PID of the live process; cleared once it exited or was reaped. */
  pid: number | undefined;
  /** When the current process joined the bus. */
  startedAt: number | undefined;
  /** Restarts of any kind over the actor's life (the status `restart_count`). */
  restartCount: number;
  /** Times of crash restarts inside the window; bounded by maxRestarts + 1. */
  recentRestarts: number[];
  /** Delay of the restart in progress (a named delay reads it). */
  backoffMs: number;
  lastError: string | undefined;
  failReason: string | undefined;
  lastStats: WorkerStats | undefined;
  lastHeartbeatAt: number | undefined;
  /** The host's bus connection, as BUS_DOWN / BUS_UP last said (up until told otherwise). */
  busUp: boolean;
  /** Prompts waiting for `applyPrompts` (a prompt swap without re-warm). */
  pendingPrompts: StreamPrompt[] | undefined;
  /** A prompt update arrived that the next warmup will apply and must be answered. */
  promptUpdateWarmupPending: boolean;
}

// Inputs of the host-provided effects.
export interface SpawnWorkerInput {
  streamId: string;
  workerId: string;
  prompts: StreamPrompt[];
  width: number;
  height: number;
}
export interface SpawnWorkerOutput {
  pid: number;
}
export interface WarmupWorkerInput extends SpawnWorkerInput {
  pid: number | undefined;
}
export interface ApplyPromptsInput {
  streamId: string;
  workerId: string;
  pid: number | undefined;
  prompts: StreamPrompt[];
}
export interface WatchWorkerInput {
  streamId: string;
  workerId: string;
  pid: number | undefined;
}
export interface WatchBusInput {
  streamId: string;
  workerId: string;
}
export interface StopWorkerInput {
  streamId: string;
  workerId: string;
  /** Undefined when no process is alive: the host only cleans up. */
  pid: number | undefined;
}

const notProvided = (name: string) => () => {
  throw new ActorNotProvidedError(name);
};

/** Reason text of a process exit, as kept in `lastError` / `failReason`. */
export function exitReason(code: number | null, signal: string | null): string {
  if (code !== null) return `exited with code ${code}`;
  return signal !== null ? `killed by signal ${signal}` : 'exited';
}

type Crash = { reason: string };

const workerSetup = setup({
  types: {
    context: {} as WorkerContext,
    events: {} as WorkerEvent,
    input: {} as WorkerInput,
    emitted: {} as WorkerNotification,
  },
  actors: {
    /** Fork the worker process; resolve with its pid once it joined the bus. Honour the AbortSignal (kill it). */
    spawnWorker: fromPromise<SpawnWorkerOutput, SpawnWorkerInput>(async () => notProvided('spawnWorker')()),
    /** Send prompts and size to the process; resolve once it compiled and warmed the graph. */
    warmupWorker: fromPromise<void, WarmupWorkerInput>(async () => notProvided('warmupWorker')()),
    /** Swap prompts in a running process (compile beside the old graph, swap at a frame boundary). */
    applyPrompts: fromPromise<void, ApplyPromptsInput>(async () => notProvided('applyPrompts')()),
    /** Listen to the process: send back EXIT, HEARTBEAT and STATS; return the teardown. */
    watchWorker: fromCallback<WorkerEvent, WatchWorkerInput>(() => notProvided('watchWorker')()),
    /** Graceful stop, then kill; resolve once the process is gone (at once when pid is undefined). */
    stopWorker: fromPromise<void, StopWorkerInput>(async () => notProvided('stopWorker')()),
    /** Send back BUS_DOWN / BUS_UP as the host's bus connection changes (BUS_DOWN at once if it is
     *  down now). Runs for the actor's whole life. Default: a bus that is always up (sends nothing). */
    watchBus: fromCallback<WorkerEvent, WatchBusInput>(() => undefined),
  },
  delays: {
    startTimeout: ({ context }) => context.limits.startTimeoutMs,
    heartbeatTimeout: ({ context }) => heartbeatTimeoutMs(context.limits),
    restartBackoff: ({ context }) => context.backoffMs,
  },
  guards: {
    processAlive: ({ context }) => context.pid !== undefined,
    busDown: ({ context }) => !context.busUp,
    noBackoff: ({ context }) => context.backoffMs <= 0,
    /** This crash would be restart number maxRestarts + 1 inside the window. */
    restartBudgetExhausted: ({ context }) =>
      restartsInWindow(context.recentRestarts, context.env.now(), context.limits).length >= context.limits.maxRestarts,
    needsRewarm: ({ context, event }) => {
      if (event.type !== 'UPDATE_PROMPTS') return false;
      return (
        event.warmup === true ||
        (event.width !== undefined && event.width !== context.width) ||
        (event.height !== undefined && event.height !== context.height)
      );
    },
    promptUpdateWarmupPending: ({ context }) => context.promptUpdateWarmupPending,
  },
  actions: {
    notify: enqueueActions(({ enqueue, self }, n: WorkerNotification) => {
      // A worker runs as a child of its stream (sendParent) or alone under the host (emit only).
      if (self._parent) enqueue.sendParent(n);
      enqueue.emit(n);
    }),
    recordCrash: assign(({ context }, p: Crash) => {
      const now = context.env.now();
      const recent = restartsInWindow(context.recentRestarts, now, context.limits);
      return {
        lastError: p.reason,
        backoffMs: backoffDelayMs(context.limits, recent.length, context.env.random),
        recentRestarts: [...recent, now],
        restartCount: context.restartCount + 1,
      };
    }),
    recordManualRestart: assign(({ context }) => ({
      lastError: 'manual restart',
      backoffMs: 0,
      restartCount: context.restartCount + 1,
    })),
    recordFailure: assign((_, p: Crash) => ({ lastError: p.reason, failReason: p.reason })),
    recordSpawned: assign(({ context }, p: SpawnWorkerOutput) => ({ pid: p.pid, startedAt: context.env.now() })),
    clearProcess: assign({ pid: undefined, startedAt: undefined }),
    recordExit: assign({ pid: undefined }),
    recordStats: assign(({ context }, p: { stats: WorkerStats | undefined; heartbeat: boolean }) => ({
      lastStats: p.stats ?? context.lastStats,
      lastHeartbeatAt: p.heartbeat ? context.env.now() : context.lastHeartbeatAt,
    })),
    storePromptsForWarmup: assign(({ context, event }) => {
      if (event.type !== 'UPDATE_PROMPTS') return {};
      return {
        prompts: event.prompts,
        width: event.width ?? context.width,
        height: event.height ?? context.height,
        promptUpdateWarmupPending: true,
        pendingPrompts: undefined,
      };
    }),
    storePendingPrompts: assign(({ event }) => (event.type === 'UPDATE_PROMPTS' ? { pendingPrompts: event.prompts } : {})),
    commitPendingPrompts: assign(({ context }) => ({
      prompts: context.pendingPrompts ?? context.prompts,
      pendingPrompts: undefined,
    })),
    dropPendingPrompts: assign({ pendingPrompts: undefined }),
    clearWarmupPending: assign({ promptUpdateWarmupPending: false }),
    recordBusDown: assign({ busUp: false }),
    recordBusUp: assign({ busUp: true }),
  },
});

const ids = ({ context }: { context: WorkerContext }) => ({ streamId: context.streamId, workerId: context.workerId });

/** Transitions shared by every way a live or starting worker can crash. */
function crash(reason: (args: { context: WorkerContext; event: any }) => string) {
  return [
    {
      guard: 'restartBudgetExhausted' as const,
      target: '#worker.failed',
      actions: { type: 'recordFailure' as const, params: (a: { context: WorkerContext; event: any }) => ({ reason: reason(a) }) },
    },
    {
      target: '#worker.restarting',
      actions: { type: 'recordCrash' as const, params: (a: { context: WorkerContext; event: any }) => ({ reason: reason(a) }) },
    },
  ];
}

const onExit = crash(({ event }) => exitReason(event.code, event.signal));
// An EXIT also means there is no process left to reap.
const exitTransitions = onExit.map((t) => ({ ...t, actions: [{ type: 'recordExit' as const }, t.actions] }));

const restartingNotice = (c: WorkerContext): WorkerNotification => ({
  type: 'WORKER_RESTARTING',
  workerId: c.workerId,
  reason: c.lastError ?? 'restart',
  restartCount: c.restartCount,
  delayMs: c.backoffMs,
});
const failedNotice = (c: WorkerContext): WorkerNotification => ({
  type: 'WORKER_FAILED',
  workerId: c.workerId,
  reason: c.failReason ?? 'failed',
  restartCount: c.restartCount,
});

/** Reaping a process: kill it if one is alive (stopWorker), then `done`. */
function reapStates<D extends object>(done: D) {
  return {
    checking: { always: [{ guard: 'processAlive' as const, target: 'killing' }, { target: 'done' }] },
    killing: {
      invoke: {
        src: 'stopWorker' as const,
        input: ({ context }: { context: WorkerContext }) => ({ ...ids({ context }), pid: context.pid }),
        onDone: { target: 'done', actions: 'clearProcess' as const },
        onError: { target: 'done', actions: 'clearProcess' as const },
      },
    },
    done,
  };
}

export const workerMachine = workerSetup.createMachine({
  id: 'worker',
  context: ({ input }) => ({
    streamId: input.streamId,
    workerId: input.workerId,
    prompts: input.prompts,
    width: input.width,
    height: input.height,
    limits: input.limits,
    env: { ...defaultEnv, ...input.env },
    pid: undefined,
    startedAt: undefined,
    restartCount: 0,
    recentRestarts: [],
    backoffMs: 0,
    lastError: undefined,
    failReason: undefined,
    lastStats: undefined,
    lastHeartbeatAt: undefined,
    busUp: true,
    pendingPrompts: undefined,
    promptUpdateWarmupPending: false,
  }),
  initial: 'spawning',
  invoke: { src: 'watchBus', input: ids },
  on: {
    // States that act on the bus handle these themselves (and record them too).
    BUS_DOWN: { actions: 'recordBusDown' },
    BUS_UP: { actions: 'recordBusUp' },
    // Stats are worth keeping in any state; the liveness region below also restarts its timer.
    HEARTBEAT: {
      actions: [
        { type: 'recordStats', params: ({ event }) => ({ stats: event.stats, heartbeat: true }) },
      ],
    },
    STATS: {
      actions: [
        { type: 'recordStats', params: ({ event }) => ({ stats: event.stats, heartbeat: false }) },
        { type: 'notify', params: ({ context, event }) => ({ type: 'WORKER_STATS', workerId: context.workerId, stats: event.stats }) },
      ],
    },
  },
  states: {
    spawning: {
      invoke: {
        src: 'spawnWorker',
        input: ({ context }) => ({ ...ids({ context }), prompts: context.prompts, width: context.width, height: context.height }),
        onDone: { target: 'live', actions: { type: 'recordSpawned', params: ({ event }) => event.output } },
        onError: crash(({ event }) => `spawn failed: ${errorMessage(event.error)}`),
      },
      after: {
        startTimeout: crash(({ context }) => `spawn failed: timed out after ${context.limits.startTimeoutMs} ms`),
      },
      on: {
        STOP: '#worker.stopping',
        UPDATE_PROMPTS: { actions: 'storePromptsForWarmup' },
      },
    },
    live: {
      // One watcher for the whole life of the process: a re-warm does not lose exit events.
      invoke: {
        src: 'watchWorker',
        input: ({ context }) => ({ ...ids({ context }), pid: context.pid }),
        onError: crash(({ event }) => `watch failed: ${errorMessage(event.error)}`),
      },
      on: {
        EXIT: exitTransitions,
        STOP: '#worker.stopping',
        RESTART: { target: '#worker.restarting', actions: 'recordManualRestart' },
      },
      initial: 'warmup',
      states: {
        warmup: {
          entry: { type: 'notify', params: ({ context }) => ({ type: 'WORKER_WARMING', workerId: context.workerId, pid: context.pid }) },
          invoke: {
            src: 'warmupWorker',
            input: ({ context }) => ({
              ...ids({ context }),
              pid: context.pid,
              prompts: context.prompts,
              width: context.width,
              height: context.height,
            }),
            onDone: [
              {
                guard: 'promptUpdateWarmupPending',
                target: 'running',
                actions: [
                  'clearWarmupPending',
                  {
                    type: 'notify',
                    params: ({ context }) => ({ type: 'WORKER_PROMPTS_APPLIED', workerId: context.workerId, warmupPerformed: true }),
                  },
                ],
              },
              { target: 'running' },
            ],
            onError: crash(({ event }) => `warmup failed: ${errorMessage(event.error)}`),
          },
          after: {
            startTimeout: crash(({ context }) => `warmup failed: timed out after ${context.limits.startTimeoutMs} ms`),
          },
          on: {
            // Warm up again with what the update asks for; the process stays.
            UPDATE_PROMPTS: { target: 'warmup', reenter: true, actions: 'storePromptsForWarmup' },
          },
        },
        running: {
          type: 'parallel',
          entry: { type: 'notify', params: ({ context }) => ({ type: 'WORKER_RUNNING', workerId: context.workerId, pid: context.pid }) },
          states: {
            liveness: {
              initial: 'checking',
              states: {
                checking: { always: [{ guard: 'busDown', target: 'waitingForBus' }, { target: 'watching' }] },
                watching: {
                  after: { heartbeatTimeout: crash(() => 'heartbeat timeout') },
                  on: {
                    BUS_DOWN: { target: 'waitingForBus', actions: 'recordBusDown' },
                    HEARTBEAT: {
                      // Re-entering restarts the heartbeat timer.
                      target: 'watching',
                      reenter: true,
                      actions: [
                        { type: 'recordStats', params: ({ event }) => ({ stats: event.stats, heartbeat: true }) },
                        {
                          type: 'notify',
                          params: ({ context, event }) => ({
                            type: 'WORKER_STATS',
                            workerId: context.workerId,
                            stats: context.lastStats ?? {},
                            ...(event.frames ? { frames: event.frames } : {}),
                            ...(event.inputEnded ? { inputEnded: event.inputEnded } : {}),
                          }),
                        },
                      ],
                    },
                  },
                },
                // No heartbeat timer: their silence is the bus's. Back up, the timer starts afresh.
                waitingForBus: {
                  on: { BUS_UP: { target: 'watching', actions: 'recordBusUp' } },
                },
              },
            },
            prompts: {
              initial: 'idle',
              on: {
                UPDATE_PROMPTS: [
                  // A new size (or an explicit warmup) needs a re-warm, not a new process.
                  { guard: 'needsRewarm', target: '#worker.live.warmup', actions: 'storePromptsForWarmup' },
                  { target: '.applying', actions: 'storePendingPrompts' },
                ],
              },
              states: {
                idle: {},
                applying: {
                  invoke: {
                    src: 'applyPrompts',
                    input: ({ context }) => ({ ...ids({ context }), pid: context.pid, prompts: context.pendingPrompts ?? context.prompts }),
                    onDone: {
                      target: 'idle',
                      actions: [
                        'commitPendingPrompts',
                        {
                          type: 'notify',
                          params: ({ context }) => ({ type: 'WORKER_PROMPTS_APPLIED', workerId: context.workerId, warmupPerformed: false }),
                        },
                      ],
                    },
                    // The process keeps the graph it had; the caller learns why.
                    onError: {
                      target: 'idle',
                      actions: [
                        'dropPendingPrompts',
                        {
                          type: 'notify',
                          params: ({ context, event }) => ({
                            type: 'WORKER_PROMPTS_APPLIED',
                            workerId: context.workerId,
                            warmupPerformed: false,
                            error: errorMessage(event.error),
                            ...(isPromptRejection(event.error) ? { rejected: true } : {}),
                          }),
                        },
                      ],
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
    restarting: {
      type: 'parallel',
      entry: { type: 'notify', params: ({ context }) => restartingNotice(context) },
      // Reaping the old process and the backoff run side by side; both must finish.
      states: {
        reap: { initial: 'checking', states: reapStates({ type: 'final' as const }) },
        backoff: {
          initial: 'waiting',
          states: {
            waiting: {
              always: { guard: 'noBackoff', target: 'done' },
              after: { restartBackoff: 'done' },
            },
            done: { type: 'final' },
          },
        },
      },
      onDone: [
        { guard: 'busDown', target: 'waitingForBus', actions: 'clearProcess' },
        { target: 'spawning', actions: 'clearProcess' },
      ],
      on: {
        EXIT: { actions: 'recordExit' },
        STOP: '#worker.stopping',
        UPDATE_PROMPTS: { actions: 'storePromptsForWarmup' },
      },
    },
    // Reaped and backed off, but a new process could not join the bus: respawn once it is back.
    waitingForBus: {
      on: {
        BUS_UP: { target: 'spawning', actions: 'recordBusUp' },
        STOP: '#worker.stopping',
        UPDATE_PROMPTS: { actions: 'storePromptsForWarmup' },
      },
    },
    failed: {
      entry: { type: 'notify', params: ({ context }) => failedNotice(context) },
      // Not final: the (possibly hung) process is reaped, then the worker waits for STOP.
      initial: 'checking',
      states: reapStates({}),
      on: { STOP: '#worker.stopping' },
    },
    stopping: {
      invoke: {
        src: 'stopWorker',
        input: ({ context }) => ({ ...ids({ context }), pid: context.pid }),
        onDone: { target: 'terminated', actions: 'clearProcess' },
        onError: {
          target: 'terminated',
          actions: [assign({ lastError: ({ event }) => `stop failed: ${errorMessage(event.error)}` }), 'clearProcess'],
        },
      },
    },
    terminated: {
      type: 'final',
      entry: { type: 'notify', params: ({ context }) => ({ type: 'WORKER_TERMINATED', workerId: context.workerId }) },
    },
  },
});

export type WorkerMachine = typeof workerMachine;
export type WorkerSnapshot = SnapshotFrom<WorkerMachine>;

/** Top-level state names, as the status JSON shows them. */
export type WorkerStateName = 'spawning' | 'warmup' | 'running' | 'restarting' | 'failed' | 'stopping' | 'terminated';

export function workerStateName(snapshot: WorkerSnapshot): WorkerStateName {
  if (snapshot.matches({ live: 'warmup' })) return 'warmup';
  if (snapshot.matches({ live: 'running' })) return 'running';
  // Between two processes, as during the backoff: the API's word for it is `restarting`.
  if (snapshot.matches('waitingForBus')) return 'restarting';
  const v = snapshot.value;
  return (typeof v === 'string' ? v : Object.keys(v)[0]) as WorkerStateName;
}
