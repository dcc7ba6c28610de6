// One stream hosted on this node: its stream actor (the stream machine with the real effects), the
// bus traffic that feeds it (stream events -> INPUT_ENDED, OUTPUT_FAILED, INPUT_STALLED/RESUMED,
// control -> UPDATE_PROMPTS; heartbeats reach it through its worker actors) and the answers to its
// inbox (subjects.streamCmd). Every failure stays inside this stream: the actor's errors are caught here.
import { randomUUID } from 'node:crypto';
import { createActor, type Actor } from 'xstate';
import { SfError, isSfError } from '../errors.ts';
import { promptLimits, promptsOf, validateStreamPrompts } from '../inference/stream-prompts.ts';
import {
  framesOut,
  streamMachine,
  streamStateName,
  workerLimitsFrom,
  workerMachine,
  type StreamEmitted,
  type StreamSnapshot,
  type StreamStateName,
} from '../machines/index.ts';
import type { BusMsg, BusSubscription } from '../transport/bus.ts';
import { subjects } from '../transport/subjects.ts';
import type { PipelineSpec, StreamProgress, StreamPrompt, StreamSpec, StreamStatus } from '../stream-spec.ts';
import { StreamEvent as WorkerStreamEvent, type ProcCommand } from '../transport/worker-protocol.ts';
import { applyPromptsLogic } from './apply-prompts.ts';
import { answer, StreamCommand, type UpdatePromptsResult, type WorkspaceInfo } from './commands.ts';
import { sharedProcKey, streamProcKey, type EffectDeps, type ProcessPlacement } from './deps.ts';
import type { Inspection } from './inspection.ts';
import { spawnWorkerLogic } from './spawn-worker.ts';
import { toStreamStatus } from './status.ts';
import { stopWorkerLogic } from './stop-worker.ts';
import { switchPromptLogic } from './switch-prompt.ts';
import type { ActorSummary, UpdatePromptsRequest } from './types.ts';
import { closeStreamChannels, openStreamChannels } from './stream-channels.ts';
import { warmupWorkerLogic } from './warmup-worker.ts';
import { watchBusLogic } from './watch-bus.ts';
import { watchWorkerLogic } from './watch-worker.ts';

/**
 * The worker machine with this runtime's effects: one supervision (restart budget, backoff, heartbeat
 * timeout, all on the machine clock) for a stream's own process and for the node's shared one.
 */
function provideWorkerMachine(deps: EffectDeps, place: ProcessPlacement) {
  return workerMachine.provide({
    actors: {
      spawnWorker: spawnWorkerLogic(deps, place),
      warmupWorker: warmupWorkerLogic(deps),
      applyPrompts: applyPromptsLogic(deps),
      watchWorker: watchWorkerLogic(deps),
      stopWorker: stopWorkerLogic(deps, place),
      watchBus: watchBusLogic(deps),
    },
  });
}

/** The stream machine with every effect of this runtime provided. */
export function provideStreamMachine(deps: EffectDeps) {
  const shared = deps.config.nodeId;
  return streamMachine.provide({
    actors: {
      workerLogic: provideWorkerMachine(deps, { key: streamProcKey, shared: false }),
      attachSharedWorker: provideWorkerMachine(deps, { key: () => sharedProcKey(shared), shared: true }),
      switchPrompt: switchPromptLogic(deps),
    },
  });
}
type ProvidedStreamMachine = ReturnType<typeof provideStreamMachine>;

const ENDED: ReadonlySet<StreamStateName> = new Set(['terminated', 'failed']);

export interface HostedStreamOptions {
  deps: EffectDeps;
  machine: ProvidedStreamMachine;
  inspection: Inspection;
  req: StreamSpec;
  epoch: number;
  /** In a cluster: the stream's processes write output only while its record names this node at `epoch`. */
  fenced: boolean;
  /** Where the output of an earlier owner got to (a takeover): the first process resumes after it. */
  progress?: StreamProgress;
  /** Writes changed prompts or size into the stream's record, before they are applied. */
  persist(change: { prompts: StreamPrompt[]; width?: number; height?: number }): Promise<void>;
  /** Called once when the stream reached terminated or failed. */
  onEnded(s: HostedStream): void;
  /** An ended stream whose id is started again: drop it now. */
  onForget(s: HostedStream): void;
}

export class HostedStream {
  readonly id: string;
  readonly epoch: number;
  readonly actor: Actor<ProvidedStreamMachine>;
  endedAt: number | undefined;
  private readonly deps: EffectDeps;
  private readonly log;
  private readonly subs: BusSubscription[] = [];
  private firstOutputLatencyMs: number | undefined;
  private lastState: string | undefined;
  private lastWorkerStates = new Map<string, { state: string; restarts: number }>();
  private ended: Promise<void>;
  private abandoned = false;
  private resolveEnded!: () => void;
  /** The stream's output (and events) channels exist: settles soon after start(), never rejects. */
  channelsOpened: Promise<void> = Promise.resolve();
  /** Set when the stream ends; settles once its channels are closed (bounded by the header timeout). */
  private channelsClosed: Promise<void> | undefined;

  constructor(private readonly o: HostedStreamOptions) {
    this.id = o.req.id;
    this.epoch = o.epoch;
    this.deps = o.deps;
    this.log = o.deps.logger.child({ streamId: this.id });
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
    this.actor = createActor(o.machine, {
      id: this.id,
      input: {
        ...o.req,
        limits: workerLimitsFrom(o.deps.config.actors),
        ...(o.progress ? { resumeAt: { outputPts: o.progress.lastOutputPts, inputPts: o.progress.lastInputPts } } : {}),
      },
      inspect: o.inspection.observer(this.id),
    });
  }

  /** Subscribes the stream's subjects, then starts the actor (so no early event is missed). */
  start(): void {
    const { bus } = this.deps;
    this.channelsOpened = openStreamChannels(this.o.req, this.deps.config.trickle, this.log);
    const cmd = bus.subscribe(subjects.streamCmd(this.id));
    const evt = bus.subscribe(subjects.streamEvt(this.id));
    this.subs.push(cmd, evt);
    // Commands run side by side: a status request must not wait behind a stop or a prompt update.
    void this.pump(cmd, (m) => void this.onCommand(m).catch((err: unknown) => this.log.warn({ err }, 'command reply failed')));
    void this.pump(evt, (m) => this.onStreamEvent(m));
    this.actor.on('FRAMES_COUNTED', (e) => this.onFramesCounted(e));
    this.actor.subscribe({
      next: (s) => this.onSnapshot(s),
      error: (err) => {
        // A bug in an action: the stream is lost, the node is not.
        this.log.error({ err }, 'stream actor crashed');
        this.markEnded();
      },
      complete: () => this.markEnded(),
    });
    this.actor.start();
  }

  private async pump(sub: BusSubscription, handle: (m: BusMsg) => void | Promise<void>): Promise<void> {
    try {
      for await (const m of sub) {
        try {
          await handle(m);
        } catch (err) {
          this.log.warn({ err, subject: m.subject }, 'bus message failed');
        }
      }
    } catch (err) {
      this.log.debug({ err }, 'subscription ended');
    }
  }

  snapshot(): StreamSnapshot {
    return this.actor.getSnapshot() as StreamSnapshot;
  }

  state(): StreamStateName {
    return streamStateName(this.snapshot());
  }

  isEnding(): boolean {
    const s = this.state();
    return s === 'stopping' || ENDED.has(s) || this.endedAt !== undefined;
  }

  isEnded(): boolean {
    return this.endedAt !== undefined;
  }

  status(): StreamStatus {
    return { ...toStreamStatus(this.snapshot()), node_id: this.deps.config.nodeId };
  }

  /** Where the output got to, for the record (undefined before the first output). */
  progress(): StreamProgress | undefined {
    const r = this.snapshot().context.resumeAt;
    if (!r) return undefined;
    return { lastOutputPts: r.outputPts, ...(r.inputPts !== undefined ? { lastInputPts: r.inputPts } : {}), at: Date.now() };
  }

  /**
   * Another node owns the stream now (a takeover or a hand-over): this copy goes at once, without
   * a word to the stream's channels (they are the new owner's). The caller ends its processes.
   */
  abandon(): void {
    if (this.abandoned) return;
    this.abandoned = true;
    this.log.warn({ epoch: this.epoch }, 'the stream is owned by another node now: this copy stops');
    this.dispose();
    this.resolveEnded();
  }

  get isAbandoned(): boolean {
    return this.abandoned;
  }

  pipelineConfig(size: { width: number; height: number }): PipelineSpec {
    const c = this.snapshot().context;
    return {
      streamId: this.id,
      subscribeUrl: c.subscribeUrl,
      publishUrl: c.publishUrl,
      ...(c.controlUrl !== undefined ? { controlUrl: c.controlUrl } : {}),
      ...(c.eventsUrl !== undefined ? { eventsUrl: c.eventsUrl } : {}),
      width: size.width,
      height: size.height,
      activePromptId: c.activePromptId ?? c.prompts[0]?.id ?? '',
      ...(c.resumeAt ? { resumeAfterPts: c.resumeAt.outputPts } : {}),
      ...(c.resumeAt?.inputPts !== undefined ? { resumeAfterInputPts: c.resumeAt.inputPts } : {}),
      ...(this.o.fenced ? { fence: { owner: this.deps.config.nodeId, epoch: this.epoch } } : {}),
    };
  }

  // ------------------------------------------------------------------------------------------
  // Snapshots -> runtime events

  private onSnapshot(s: StreamSnapshot): void {
    // The machine's own state: `terminated` / `failed` only once the workers are gone (the status
    // JSON already shows them during the short `stopping` step).
    const state: string = streamStateName(s);
    if (state !== this.lastState) {
      this.lastState = state;
      this.deps.emit({ type: 'state', streamId: this.id, actor: 'stream', state });
      this.log.info({ state }, 'stream state');
    }
    for (const w of Object.values(s.context.workers)) {
      const prev = this.lastWorkerStates.get(w.workerId);
      if (prev?.state !== w.state) this.deps.emit({ type: 'state', streamId: this.id, actor: 'worker', state: w.state });
      if (prev && w.restartCount > prev.restarts) {
        this.deps.emit({ type: 'worker_restart', streamId: this.id, workerId: w.workerId, reason: w.lastError ?? 'restart' });
        this.log.warn({ workerId: w.workerId, reason: w.lastError, restartCount: w.restartCount }, 'worker restarting');
      }
      this.lastWorkerStates.set(w.workerId, { state: w.state, restarts: w.restartCount });
    }
    if (s.status === 'done') this.markEnded();
  }

  private markEnded(): void {
    if (this.endedAt !== undefined || this.abandoned) return;
    this.endedAt = Date.now();
    // Events and heartbeats are over; the inbox stays so clients can read why it ended.
    for (const sub of this.subs.slice(1)) sub.unsubscribe();
    // Every end closes the output and events channels, whether or not a worker was left to do it.
    this.channelsClosed = this.channelsOpened.then(() => closeStreamChannels(this.o.req, this.deps.config.trickle, this.log));
    this.resolveEnded();
    this.o.onEnded(this);
  }

  /** Drops the stream for good: no inbox, no actor. */
  dispose(): void {
    for (const sub of this.subs) sub.unsubscribe();
    this.actor.stop();
  }

  // ------------------------------------------------------------------------------------------
  // Worker traffic -> actor events

  /** A heartbeat's figures, counted by the machine: the runtime's `stats` event (metrics, dashboard). */
  private onFramesCounted(e: Extract<StreamEmitted, { type: 'FRAMES_COUNTED' }>): void {
    const f = e.frames;
    this.deps.emit({
      type: 'stats',
      streamId: this.id,
      stats: { fps_in: f.fpsIn, fps_out: f.fpsOut, latency_p50_ms: f.latencyP50, latency_p99_ms: f.latencyP99, frames_dropped: e.drops },
      frameCount: e.frameCount,
      latenciesMs: [...(f.latenciesMs ?? [])],
      dropsByReason: { ...f.dropsByReason },
    });
  }

  private onStreamEvent(m: BusMsg): void {
    if (this.isEnded()) return;
    const parsed = WorkerStreamEvent.safeParse(m.json());
    if (!parsed.success) {
      this.log.warn('malformed stream event ignored');
      return;
    }
    const e = parsed.data;
    switch (e.type) {
      case 'input_ended':
        this.onInputEnded(e.reason, e.detail);
        break;
      case 'output_failed':
        this.actor.send({ type: 'OUTPUT_FAILED', reason: e.reason });
        break;
      case 'degraded':
        this.actor.send({ type: e.degraded ? 'INPUT_STALLED' : 'INPUT_RESUMED' });
        break;
      case 'first_output':
        this.firstOutputLatencyMs = e.latencyMs;
        this.log.info({ latencyMs: e.latencyMs }, 'first output frame');
        break;
      case 'control':
        this.applyControl(e.params);
        break;
      case 'discontinuity':
        this.log.info({ kind: e.kind, stream: e.stream, from: e.from_pts, to: e.to_pts, offset: e.offset }, 'input timestamps jumped; output continues rebased');
        break;
    }
  }

  private onInputEnded(reason: 'input_ended' | 'input_timeout' | 'control_closed', detail: string | undefined): void {
    if (this.isEnding() || this.snapshot().matches({ active: 'draining' })) return;
    this.log.info({ reason, detail }, 'input ended');
    this.actor.send({ type: 'INPUT_ENDED', reason: reason === 'input_timeout' ? 'input_timeout' : 'input_ended' });
  }

  /** A control-channel message: its prompts are validated like an API request, then applied. */
  private applyControl(params: Record<string, unknown>): void {
    const raw = promptsOf(params as { prompt?: unknown; prompts?: unknown });
    if (raw.length === 0) return;
    try {
      const prompts = this.validate(raw);
      const width = typeof params.width === 'number' ? params.width : undefined;
      const height = typeof params.height === 'number' ? params.height : undefined;
      void this.updatePrompts({ prompts, parameters: { ...(width ? { width } : {}), ...(height ? { height } : {}) } }).catch((err: unknown) =>
        this.reportToGateway('control_prompt_rejected', err),
      );
    } catch (err) {
      this.reportToGateway('control_prompt_invalid', err);
    }
  }

  /** Prompts as a client sent them -> stream prompts (one validation, here where the stream runs); PROMPT_INVALID otherwise. */
  private validate(raw: unknown[]): StreamPrompt[] {
    return validateStreamPrompts(raw, promptLimits(this.deps.config.inference, this.deps.config.inference.workspace));
  }

  /** A control message that cannot apply: an error event on the stream's `-events` channel, by its process. */
  private reportToGateway(errorType: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const details = isSfError(err) ? { code: err.code, ...err.details } : {};
    this.log.warn({ err, errorType }, 'control message not applied');
    this.tellProcess({ type: 'report_error', streamId: this.id, errorType, message, details }).catch((e: unknown) =>
      this.log.warn({ err: e }, 'error event not delivered to the process'),
    );
  }

  // ------------------------------------------------------------------------------------------
  // Commands (the stream's inbox)

  private onCommand(m: BusMsg): Promise<void> {
    return answer(m, StreamCommand, 'stream command', (cmd) => this.run(cmd));
  }

  private async run(cmd: StreamCommand): Promise<Record<string, unknown>> {
    switch (cmd.type) {
      case 'status':
        return { status: this.status() };
      case 'stop':
        // Stopping a stream that has already ended is stopping nothing (the API answers 404).
        if (this.isEnded()) throw new SfError('STREAM_NOT_FOUND', `Stream ${this.id} has ended`);
        await this.stop();
        return {};
      case 'update_prompts':
        this.mustBeActive();
        return { ...(await this.updatePrompts({ prompts: this.validate(cmd.prompts), ...(cmd.parameters ? { parameters: cmd.parameters } : {}) })) };
      case 'restart_worker': {
        this.mustBeActive();
        if (this.snapshot().context.architecture !== 'dedicated') throw new SfError('NOT_DEDICATED_WORKER', `Stream ${this.id} does not use a dedicated worker`);
        // Answers once the new process runs, bounded like a start (START_TIMEOUT with the state).
        const old = new Set(this.activeWorkers().map((w) => w.pid));
        this.actor.send({ type: 'RESTART_WORKER' });
        await this.waitRunning(this.deps.config.actors.startTimeoutMs, () => {
          const ws = this.activeWorkers();
          return ws.length > 0 && ws.every((w) => w.state === 'running' && w.pid !== undefined && !old.has(w.pid));
        });
        return {};
      }
      case 'switch_prompt':
        return { active_prompt_id: await this.switchPrompt(cmd.promptId) };
      case 'workspace_info':
        return { info: this.workspaceInfo() };
      case 'forget':
        if (!this.isEnded()) throw new SfError('STREAM_EXISTS', `Stream ${this.id} is still running`);
        this.o.onForget(this);
        return {};
    }
  }

  private mustBeActive(): void {
    if (this.isEnding()) throw new SfError('STREAM_NOT_FOUND', `Stream ${this.id} has ended`);
  }

  /** STOP, then wait until the workers are gone (bounded by stopTimeoutMs). */
  async stop(): Promise<void> {
    if (!this.isEnded()) this.actor.send({ type: 'STOP' });
    await Promise.race([this.ended, sleep(this.deps.config.actors.stopTimeoutMs)]);
    // A stop answers once downstream readers have been told the output is over.
    await this.channelsClosed;
  }

  private activeWorkers() {
    return Object.values(this.snapshot().context.workers).filter((w) => !w.retiring && !w.gone);
  }

  /** Resolves once the stream runs (and `ready` holds); START_TIMEOUT (with the state reached) otherwise. */
  async waitRunning(timeoutMs: number, ready: () => boolean = () => true): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      let sub: { unsubscribe(): void } | undefined;
      let timer: NodeJS.Timeout | undefined;
      const done = (err?: SfError) => {
        sub?.unsubscribe();
        if (timer) clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const fail = (why: string) => {
        const st = this.status();
        done(
          new SfError('START_TIMEOUT', `Stream ${this.id} ${why} (state ${st.state})`, {
            state: st.state,
            ...(st.fail_reason !== undefined ? { fail_reason: st.fail_reason } : {}),
            ...(st.end_reason !== undefined ? { end_reason: st.end_reason } : {}),
          }),
        );
      };
      const check = (s: StreamSnapshot): boolean => {
        const name = streamStateName(s);
        if (name === 'running' && ready()) done();
        else if (name === 'running') return false;
        else if (name === 'stopping' || ENDED.has(name) || this.isEnded()) fail('ended before it ran');
        else return false;
        return true;
      };
      if (check(this.snapshot())) return;
      timer = setTimeout(() => fail(`did not reach running within ${timeoutMs} ms`), timeoutMs);
      sub = this.actor.subscribe({ next: (s) => void check(s), error: () => fail('crashed') });
    });
  }

  async updatePrompts(req: { prompts: StreamPrompt[]; parameters?: UpdatePromptsRequest['parameters'] }): Promise<UpdatePromptsResult> {
    this.mustBeActive();
    const before = this.snapshot().context;
    const requestId = randomUUID();
    const t0 = performance.now();
    const { width, height, warmup } = req.parameters ?? {};
    // The record first: a node that takes the stream over runs it with these prompts.
    await this.o.persist({ prompts: req.prompts, ...(width !== undefined ? { width } : {}), ...(height !== undefined ? { height } : {}) });
    const answer = this.waitEmitted<Extract<StreamEmitted, { type: 'PROMPTS_UPDATED' }>>(
      'PROMPTS_UPDATED',
      (e) => e.requestId === requestId,
      this.deps.config.actors.workerStartTimeoutMs + this.deps.config.bus.requestTimeoutMs,
    );
    this.actor.send({
      type: 'UPDATE_PROMPTS',
      prompts: req.prompts,
      requestId,
      ...(width !== undefined ? { width } : {}),
      ...(height !== undefined ? { height } : {}),
      ...(warmup !== undefined ? { warmup } : {}),
    });
    const r = await answer;
    if (r.error !== undefined && r.rejected) throw new SfError('PROMPT_REJECTED', `Prompt update refused: ${r.error}`);
    if (r.error !== undefined) throw new SfError('INTERNAL', `Prompt update failed: ${r.error}`);
    const after = this.snapshot().context;
    this.deps.emit({ type: 'prompt_update', streamId: this.id, durationMs: performance.now() - t0, warmupPerformed: r.warmupPerformed });
    return {
      prompts_count: r.promptsCount,
      parameters_updated: after.width !== before.width || after.height !== before.height,
      warmup_performed: r.warmupPerformed,
    };
  }

  /** SWITCH_PROMPT; answers with the machine's outcome (the machine tells the process). */
  async switchPrompt(promptId: string): Promise<string> {
    const answer = this.waitEmitted<Extract<StreamEmitted, { type: 'PROMPT_SWITCHED' | 'PROMPT_SWITCH_REJECTED' | 'PROMPT_SWITCH_FAILED' }>>(
      ['PROMPT_SWITCHED', 'PROMPT_SWITCH_REJECTED', 'PROMPT_SWITCH_FAILED'],
      (e) => (e.type === 'PROMPT_SWITCHED' ? e.activePromptId : e.promptId) === promptId,
      // The machine asks the process, which may take its own request timeout.
      2 * this.deps.config.bus.requestTimeoutMs,
    );
    this.actor.send({ type: 'SWITCH_PROMPT', promptId });
    const r = await answer;
    switch (r.type) {
      case 'PROMPT_SWITCHED':
        return r.activePromptId;
      case 'PROMPT_SWITCH_FAILED':
        throw new SfError('INTERNAL', `Stream ${this.id}: prompt switch failed: ${r.error}`);
      case 'PROMPT_SWITCH_REJECTED':
        if (r.code === 'NOT_PROMPT_WORKER') throw new SfError('NOT_PROMPT_WORKER', `Stream ${this.id} is not a prompt-worker stream`);
        if (r.code === 'PROMPT_NOT_FOUND') throw new SfError('PROMPT_NOT_FOUND', `Stream ${this.id} has no prompt ${promptId}`);
        throw new SfError('STREAM_NOT_FOUND', `Stream ${this.id} has ended`);
    }
  }

  /** An error event for the gateway, sent by the process that runs this stream's pipeline (the node's shared one for a shared stream). */
  private async tellProcess(cmd: Extract<ProcCommand, { type: 'report_error' }>): Promise<void> {
    const shared = this.snapshot().context.architecture === 'shared';
    const h = this.deps.procs.get(shared ? sharedProcKey(this.deps.config.nodeId) : streamProcKey(this.id));
    // None while it restarts: the new one opens with the active prompt (an error event is lost with it).
    if (!h) return;
    await this.deps.procs.request(h, cmd, this.deps.config.bus.requestTimeoutMs);
  }

  workspaceInfo(): WorkspaceInfo {
    const c = this.snapshot().context;
    return {
      workspace_path: this.deps.config.inference.workspace,
      config_keys: Object.keys(this.deps.config).sort(),
      total_workers: Object.values(c.workers).filter((w) => !w.retiring && w.state !== 'terminated').length,
      active_prompt_id: c.activePromptId ?? null,
    };
  }

  private waitEmitted<E extends StreamEmitted>(types: E['type'] | E['type'][], match: (e: E) => boolean, timeoutMs: number): Promise<E> {
    return new Promise<E>((resolve, reject) => {
      const subs: Array<{ unsubscribe(): void }> = [];
      const timer = setTimeout(() => {
        for (const s of subs) s.unsubscribe();
        reject(new SfError('INTERNAL', `Stream ${this.id}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      for (const t of Array.isArray(types) ? types : [types]) {
        subs.push(
          this.actor.on(t as StreamEmitted['type'], (e) => {
            if (!match(e as E)) return;
            clearTimeout(timer);
            for (const s of subs) s.unsubscribe();
            resolve(e as E);
          }),
        );
      }
    });
  }

  // ------------------------------------------------------------------------------------------
  // Inspection

  summaries(): ActorSummary[] {
    const s = this.snapshot();
    const c = s.context;
    const out: ActorSummary[] = [
      {
        id: this.id,
        machine: 'stream',
        state: s.value,
        stream_id: this.id,
        context: {
          architecture: c.architecture,
          width: c.width,
          height: c.height,
          frameCount: framesOut(c),
          restartCount: c.restartCount,
          degraded: c.degraded,
          activePromptId: c.activePromptId,
          endReason: c.endReason,
          failReason: c.failReason,
          lastOutputPts: c.resumeAt?.outputPts,
          firstOutputLatencyMs: this.firstOutputLatencyMs,
        },
      },
    ];
    for (const [childId, ref] of Object.entries(s.children)) {
      if (!c.workers[childId]) continue; // not a worker (the stream's switchPrompt effect)
      const cs = ref?.getSnapshot() as { value?: unknown; context?: Record<string, unknown> } | undefined;
      const wc = cs?.context;
      out.push({
        id: `${this.id}/${childId}`,
        machine: 'worker',
        state: cs?.value ?? c.workers[childId]?.state ?? null,
        stream_id: this.id,
        context: wc
          ? { pid: wc.pid, restartCount: wc.restartCount, lastError: wc.lastError, failReason: wc.failReason, lastHeartbeatAt: wc.lastHeartbeatAt }
          : { pid: c.workers[childId]?.pid, restartCount: c.workers[childId]?.restartCount },
      });
    }
    return out;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
