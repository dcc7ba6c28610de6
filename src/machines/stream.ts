// The stream machine: one actor per stream. It spawns its worker actor(s) through the named actor
// `workerLogic` (dedicated: one; prompt_worker: one per prompt) or `attachSharedWorker` (shared: one
// worker actor on the node's shared process; the host provides the same worker machine, so
// supervision is written once), follows their WORKER_* notifications (a heartbeat's figures ride on
// WORKER_STATS), routes prompt updates, tells the process of prompt switches through `switchPrompt`,
// counts frames across processes, drains after the input's end, and keeps everything the status JSON
// shows. Pure definition: every effect lives in the host (src/actors).
//
//   spawning -> warmup -> running (flowing | degraded) <-> restarting
//   STOP / INPUT_ENDED -> stopping -> terminated;  OUTPUT_FAILED / a failed worker -> stopping -> failed
import { and, assign, enqueueActions, fromCallback, setup, type ActorLogic, type ActorSystem, type SnapshotFrom } from 'xstate';
import { ActorNotProvidedError, errorMessage } from './errors.ts';
import type { StreamSpec } from '../stream-spec.ts';
import { defaultEnv, type MachineEnv, type WorkerLimits } from './limits.ts';
import {
  workerMachine,
  type FrameStats,
  type StreamPrompt,
  type WorkerEvent,
  type WorkerInput,
  type WorkerNotification,
  type WorkerStats,
} from './worker.ts';

/** What the host hands a stream actor: the stream's spec (src/stream-spec.ts), its limits and clock. */
export type StreamInput = StreamSpec & {
  /** Defaults to the first prompt. */
  activePromptId?: string;
  limits: WorkerLimits;
  /** Where an earlier owner's output got to (a stream taken over from another node): its first process resumes after it. */
  resumeAt?: { outputPts: string; inputPts: string | undefined };
  /** Clock and random source; defaults to Date.now / Math.random. */
  env?: Partial<MachineEnv>;
};


/** The stream's latest rates (from its stats worker's last heartbeat). */
export type StreamRates = Pick<FrameStats, 'fpsIn' | 'fpsOut' | 'latencyP50' | 'latencyP99'>;

/** Frames counted across the stream's processes (a restarted process counts from zero). */
interface FrameCounter {
  pid: number | undefined;
  /** The current process's own count. */
  processFrames: number;
  /** Frames of the processes before it. */
  base: number;
  drops: number;
}

export type StreamEvent =
  | { type: 'UPDATE_PROMPTS'; prompts: StreamPrompt[]; width?: number; height?: number; warmup?: boolean; requestId?: string }
  | { type: 'SWITCH_PROMPT'; promptId: string }
  /** From `switchPrompt`: the stream's process routes frames to that prompt's inference worker now (or could not). */
  | { type: 'PROMPT_SWITCH_DONE'; promptId: string; by: SwitchPromptCommand['by']; error?: string }
  | { type: 'RESTART_WORKER' }
  | { type: 'STOP' }
  | { type: 'INPUT_ENDED'; reason: 'input_ended' | 'input_timeout' }
  | { type: 'INPUT_STALLED' }
  | { type: 'INPUT_RESUMED' }
  | { type: 'OUTPUT_FAILED'; reason: string }
  /** The stats worker's figures (raised from its WORKER_STATS: a heartbeat enters the machine once). */
  | ({ type: 'FRAME_STATS' } & FrameStats)
  | WorkerNotification
  // A spawned worker actor that errored (xstate sends these to the parent).
  | { type: `xstate.error.actor.${string}`; error: unknown }
  // A spawned worker actor that reached its final state.
  | { type: `xstate.done.actor.${string}`; output?: unknown };

const ACTOR_ERROR = 'xstate.error.actor.';
const ACTOR_DONE = 'xstate.done.actor.';

/** Answers the stream emits (`actor.on(type, ...)`), for requests that wait for an outcome. */
export type StreamEmitted =
  | { type: 'PROMPTS_UPDATED'; requestId?: string; promptsCount: number; warmupPerformed: boolean; error?: string; rejected?: boolean }
  | { type: 'PROMPT_SWITCHED'; activePromptId: string }
  /** A heartbeat's figures were counted: `frames` as the process sent them, the totals across processes. */
  | { type: 'FRAMES_COUNTED'; frames: FrameStats; frameCount: number; drops: number }
  | { type: 'PROMPT_SWITCH_FAILED'; promptId: string; error: string }
  | { type: 'PROMPT_SWITCH_REJECTED'; promptId: string; code: 'NOT_PROMPT_WORKER' | 'PROMPT_NOT_FOUND' | 'STREAM_NOT_FOUND' };

const STREAM_ENDING = 'stream is ending';

export type WorkerRecordState = 'spawning' | 'warmup' | 'running' | 'restarting' | 'failed' | 'terminated';

export interface WorkerRecord {
  workerId: string;
  /** prompt_worker: the prompt this worker runs. */
  promptId?: string;
  state: WorkerRecordState;
  pid: number | undefined;
  restartCount: number;
  lastError?: string;
  stats?: WorkerStats;
  /** Asked to stop because its prompt was removed; no longer counts for the stream's state. */
  retiring?: boolean;
  /**
   * The child actor is gone: a worker machine once it reached its final state (its done event follows
   * WORKER_TERMINATED); the shared attachment already at WORKER_TERMINATED (any logic may serve it,
   * one that never completes too).
   */
  gone: boolean;
}

interface PendingPromptUpdate {
  requestId?: string;
  promptsCount: number;
  /** workerId -> what it still owes: an applied answer, or (a new worker) reaching running. */
  waiting: Record<string, 'applied' | 'running'>;
  warmupPerformed: boolean;
  errors: string[];
  /** A worker refused the prompts themselves (invalid or not compilable): the caller's fault. */
  rejected?: boolean;
  /** What the stream ran before (one worker holds every prompt): restored when the worker refuses. */
  previous?: Pick<StreamContext, 'prompts' | 'width' | 'height' | 'activePromptId'>;
  /** prompt_worker: the active prompt was removed; the process switches to this one once the update settled. */
  switchTo?: string;
}

/** The spec as the machine keeps it (src/stream-spec.ts: every field present, absent URLs undefined). */
export type StreamSpecFields = Omit<StreamSpec, 'prompts' | 'controlUrl' | 'eventsUrl'> & {
  controlUrl: string | undefined;
  eventsUrl: string | undefined;
};

export interface StreamContext extends StreamSpecFields {
  prompts: StreamPrompt[];
  activePromptId: string | undefined;
  limits: WorkerLimits;
  env: MachineEnv;
  workers: Record<string, WorkerRecord>;
  /** Next index for a worker id (`w<n>`); ids are never reused within a stream. */
  nextWorker: number;
  /** Frames and drops across the stream's processes (the status's frame count and drops). */
  frames: FrameCounter;
  /** The latest rates; undefined until the first FRAME_STATS. */
  stats: StreamRates | undefined;
  /** Where a restarted process resumes: the last output frame's pts and its input's (from the stats). */
  resumeAt: { outputPts: string; inputPts: string | undefined } | undefined;
  /** Why the stream will end once its last frames are out (set while `draining`). */
  pendingEnd: 'input_ended' | 'input_timeout' | undefined;
  restartCount: number;
  degraded: boolean;
  degradedSince: number | undefined;
  endReason: 'input_ended' | 'input_timeout' | 'stopped' | undefined;
  failReason: string | undefined;
  promptUpdate: PendingPromptUpdate | undefined;
  lastPromptUpdate: { requestId?: string; warmupPerformed: boolean; error?: string; at: number } | undefined;
  createdAt: number;
  runningSince: number | undefined;
  endedAt: number | undefined;
  updatedAt: number;
}

/**
 * Input of `attachSharedWorker`: a worker actor's (the host provides the worker machine, its effects
 * on the node's shared process). `workerId` is the id its WORKER_* notifications carry.
 */
export type SharedWorkerInput = WorkerInput;
/** Any logic that takes a worker actor's input and events (the host's: the worker machine). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a machine's snapshot or a callback's
type SharedWorkerLogic = ActorLogic<any, WorkerEvent, SharedWorkerInput, ActorSystem<any>, any>;

export const SHARED_WORKER_ID = 'shared';

/** Input of `switchPrompt`: the stream whose process it tells. */
export interface SwitchPromptInput {
  streamId: string;
  architecture: StreamSpec['architecture'];
}
/** What the stream machine sends `switchPrompt`. */
export type SwitchPromptCommand = {
  type: 'SWITCH_PROMPT';
  promptId: string;
  /** A caller's SWITCH_PROMPT (answered with PROMPT_SWITCHED / PROMPT_SWITCH_FAILED), or a prompt update that removed the active prompt. */
  by: 'request' | 'prompt_update';
};
/** The id of the stream's `switchPrompt` actor (not a worker). */
export const SWITCH_PROMPT_ID = 'switchPrompt';

const isActive = (w: WorkerRecord) => !w.retiring && w.state !== 'terminated';
const activeWorkers = (c: StreamContext) => Object.values(c.workers).filter(isActive);

const streamSetup = setup({
  types: {
    context: {} as StreamContext,
    events: {} as StreamEvent,
    input: {} as StreamInput,
    emitted: {} as StreamEmitted,
  },
  actors: {
    /** One worker actor (the worker machine with the host's effects provided). */
    workerLogic: workerMachine,
    /**
     * Attach to the node's shared worker: send back WORKER_* notifications with `input.workerId`;
     * accept UPDATE_PROMPTS (answer WORKER_PROMPTS_APPLIED), STOP (detach, answer WORKER_TERMINATED).
     */
    attachSharedWorker: fromCallback<WorkerEvent, SharedWorkerInput>(() => {
      throw new ActorNotProvidedError('attachSharedWorker');
    }) as SharedWorkerLogic,
    /**
     * Tells the stream's process which prompt's output to send (prompt_worker): accepts SWITCH_PROMPT,
     * answers each with PROMPT_SWITCH_DONE in order. Runs for the stream's life. Default: a stream with
     * no process to tell (every switch is done at once).
     */
    switchPrompt: fromCallback<SwitchPromptCommand, SwitchPromptInput>(({ receive, sendBack }) => {
      receive((e) => sendBack({ type: 'PROMPT_SWITCH_DONE', promptId: e.promptId, by: e.by }));
    }),
  },
  delays: {
    inputEndDrain: ({ context }) => context.limits.inputEndDrainMs ?? 0,
  },
  guards: {
    nothingToDrain: ({ context, event }) => (event.type === 'INPUT_ENDED' && event.reason === 'input_timeout') || context.stats === undefined,
    outputStopped: ({ event }) => event.type === 'FRAME_STATS' && event.fpsOut === 0,
    allWorkersRunning: ({ context }) => {
      const ws = activeWorkers(context);
      return ws.length > 0 && ws.every((w) => w.state === 'running');
    },
    anyWorkerWarming: ({ context }) => activeWorkers(context).some((w) => w.state === 'warmup' || w.state === 'running'),
    anyWorkerRestarting: ({ context }) => activeWorkers(context).some((w) => w.state === 'restarting'),
    allWorkersGone: ({ context }) => Object.values(context.workers).every((w) => w.gone),
    hasFailReason: ({ context }) => context.failReason !== undefined,
    inputStalled: ({ context }) => context.degraded,
    inputFlowing: ({ context }) => !context.degraded,
    hasPrompts: ({ event }) => event.type === 'UPDATE_PROMPTS' && event.prompts.length > 0,
    isPromptWorker: ({ context }) => context.architecture === 'prompt_worker',
    /** The worker a notification (or actor error) comes from was asked to stop. */
    notifierRetiring: ({ context, event }) => {
      const id = 'workerId' in event ? event.workerId : event.type.startsWith(ACTOR_ERROR) ? event.type.slice(ACTOR_ERROR.length) : '';
      return context.workers[id]?.retiring === true;
    },
    /** The notification is from the worker whose figures are the stream's (every worker reports the same stream). */
    fromStatsWorker: ({ context, event }) => 'workerId' in event && event.workerId === statsWorker(context),
    knownPrompt: ({ context, event }) => event.type === 'SWITCH_PROMPT' && context.prompts.some((p) => p.id === event.promptId),
  },
  actions: {
    spawnInitialWorkers: enqueueActions(({ context, enqueue }) => {
      if (context.architecture === 'shared') {
        enqueue.spawnChild('attachSharedWorker', { id: SHARED_WORKER_ID, input: workerInput(context, SHARED_WORKER_ID, context.prompts) });
        enqueue.assign({ workers: { [SHARED_WORKER_ID]: newRecord(SHARED_WORKER_ID) } });
        return;
      }
      const groups = context.architecture === 'prompt_worker' ? context.prompts.map((p) => [p]) : [context.prompts];
      let next = context.nextWorker;
      const workers: Record<string, WorkerRecord> = {};
      for (const prompts of groups) {
        const workerId = `w${next++}`;
        const promptId = context.architecture === 'prompt_worker' ? prompts[0]?.id : undefined;
        enqueue.spawnChild('workerLogic', { id: workerId, input: workerInput(context, workerId, prompts) });
        workers[workerId] = newRecord(workerId, promptId);
      }
      enqueue.assign({ workers, nextWorker: next });
    }),
    recordNotification: assign(({ context, event }) => {
      const now = context.env.now();
      if (!event.type.startsWith('WORKER_') || !('workerId' in event)) return {};
      const n = event as WorkerNotification;
      const w = context.workers[n.workerId];
      if (!w) return {};
      let next: WorkerRecord = w;
      let restartCount = context.restartCount;
      switch (n.type) {
        case 'WORKER_WARMING':
          next = { ...w, state: 'warmup', pid: n.pid };
          break;
        case 'WORKER_RUNNING':
          next = { ...w, state: 'running', pid: n.pid };
          break;
        case 'WORKER_RESTARTING':
          next = { ...w, state: 'restarting', restartCount: n.restartCount, lastError: n.reason };
          restartCount += 1;
          break;
        case 'WORKER_FAILED':
          next = { ...w, state: 'failed', lastError: n.reason, pid: undefined };
          break;
        case 'WORKER_TERMINATED':
          next = { ...w, state: 'terminated', pid: undefined, gone: w.gone || w.workerId === SHARED_WORKER_ID };
          break;
        case 'WORKER_STATS':
          next = { ...w, stats: n.stats };
          break;
        case 'WORKER_PROMPTS_APPLIED':
          break;
      }
      return {
        workers: { ...context.workers, [n.workerId]: next },
        restartCount,
        promptUpdate: settleWaiting(context.promptUpdate, n),
        updatedAt: now,
      };
    }),
    recordActorDone: assign(({ context, event }) => {
      if (!event.type.startsWith(ACTOR_DONE)) return {};
      const workerId = event.type.slice(ACTOR_DONE.length);
      const w = context.workers[workerId];
      if (!w) return {};
      return { workers: { ...context.workers, [workerId]: { ...w, state: 'terminated' as const, pid: undefined, gone: true } } };
    }),
    recordActorError: assign(({ context, event }) => {
      // A worker actor that crashed outright (e.g. an effect threw synchronously) is gone.
      if (!event.type.startsWith(ACTOR_ERROR) || !('error' in event)) return {};
      const workerId = event.type.slice(ACTOR_ERROR.length);
      const w = context.workers[workerId];
      if (!w) return {};
      const reason = errorMessage(event.error);
      return {
        workers: { ...context.workers, [workerId]: { ...w, state: 'terminated' as const, pid: undefined, lastError: reason, gone: true } },
        failReason: context.failReason ?? (w.retiring ? undefined : reason),
        promptUpdate: settleWaiting(context.promptUpdate, { type: 'WORKER_TERMINATED', workerId }),
      };
    }),
    /** Answer a finished prompt update once no worker owes anything. */
    answerPromptUpdate: enqueueActions(({ context, enqueue }) => {
      const u = context.promptUpdate;
      if (!u || Object.keys(u.waiting).length > 0) return;
      const error = u.errors.length > 0 ? u.errors.join('; ') : undefined;
      enqueue.emit({
        type: 'PROMPTS_UPDATED',
        ...(u.requestId !== undefined ? { requestId: u.requestId } : {}),
        promptsCount: u.promptsCount,
        warmupPerformed: u.warmupPerformed,
        ...(error !== undefined ? { error } : {}),
        ...(u.rejected ? { rejected: true } : {}),
      });
      // The worker kept the graph it had: so does the stream's record of it.
      if (u.rejected && u.previous) enqueue.assign({ ...u.previous });
      if (u.switchTo !== undefined) enqueue.sendTo(SWITCH_PROMPT_ID, { type: 'SWITCH_PROMPT', promptId: u.switchTo, by: 'prompt_update' });
      enqueue.assign({
        promptUpdate: undefined,
        lastPromptUpdate: {
          ...(u.requestId !== undefined ? { requestId: u.requestId } : {}),
          warmupPerformed: u.warmupPerformed,
          ...(error !== undefined ? { error } : {}),
          at: context.env.now(),
        },
      });
    }),
    routePromptUpdate: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'UPDATE_PROMPTS') return;
      const width = event.width ?? context.width;
      const height = event.height ?? context.height;
      const waiting: Record<string, 'applied' | 'running'> = {};
      const errors: string[] = [];
      // A newer update supersedes one still in flight: answer the old one now.
      if (context.promptUpdate) {
        enqueue.emit({
          type: 'PROMPTS_UPDATED',
          ...(context.promptUpdate.requestId !== undefined ? { requestId: context.promptUpdate.requestId } : {}),
          promptsCount: context.promptUpdate.promptsCount,
          warmupPerformed: context.promptUpdate.warmupPerformed,
          error: 'superseded by a newer prompt update',
        });
      }
      const forward = { type: 'UPDATE_PROMPTS' as const, width, height, ...(event.warmup ? { warmup: true } : {}) };
      let workers = { ...context.workers };
      let nextWorker = context.nextWorker;
      let warmupPerformed = false;

      if (context.architecture === 'prompt_worker') {
        const sizeChanged = width !== context.width || height !== context.height || event.warmup === true;
        const wanted = new Map(event.prompts.map((p) => [p.id, p]));
        for (const w of Object.values(workers)) {
          if (!isActive(w)) continue;
          if (w.promptId === undefined || !wanted.has(w.promptId)) {
            enqueue.sendTo(w.workerId, { type: 'STOP' });
            workers[w.workerId] = { ...w, retiring: true };
          } else if (sizeChanged) {
            enqueue.sendTo(w.workerId, { ...forward, prompts: [wanted.get(w.promptId)!] });
            waiting[w.workerId] = 'applied';
          }
          wanted.delete(w.promptId ?? '');
        }
        for (const p of wanted.values()) {
          const workerId = `w${nextWorker++}`;
          enqueue.spawnChild('workerLogic', {
            id: workerId,
            input: workerInput({ ...context, width, height }, workerId, [p]),
          });
          workers[workerId] = newRecord(workerId, p.id);
          waiting[workerId] = 'running';
          warmupPerformed = true;
        }
      } else {
        const target = context.architecture === 'shared' ? SHARED_WORKER_ID : firstActiveWorker(context);
        if (target) {
          enqueue.sendTo(target, { ...forward, prompts: event.prompts });
          waiting[target] = 'applied';
        } else {
          errors.push('no worker to apply the prompts');
        }
      }
      const activePromptId = event.prompts.some((p) => p.id === context.activePromptId)
        ? context.activePromptId
        : event.prompts[0]?.id;
      enqueue.assign({
        prompts: event.prompts,
        width,
        height,
        activePromptId,
        workers,
        nextWorker,
        updatedAt: context.env.now(),
        promptUpdate: {
          ...(event.requestId !== undefined ? { requestId: event.requestId } : {}),
          promptsCount: event.prompts.length,
          waiting,
          warmupPerformed,
          errors,
          ...(context.architecture !== 'prompt_worker'
            ? { previous: { prompts: context.prompts, width: context.width, height: context.height, activePromptId: context.activePromptId } }
            : {}),
          // (A superseded update's switch is still owed.)
          ...(context.architecture === 'prompt_worker' &&
          activePromptId !== undefined &&
          (activePromptId !== context.activePromptId || context.promptUpdate?.switchTo !== undefined)
            ? { switchTo: activePromptId }
            : {}),
        },
      });
    }),
    rejectPromptUpdate: enqueueActions(({ event, enqueue }, p: { error: string }) => {
      if (event.type !== 'UPDATE_PROMPTS') return;
      enqueue.emit({
        type: 'PROMPTS_UPDATED',
        ...(event.requestId !== undefined ? { requestId: event.requestId } : {}),
        promptsCount: event.prompts.length,
        warmupPerformed: false,
        error: p.error,
      });
    }),
    /** A stream that ends answers the update still in flight instead of leaving its caller waiting. */
    abandonPromptUpdate: enqueueActions(({ context, enqueue }) => {
      const u = context.promptUpdate;
      if (!u) return;
      enqueue.emit({
        type: 'PROMPTS_UPDATED',
        ...(u.requestId !== undefined ? { requestId: u.requestId } : {}),
        promptsCount: u.promptsCount,
        warmupPerformed: u.warmupPerformed,
        error: STREAM_ENDING,
      });
      enqueue.assign({ promptUpdate: undefined });
    }),
    forwardSwitch: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'SWITCH_PROMPT') return;
      enqueue.sendTo(SWITCH_PROMPT_ID, { type: 'SWITCH_PROMPT', promptId: event.promptId, by: 'request' });
    }),
    recordSwitch: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'PROMPT_SWITCH_DONE') return;
      const answer = event.by === 'request';
      if (event.error !== undefined) {
        if (answer) enqueue.emit({ type: 'PROMPT_SWITCH_FAILED', promptId: event.promptId, error: event.error });
        return;
      }
      enqueue.assign({ activePromptId: event.promptId, updatedAt: context.env.now() });
      if (answer) enqueue.emit({ type: 'PROMPT_SWITCHED', activePromptId: event.promptId });
    }),
    rejectSwitch: enqueueActions(({ context, event, enqueue }, p: { ending: boolean }) => {
      if (event.type !== 'SWITCH_PROMPT') return;
      enqueue.emit({
        type: 'PROMPT_SWITCH_REJECTED',
        promptId: event.promptId,
        code: p.ending ? 'STREAM_NOT_FOUND' : context.architecture === 'prompt_worker' ? 'PROMPT_NOT_FOUND' : 'NOT_PROMPT_WORKER',
      });
    }),
    restartWorkers: enqueueActions(({ context, enqueue }) => {
      // The shared worker serves other streams too: one stream may not restart it.
      if (context.architecture === 'shared') return;
      for (const w of activeWorkers(context)) enqueue.sendTo(w.workerId, { type: 'RESTART' });
    }),
    stopWorkers: enqueueActions(({ context, enqueue }) => {
      for (const w of Object.values(context.workers)) {
        if (w.state !== 'terminated') enqueue.sendTo(w.workerId, { type: 'STOP' });
      }
    }),
    /** A heartbeat of the stats worker: the input's end first (so figures showing no more output end a drain at once), then its figures. */
    takeHeartbeat: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'WORKER_STATS') return;
      if (event.inputEnded) enqueue.raise({ type: 'INPUT_ENDED', reason: event.inputEnded });
      if (event.frames) enqueue.raise({ type: 'FRAME_STATS', ...event.frames });
    }),
    recordFrameStats: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'FRAME_STATS') return;
      const { type: _type, ...figures } = event;
      const { pid, frameCount, drops, fpsIn, fpsOut, latencyP50, latencyP99, lastOutputPts, lastInputPts } = figures;
      const f = context.frames;
      const base = pid !== undefined && f.pid !== undefined && pid !== f.pid ? f.base + f.processFrames : f.base;
      const frames: FrameCounter = { pid: pid ?? f.pid, processFrames: frameCount, base, drops: f.drops + drops };
      enqueue.assign({
        frames,
        stats: { fpsIn, fpsOut, latencyP50, latencyP99 },
        ...(lastOutputPts !== undefined ? { resumeAt: { outputPts: lastOutputPts, inputPts: lastInputPts } } : {}),
        updatedAt: context.env.now(),
      });
      enqueue.emit({ type: 'FRAMES_COUNTED', frames: figures, frameCount: framesOut({ frames }), drops: frames.drops });
    }),
    holdEnd: assign((_, p: { reason: 'input_ended' | 'input_timeout' }) => ({ pendingEnd: p.reason })),
    endAsPending: assign(({ context }) => ({ endReason: context.endReason ?? context.pendingEnd ?? 'input_ended' })),
    setDegraded: assign(({ context }, p: { degraded: boolean }) => ({
      degraded: p.degraded,
      degradedSince: p.degraded ? (context.degradedSince ?? context.env.now()) : undefined,
      updatedAt: context.env.now(),
    })),
    markRunning: assign(({ context }) => ({ runningSince: context.runningSince ?? context.env.now(), updatedAt: context.env.now() })),
    markEnded: assign(({ context }) => ({ endedAt: context.env.now(), updatedAt: context.env.now() })),
    endWith: assign(({ context }, p: { reason: 'input_ended' | 'input_timeout' | 'stopped' }) => ({
      endReason: context.endReason ?? p.reason,
    })),
    failWith: assign(({ context }, p: { reason: string }) => ({ failReason: context.failReason ?? p.reason })),
  },
});

function newRecord(workerId: string, promptId?: string): WorkerRecord {
  return { workerId, ...(promptId !== undefined ? { promptId } : {}), state: 'spawning', pid: undefined, restartCount: 0, gone: false };
}

function workerInput(c: StreamContext, workerId: string, prompts: StreamPrompt[]): WorkerInput {
  return { streamId: c.id, workerId, prompts, width: c.width, height: c.height, limits: c.limits, env: c.env };
}

/** The worker whose heartbeats give the stream's figures: prompt_worker, the active prompt's; otherwise the first. */
function statsWorker(c: StreamContext): string | undefined {
  const ws = activeWorkers(c);
  if (c.architecture === 'prompt_worker') return (ws.find((w) => w.promptId === c.activePromptId) ?? ws[0])?.workerId;
  return ws[0]?.workerId;
}

function firstActiveWorker(c: StreamContext): string | undefined {
  return activeWorkers(c).find((w) => w.state !== 'failed')?.workerId;
}

/** Removes what a worker owed a pending prompt update once its notification arrives. */
function settleWaiting(u: PendingPromptUpdate | undefined, n: WorkerNotification): PendingPromptUpdate | undefined {
  if (!u) return u;
  const owes = u.waiting[n.workerId];
  if (!owes) return u;
  const { [n.workerId]: _done, ...rest } = u.waiting;
  switch (n.type) {
    case 'WORKER_PROMPTS_APPLIED':
      if (owes !== 'applied') return u;
      return {
        ...u,
        waiting: rest,
        warmupPerformed: u.warmupPerformed || n.warmupPerformed,
        errors: n.error ? [...u.errors, `${n.workerId}: ${n.error}`] : u.errors,
        ...(n.rejected ? { rejected: true } : {}),
      };
    case 'WORKER_RUNNING':
      return owes === 'running' ? { ...u, waiting: rest } : u;
    case 'WORKER_FAILED':
      return { ...u, waiting: rest, errors: [...u.errors, `${n.workerId}: ${n.reason}`] };
    case 'WORKER_TERMINATED':
      return { ...u, waiting: rest, errors: [...u.errors, `${n.workerId}: terminated`] };
    default:
      return u;
  }
}

export const streamMachine = streamSetup.createMachine({
  id: 'stream',
  context: ({ input }) => {
    const env = { ...defaultEnv, ...input.env };
    const now = env.now();
    return {
      id: input.id,
      subscribeUrl: input.subscribeUrl,
      publishUrl: input.publishUrl,
      controlUrl: input.controlUrl,
      eventsUrl: input.eventsUrl,
      width: input.width,
      height: input.height,
      architecture: input.architecture,
      prompts: input.prompts,
      activePromptId: input.activePromptId ?? input.prompts[0]?.id,
      limits: input.limits,
      env,
      workers: {},
      nextWorker: 0,
      frames: { pid: undefined, processFrames: 0, base: 0, drops: 0 },
      stats: undefined,
      resumeAt: input.resumeAt,
      pendingEnd: undefined,
      restartCount: 0,
      degraded: false,
      degradedSince: undefined,
      endReason: undefined,
      failReason: undefined,
      promptUpdate: undefined,
      lastPromptUpdate: undefined,
      createdAt: now,
      runningSince: undefined,
      endedAt: undefined,
      updatedAt: now,
    };
  },
  entry: 'spawnInitialWorkers',
  invoke: { id: SWITCH_PROMPT_ID, src: 'switchPrompt', input: ({ context }) => ({ streamId: context.id, architecture: context.architecture }) },
  initial: 'active',
  on: {
    PROMPT_SWITCH_DONE: { actions: 'recordSwitch' },
    // Facts recorded in any state; the states below decide where they lead (eventless transitions).
    WORKER_WARMING: { actions: 'recordNotification' },
    WORKER_RUNNING: { actions: ['recordNotification', 'answerPromptUpdate'] },
    WORKER_RESTARTING: { actions: 'recordNotification' },
    WORKER_TERMINATED: { actions: ['recordNotification', 'answerPromptUpdate'] },
    WORKER_STATS: [{ guard: 'fromStatsWorker', actions: ['recordNotification', 'takeHeartbeat'] }, { actions: 'recordNotification' }],
    WORKER_PROMPTS_APPLIED: { actions: ['recordNotification', 'answerPromptUpdate'] },
    'xstate.done.actor.*': { actions: ['recordActorDone', 'answerPromptUpdate'] },
    FRAME_STATS: { actions: 'recordFrameStats' },
    INPUT_STALLED: { actions: { type: 'setDegraded', params: { degraded: true } } },
    INPUT_RESUMED: { actions: { type: 'setDegraded', params: { degraded: false } } },
  },
  states: {
    // Every state before the stream ends: they share the commands and the ways out.
    active: {
      initial: 'spawning',
      on: {
        UPDATE_PROMPTS: [
          { guard: 'hasPrompts', actions: ['routePromptUpdate', 'answerPromptUpdate'] },
          { actions: { type: 'rejectPromptUpdate', params: { error: 'no prompts given' } } },
        ],
        SWITCH_PROMPT: [
          { guard: and(['isPromptWorker', 'knownPrompt']), actions: 'forwardSwitch' },
          { actions: { type: 'rejectSwitch', params: { ending: false } } },
        ],
        RESTART_WORKER: { actions: 'restartWorkers' },
        STOP: { target: '#stream.stopping', actions: { type: 'endWith', params: { reason: 'stopped' } } },
        // The input is over, but frames of its last segment may still be in the graph or the encoder:
        // the stream drains first, unless nothing was ever output (or the input never came).
        INPUT_ENDED: [
          {
            guard: 'nothingToDrain',
            target: '#stream.stopping',
            actions: { type: 'endWith', params: ({ event }: { event: StreamEvent }) => ({ reason: event.type === 'INPUT_ENDED' ? event.reason : 'stopped' }) },
          },
          {
            target: '.draining',
            actions: { type: 'holdEnd', params: ({ event }: { event: StreamEvent }) => ({ reason: event.type === 'INPUT_ENDED' ? event.reason : 'input_ended' }) },
          },
        ],
        OUTPUT_FAILED: {
          target: '#stream.stopping',
          actions: { type: 'failWith', params: ({ event }: { event: StreamEvent }) => ({ reason: event.type === 'OUTPUT_FAILED' ? event.reason : 'output failed' }) },
      },
        WORKER_FAILED: [
          // A retiring worker (its prompt was removed) failing does not fail the stream.
          { guard: 'notifierRetiring', actions: ['recordNotification', 'answerPromptUpdate'] },
          {
            target: '#stream.stopping',
            actions: [
              'recordNotification',
              { type: 'failWith', params: ({ event }: { event: StreamEvent }) => ({ reason: event.type === 'WORKER_FAILED' ? event.reason : 'worker failed' }) },
              'answerPromptUpdate',
            ],
          },
        ],
        // A worker actor that errored outright (not a supervised crash) is gone: the stream cannot run on.
        'xstate.error.actor.*': [
          { guard: 'notifierRetiring', actions: ['recordActorError', 'answerPromptUpdate'] },
          { target: '#stream.stopping', actions: ['recordActorError', 'answerPromptUpdate'] },
        ],
      },
      states: {
        spawning: {
          always: [
            { guard: 'allWorkersRunning', target: 'running' },
            { guard: 'anyWorkerWarming', target: 'warmup' },
          ],
        },
        warmup: {
          always: [
            { guard: 'allWorkersRunning', target: 'running' },
            { guard: 'anyWorkerRestarting', target: 'restarting' },
          ],
        },
        running: {
          entry: 'markRunning',
          always: { guard: 'anyWorkerRestarting', target: 'restarting' },
          initial: 'flowing',
          states: {
            flowing: { always: { guard: 'inputStalled', target: 'degraded' } },
            // ai-runner's DEGRADED_INPUT: running, but no input is arriving.
            degraded: { always: { guard: 'inputFlowing', target: 'flowing' } },
          },
        },
        restarting: {
          always: { guard: 'allWorkersRunning', target: 'running' },
        },
        // Input over: ends on the first stats that show no output, or after limits.inputEndDrainMs.
        draining: {
          after: { inputEndDrain: { target: '#stream.stopping', actions: 'endAsPending' } },
          on: {
            INPUT_ENDED: {},
            FRAME_STATS: [
              { guard: 'outputStopped', target: '#stream.stopping', actions: ['recordFrameStats', 'endAsPending'] },
              { actions: 'recordFrameStats' },
            ],
          },
        },
      },
    },
    stopping: {
      entry: ['abandonPromptUpdate', 'stopWorkers'],
      always: [
        { guard: and(['allWorkersGone', 'hasFailReason']), target: 'failed' },
        { guard: 'allWorkersGone', target: 'terminated' },
      ],
      on: {
        'xstate.error.actor.*': { actions: ['recordActorError', 'answerPromptUpdate'] },
        WORKER_FAILED: { actions: ['recordNotification', 'answerPromptUpdate'] },
        UPDATE_PROMPTS: { actions: { type: 'rejectPromptUpdate', params: { error: STREAM_ENDING } } },
        SWITCH_PROMPT: { actions: { type: 'rejectSwitch', params: { ending: true } } },
      },
    },
    terminated: {
      type: 'final',
      entry: 'markEnded',
    },
    failed: {
      type: 'final',
      entry: 'markEnded',
    },
  },
  output: ({ context }) => ({ endReason: context.endReason, failReason: context.failReason }),
});

export type StreamMachine = typeof streamMachine;
export type StreamSnapshot = SnapshotFrom<StreamMachine>;

/** State names as the status JSON shows them (the `active` grouping is an implementation detail). */
export type StreamStateName = 'spawning' | 'warmup' | 'running' | 'restarting' | 'stopping' | 'terminated' | 'failed';

export function streamStateName(snapshot: StreamSnapshot): StreamStateName {
  const v = snapshot.value;
  if (typeof v === 'string') return v as StreamStateName;
  if ('active' in v) {
    const inner = v.active;
    const name = typeof inner === 'string' ? inner : Object.keys(inner)[0];
    // Draining its last frames, the stream still runs.
    return (name === 'draining' ? 'running' : name) as StreamStateName;
  }
  return Object.keys(v)[0] as StreamStateName;
}

/** Everything the status JSON needs, in plain data (no functions, no actor refs). */
export interface StreamStatusData extends StreamSpecFields {
  state: StreamStateName;
  running: boolean;
  degraded: boolean;
  promptIds: string[];
  activePromptId: string | undefined;
  frameCount: number;
  stats: (StreamRates & { drops: number }) | undefined;
  restartCount: number;
  workers: WorkerRecord[];
  endReason: StreamContext['endReason'];
  failReason: string | undefined;
  lastPromptUpdate: StreamContext['lastPromptUpdate'];
  createdAt: number;
  runningSince: number | undefined;
  degradedSince: number | undefined;
  endedAt: number | undefined;
  updatedAt: number;
}

/** Frames the stream has output, over all its processes. */
export function framesOut(c: Pick<StreamContext, 'frames'>): number {
  return c.frames.base + c.frames.processFrames;
}

export function streamStatus(snapshot: StreamSnapshot): StreamStatusData {
  const c = snapshot.context;
  const state = streamStateName(snapshot);
  return {
    id: c.id,
    state,
    running: state === 'running',
    degraded: c.degraded,
    subscribeUrl: c.subscribeUrl,
    publishUrl: c.publishUrl,
    controlUrl: c.controlUrl,
    eventsUrl: c.eventsUrl,
    width: c.width,
    height: c.height,
    architecture: c.architecture,
    promptIds: c.prompts.map((p) => p.id),
    activePromptId: c.activePromptId,
    frameCount: framesOut(c),
    stats: c.stats && { ...c.stats, drops: c.frames.drops },
    restartCount: c.restartCount,
    workers: Object.values(c.workers),
    endReason: c.endReason,
    failReason: c.failReason,
    lastPromptUpdate: c.lastPromptUpdate,
    createdAt: c.createdAt,
    runningSince: c.runningSince,
    degradedSince: c.degradedSince,
    endedAt: c.endedAt,
    updatedAt: c.updatedAt,
  };
}
