// One stream's runner inside a worker process: it composes the parts that each do one job.
//   input.ts       trickle GET -> one continuous TS demux -> access units, stamped on arrival
//   unit-queue     between input and processing: bursts wait as compressed units
//   lag-watch      a graph slower than the input makes frames skip it (bounded latency)
//   processing.ts  decode (low delay) -> timeline -> the graph (routing.ts) -> encode (output.ts):
//                  one output segment per input segment, on the trickle publisher
//   reporting.ts   heartbeats, bus events, the gateway's `-events` channel
// This file keeps the input, the control channel, commands and reporting. A frame's latency is
// timed from the arrival of its last input byte to the write of its last output byte. Frames never
// leave the process.
import '../polyfill.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { TS_CLOCK_HZ } from '../media/frame.ts';
import type { Bus } from '../transport/bus.ts';
import type { TricklePublisher } from '../transport/trickle/publisher.ts';
import { TrickleSubscriber } from '../transport/trickle/subscriber.ts';
import { WorkerError } from '../errors.ts';
import type { PipelineSpec, StreamPrompt } from '../stream-spec.ts';
import type { StreamEvent, WorkerHeartbeat } from '../transport/worker-protocol.ts';
import { InferenceWorker } from '../inference/threads/inference-worker.ts';
import type { ThreadPool } from '../inference/threads/inference-thread.ts';
import { followControl } from './control-channel.ts';
import { DegradedWatch } from './degraded.ts';
import { errorCode } from './errors.ts';
import { readInput, type InputEvent } from './input.ts';
import { channelTailPts, openPublisher, trickleFailure } from './output.ts';
import { DropReason, StreamProcessing } from './processing.ts';
import { OutputFence } from './fence.ts';
import { StreamReporter } from './reporting.ts';
import { GraphRouter } from './routing.ts';
import { FrameStats } from './stats.ts';
import type { Discontinuity } from './timeline.ts';
import { UnitQueue } from './unit-queue.ts';
import { LagWatch } from './lag-watch.ts';
import { memoryFigures } from './memory.ts';
import { ThumbnailTap } from './thumbnails.ts';

export { DropReason };

export interface PipelineDeps {
  bus: Bus;
  config: Readonly<Config>;
  threads: ThreadPool;
  log: Logger;
  /** Reported in heartbeats. */
  pid: number;
  /** The stream's record names another copy now (the pipeline closes itself). */
  onFenced?: (streamId: string) => void;
}

type Item = InputEvent;

export interface PipelineCounters {
  segmentsIn: number;
  decodeErrors: number;
  framesSkippedForResume: number;
  discontinuities: number;
}

const noProcessingCounters = { decodeErrors: 0, framesSkippedForResume: 0, discontinuities: 0 };

export class StreamPipeline {
  readonly streamId: string;
  private segmentsIn = 0;
  private readonly cfg: PipelineSpec;
  private readonly log: Logger;
  private readonly stats = new FrameStats();
  private readonly router: GraphRouter;
  private readonly report: StreamReporter;
  private readonly degraded: DegradedWatch;
  private readonly queue: UnitQueue<Item>;
  private readonly lag: LagWatch;
  private readonly thumbs: ThumbnailTap | null;
  private readonly resumeAfter: bigint | null;
  private readonly resumeAfterInput: bigint | null;
  /** In a cluster: output only while the stream's record names this copy (fence.ts). */
  private readonly fence: OutputFence | null;
  private fenced = false;
  /** A fenced copy waiting for its record: the input events of its last segments, kept (not processed). */
  private held: Item[] | null = null;
  /** What was kept, processed before the next event once the output opened. */
  private replay: Item[] = [];
  private started = false;
  private closed = false;
  private inputEnded: WorkerHeartbeat['inputEnded'] = undefined;
  /** How the input ended, set by the input side and reported when the processing side has drained. */
  private inputEnd: { reason: 'input_ended' | 'input_timeout'; detail: string } | null = null;
  private input: TrickleSubscriber | null = null;
  private control: TrickleSubscriber | null = null;
  private publisher: TricklePublisher | null = null;
  /** Decode, graph and encode (processing.ts): made once the output channel's publisher is open. */
  private processing: StreamProcessing | null = null;
  private loops: Promise<unknown>[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private lastInputAt: number | null = null;
  private lastStats = { fpsIn: 0, fpsOut: 0, latencyP50Ms: 0, latencyP99Ms: 0 };

  constructor(
    cfg: PipelineSpec,
    private readonly deps: PipelineDeps,
  ) {
    this.cfg = cfg;
    this.streamId = cfg.streamId;
    this.log = deps.log.child({ streamId: cfg.streamId });
    this.router = new GraphRouter(cfg.streamId, { width: cfg.width, height: cfg.height }, cfg.activePromptId, this.log);
    this.report = new StreamReporter(cfg.streamId, cfg.eventsUrl, deps.bus, deps.config, deps.pid, this.log);
    this.resumeAfter = cfg.resumeAfterPts !== undefined && /^-?\d+$/.test(cfg.resumeAfterPts) ? BigInt(cfg.resumeAfterPts) : null;
    this.resumeAfterInput = cfg.resumeAfterInputPts !== undefined && /^\d+$/.test(cfg.resumeAfterInputPts) ? BigInt(cfg.resumeAfterInputPts) : null;
    this.lag = new LagWatch(deps.config.runner.maxBusyMs, TS_CLOCK_HZ / 1000);
    this.fence = cfg.fence
      ? new OutputFence(deps.bus, deps.config.bus.streamsBucket, cfg.streamId, cfg.fence.owner, cfg.fence.epoch, () => this.fencedOut(), this.log)
      : null;
    void this.fence?.start();
    this.thumbs = ThumbnailTap.create(cfg.streamId, deps.bus, deps.config.dashboard.thumbnails, this.log);
    const actors = deps.config.actors;
    const runner = deps.config.runner;
    this.queue = new UnitQueue<Item>(
      { maxFramesInFlight: actors.maxFramesInFlight, maxQueuedBytes: runner.maxQueuedBytes },
      (item) => (item.type === 'unit' ? { video: item.unit.kind === 'video', key: item.unit.key, bytes: item.unit.data.length } : null),
      (item) => {
        if (item.type === 'unit' && item.unit.kind === 'video') this.stats.drop(this.closed ? DropReason.closed : DropReason.shed);
        if (item.type === 'unit' && item.unit.kind === 'video' && !this.closed) this.processing?.requireKeyframe();
      },
    );
    this.degraded = new DegradedWatch(actors.degradedInputMs, (d) => {
      this.log.info({ degraded: d }, d ? 'no input: degraded' : 'input is back');
      this.report.emit({ type: 'degraded', degraded: d });
    });
    this.timers.push(setInterval(() => this.heartbeat(), actors.heartbeatIntervalMs));
    if (this.report.hasEventsChannel) {
      this.timers.push(setInterval(() => this.sendStatus(), actors.eventsIntervalMs));
      this.sendStatus();
    }
    if (cfg.controlUrl) {
      this.control = followControl(cfg.controlUrl, {
        config: deps.config.trickle,
        waitMs: actors.inputWaitMs,
        maxBytes: actors.maxControlMessageBytes,
        log: this.log,
        onParams: (params) => this.report.emit({ type: 'control', params }),
        onRejected: (r) => this.reportError('control_message_rejected', r.message, { reason: r.reason, seq: r.seq }),
        onClosed: (detail) => {
          if (!this.closed) this.endInput('control_closed', detail);
        },
      });
    }
  }

  get config(): PipelineSpec {
    return this.cfg;
  }

  get workerIds(): string[] {
    return this.router.workerIds;
  }

  get isStarted(): boolean {
    return this.started;
  }

  /** The stream's counters: the input's, and the processing side's. */
  get counters(): PipelineCounters {
    return { segmentsIn: this.segmentsIn, ...(this.processing?.counters ?? noProcessingCounters) };
  }

  /** The output pts of the last frame written (the resume point before any). */
  private get lastOutputPts(): bigint | null {
    return this.processing ? this.processing.lastOutputPts : this.resumeAfter;
  }

  private get outputFailed(): boolean {
    return this.processing?.isFailed ?? false;
  }

  // ---- commands --------------------------------------------------------------------------------

  /** Answers `sharedGraphs`: prompts whose compiled graph another worker of this process already held. */
  async addWorker(workerId: string, prompts: StreamPrompt[]): Promise<{ warmupMs: number; sharedGraphs: number }> {
    this.checkOpen();
    if (this.router.has(workerId)) throw new WorkerError('WORKER_EXISTS', `stream ${this.streamId} already has worker ${workerId}`);
    const thread = this.deps.threads.acquire(workerId);
    const worker = new InferenceWorker(workerId, thread, this.log.child({ workerId }));
    try {
      const { width, height } = this.router.size;
      const { warmupMs, shared } = await worker.load(prompts, width, height);
      this.checkOpen();
      this.router.add(workerId, worker, prompts);
      this.maybeStart();
      this.report.heartbeat([workerId], this.router.activePromptId, this.snapshotForHeartbeat());
      return { warmupMs: Math.round(warmupMs), sharedGraphs: shared };
    } catch (err) {
      await worker.dispose().catch(() => undefined);
      await this.deps.threads.release(thread);
      throw err;
    }
  }

  /** Answers `lastOutputPts`: the last frame out before the swap (frames after it use the new graphs, but for one in flight). */
  async updatePrompts(workerId: string, prompts: StreamPrompt[], width?: number, height?: number): Promise<{ warmupPerformed: boolean; lastOutputPts: string | null }> {
    this.checkOpen();
    const size = this.router.size;
    const { resized } = await this.router.update(workerId, prompts, { width: width ?? size.width, height: height ?? size.height });
    this.maybeStart();
    return { warmupPerformed: resized, lastOutputPts: this.lastOutputPts?.toString() ?? null };
  }

  /** The next frame goes to `promptId`'s worker; answers the last pts output before the switch. */
  /** An error event on `-events` (and in the log): what the gateway sent could not apply. */
  reportError(errorType: string, message: string, details: Record<string, unknown> = {}): void {
    this.log.warn({ errorType, details }, message);
    this.report.streamEvent('error', { error_type: errorType, message, ...details });
  }

  switchPrompt(promptId: string): { activePromptId: string; lastOutputPts: string | null } {
    this.checkOpen();
    this.router.switchTo(promptId);
    this.maybeStart();
    return { activePromptId: promptId, lastOutputPts: this.lastOutputPts?.toString() ?? null };
  }

  async removeWorker(workerId: string): Promise<{ removed: boolean }> {
    const worker = this.router.remove(workerId);
    await worker.dispose();
    await this.deps.threads.release(worker.thread);
    return { removed: true };
  }

  /** The record names another copy now: stop writing at once (nothing more reaches the output
   *  channel, which stays open for its new owner) and close. */
  private fencedOut(): void {
    if (this.closed) return;
    this.fenced = true;
    this.report.mute();
    this.publisher?.abandon();
    this.deps.onFenced?.(this.streamId);
    void this.close();
  }

  /**
   * The node that runs this process is gone. A fenced stream (a cluster) stops without touching its
   * channels: another node takes it over and continues them. Otherwise it closes as usual.
   */
  async leave(): Promise<void> {
    if (this.fence) {
      this.fenced = true;
      this.report.mute();
      this.publisher?.abandon();
    }
    await this.close();
  }

  /** Stops everything: input, the open output segment (finished), output channel DELETE, workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.degraded.stop();
    this.input?.close();
    this.control?.close();
    this.queue.end();
    await Promise.allSettled(this.loops);
    for (const item of this.queue.drainRemaining()) if (item.type === 'unit' && item.unit.kind === 'video') this.stats.drop(DropReason.closed);
    this.processing?.releaseSegments();
    // A last heartbeat carries the final window's figures (drops included) and the last pts.
    if (this.router.count) this.report.heartbeat(this.router.workerIds, this.router.activePromptId, this.snapshotForHeartbeat(), this.inputEnded);
    if (this.fenced) this.publisher?.abandon();
    else {
      await this.publisher?.close().catch((err: unknown) => this.log.warn({ err }, 'closing the output channel failed'));
      this.sendStatus();
    }
    this.fence?.stop();
    await this.report.close();
    for (const w of this.router.removeAll()) {
      await w.dispose().catch(() => undefined);
      await this.deps.threads.release(w.thread);
    }
    this.processing?.close();
    this.thumbs?.close();
    this.log.info({ ...this.counters, segmentsOut: this.processing?.segmentsOut ?? 0, frames: this.stats.total, memory: memoryFigures() }, 'stream closed');
  }

  // ---- input side ------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new WorkerError('SHUTTING_DOWN', `stream ${this.streamId} is closed`);
  }

  private maybeStart(): void {
    if (this.started || this.closed || !this.router.ready) return;
    this.started = true;
    this.log.info({ activePromptId: this.router.activePromptId, ...this.router.size }, 'media path starts');
    // The input starts at once; the publisher's first answer (the channel's next seq) arrives while
    // the first units come in. A fenced copy opens its output only once its record names it (at
    // once for a stream this node claimed; at the hand-over for a copy started ahead of one), and
    // resumes after the output its predecessor recorded.
    let ready: Promise<void>;
    if (this.fence) {
      // In a cluster the copy reads its input from the start with its output held, keeping the input
      // of its last `runner.heldSegments` segments. Once the record names it, it resumes after the last frame
      // the output channel holds (its previous owner's) and processes what it kept, so nothing is
      // published twice and, on a hand-over, the very next frame follows.
      this.held = [];
      ready = Promise.resolve();
      const fence = this.fence;
      void fence.opened
        .then(async () => {
          const trickle = this.deps.config.trickle;
          const tail = await channelTailPts(this.cfg.publishUrl, trickle, trickle.headerTimeoutMs).catch(() => null);
          const p = await openPublisher(this.cfg.publishUrl, { config: trickle, logger: this.log });
          if (this.closed || this.fenced) {
            p.abandon();
            return;
          }
          this.publisher = p;
          this.processing = this.newProcessing(p);
          this.processing.resumeAfterAtLeast(tail);
          this.replay = this.held ?? [];
          this.held = null;
          this.log.info({ resumeAfterPts: tail?.toString() ?? null, replayed: this.replay.length }, 'output opened: the record names this copy');
        })
        .catch((err: unknown) => this.failOutput(err));
    } else {
      ready = openPublisher(this.cfg.publishUrl, { config: this.deps.config.trickle, logger: this.log }).then((p) => {
        this.publisher = p;
        this.processing = this.newProcessing(p);
      });
    }
    this.degraded.start();
    this.loops.push(this.runInput(), this.runProcessing(ready));
  }

  /** The input side: never blocks on processing (the queue sheds instead). */
  private async runInput(): Promise<void> {
    const { config } = this.deps;
    const sub = new TrickleSubscriber(this.cfg.subscribeUrl, {
      // -2: a restarted worker resumes with the segment being written now, not the next one.
      start: 'current',
      config: config.trickle,
      logger: this.log,
      waitForChannel: config.actors.inputWaitMs,
    });
    this.input = sub;
    // The 404 wait is for a channel that has not appeared yet; once it has carried data a 404 means
    // the input is gone (the subscriber would keep waiting until its start-up deadline).
    let goneAfterData = false;
    sub.on('waiting-for-channel', () => {
      if (this.segmentsIn === 0) return;
      goneAfterData = true;
      sub.close();
    });
    let failure: Error | null = null;
    try {
      for await (const ev of readInput(sub, { maxPesBytes: config.runner.maxUnitBytes, onBytes: () => this.touchInput() })) {
        if (this.closed || this.outputFailed) break;
        if (ev.type === 'segment') {
          this.segmentsIn++;
          if (this.segmentsIn === 1) this.report.trace('runner_receive_first_ingest_segment', { seq: ev.seq });
        }
        this.queue.push(ev);
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      this.log.warn({ err: failure }, 'input channel failed');
    }
    if (!this.closed && !this.outputFailed) {
      // Reported once the processing side has drained, so a runtime that closes the stream on
      // this event loses none of the frames still on their way.
      // A runner restarted after its stream had output (resumeAfter) finding no channel: the
      // input ended while it was down, it did not fail to appear.
      if (this.segmentsIn === 0 && this.resumeAfter === null && (sub.endReason === 'not_found' || failure)) {
        this.inputEnd = { reason: 'input_timeout', detail: failure ? failure.message : `no input channel within ${config.actors.inputWaitMs} ms` };
      } else if (goneAfterData || sub.endReason === 'closed' || sub.endReason === 'not_found' || failure) {
        this.inputEnd = { reason: 'input_ended', detail: failure ? failure.message : `input channel ${goneAfterData ? 'not_found' : sub.endReason}` };
      }
    }
    this.queue.end();
  }

  private endInput(reason: 'input_ended' | 'input_timeout' | 'control_closed', detail: string): void {
    if (this.inputEnded) return;
    this.inputEnded = { reason, detail };
    this.degraded.stop();
    this.log.info({ reason, detail }, 'input ended');
    this.report.emit({ type: 'input_ended', reason, detail });
  }

  private touchInput(): void {
    this.lastInputAt = Date.now();
    this.degraded.touch();
  }

  // ---- processing side -------------------------------------------------------------------------

  private newProcessing(output: TricklePublisher): StreamProcessing {
    const { config } = this.deps;
    return new StreamProcessing({
      media: config.media,
      timeline: config.runner.timeline,
      graph: this.router,
      output,
      counter: this.stats,
      log: this.log,
      resumeAfterPts: this.resumeAfter,
      resumeAfterInputPts: this.resumeAfterInput,
      hooks: {
        discontinuity: (d) => this.discontinuity(d),
        firstOutput: (latencyMs) => this.report.emit({ type: 'first_output', latencyMs }),
        firstSegment: (seq) => this.report.trace('runner_send_first_processed_segment', { seq }),
        outputFailed: (err) => this.failOutput(err),
        skipGraph: (pts) => this.lag.skip(pts, this.queue.busySince, this.queue.backedUp, performance.now()),
        tap: (side, data, width, height) => this.thumbs?.frame(side, data, width, height),
      },
    });
  }

  /** Decode, graph and encode, one unit at a time, in input order. */
  private async runProcessing(ready: Promise<void>): Promise<void> {
    await ready.catch((err: unknown) => this.failOutput(err));
    for await (const item of this.queue) {
      if (this.closed) {
        if (item.type === 'unit' && item.unit.kind === 'video') this.stats.drop(DropReason.closed);
        continue;
      }
      if (this.held) {
        this.keep(this.held, item);
        continue;
      }
      const p = this.processing;
      if (!p || p.isFailed) continue;
      // Once, when a held copy's output opened: what it kept goes first.
      if (this.replay.length) for (const kept of this.replay.splice(0)) await this.process(p, kept);
      await this.process(p, item);
    }
    await this.processing?.finish();
    if (this.inputEnd && !this.closed) this.endInput(this.inputEnd.reason, this.inputEnd.detail);
  }

  private async process(p: StreamProcessing, item: Item): Promise<void> {
    try {
      await p.handle(item);
    } catch (err) {
      this.log.warn({ err, code: errorCode(err) }, 'input unit failed; going on');
    }
  }

  /** Keeps `item` for a copy whose output is held: the events of its last `runner.heldSegments` segments (and the program they need). */
  private keep(held: Item[], item: Item): void {
    held.push(item);
    if (item.type !== 'segment') return;
    const starts = held.flatMap((e, i) => (e.type === 'segment' ? [i] : []));
    const keepFrom = starts[starts.length - this.deps.config.runner.heldSegments];
    if (keepFrom === undefined || keepFrom === 0) return;
    const dropped = held.splice(0, keepFrom);
    // The decoder opens on the program: the latest one dropped goes back in front.
    const program = [...dropped].reverse().find((e) => e.type === 'program');
    if (program) held.unshift(program);
  }

  private discontinuity(d: Discontinuity): void {
    const detail = { kind: d.kind, stream: d.stream, from_pts: d.from?.toString() ?? '', to_pts: d.to.toString(), offset: d.offset.toString() };
    this.log.info(detail, 'input timestamps jumped; output continues rebased');
    this.report.emit({ type: 'discontinuity', ...detail });
    this.report.streamEvent('timestamp_discontinuity', detail);
  }

  private failOutput(err: unknown): void {
    // A copy that gave its channel up (fenced, or its node gone) cut its own requests.
    if (this.fenced) return;
    const cause = trickleFailure(err) ?? (err as Error);
    const reason = `${errorCode(cause) ?? 'error'}: ${cause?.message ?? String(err)}`;
    this.log.error({ err }, 'output channel failed');
    this.report.emit({ type: 'output_failed', reason });
    // Nothing more can be published: stop reading input too.
    this.input?.close();
    this.degraded.stop();
    this.queue.end();
  }

  // ---- reporting -------------------------------------------------------------------------------

  private snapshotForHeartbeat(): WorkerHeartbeat['stats'] {
    const s = this.stats.snapshot();
    this.lastStats = { fpsIn: s.fpsIn, fpsOut: s.fpsOut, latencyP50Ms: s.latencyP50Ms, latencyP99Ms: s.latencyP99Ms };
    return {
      ...s,
      degraded: this.degraded.degraded,
      ...(this.lastOutputPts !== null ? { lastOutputPts: this.lastOutputPts.toString() } : {}),
      ...(this.processing?.lastOutputRaw != null ? { lastInputPts: this.processing.lastOutputRaw.toString() } : {}),
    };
  }

  private heartbeat(): void {
    if (this.closed || this.router.count === 0) return;
    // One stats window per stream per interval: every worker's heartbeat carries the same snapshot.
    this.report.heartbeat(this.router.workerIds, this.router.activePromptId, this.snapshotForHeartbeat(), this.inputEnded);
  }

  private sendStatus(): void {
    this.report.status({
      activePromptId: this.router.activePromptId,
      state: this.closed ? 'stopped' : this.inputEnded ? 'input_ended' : this.started ? 'running' : 'starting',
      degraded: this.degraded.degraded,
      ...this.lastStats,
      framesOut: this.stats.total,
      segmentsIn: this.segmentsIn,
      segmentsOut: this.processing?.segmentsOut ?? 0,
      decodeErrors: this.processing?.counters.decodeErrors ?? 0,
      discontinuities: this.processing?.counters.discontinuities ?? 0,
      lastInputAt: this.lastInputAt,
      lastOutputAt: this.processing?.lastOutputAt ?? null,
      ...this.router.size,
    });
  }
}

export type { StreamEvent };
