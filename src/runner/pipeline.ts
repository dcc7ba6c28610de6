// One stream's runner inside a worker process: it composes the parts that each do one job.
//   input.ts     trickle GET -> one continuous TS demux -> access units, stamped on arrival
//   unit-queue   between input and processing: bursts wait as compressed units
//   lag-watch    a graph slower than the input makes frames skip it (bounded latency)
//   (here)       decode (media/video-decoder, low delay) -> timeline (pts unwrapped, rebased)
//   routing.ts   the active prompt's inference worker runs the frame
//   output.ts    encode with the frame's pts -> trickle POST, one output segment per input segment
//   reporting.ts heartbeats, bus events, the gateway's `-events` channel
// A frame's latency is timed from the arrival of its last input byte to the write of its last
// output byte. Frames never leave the process.
import '../polyfill.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { AudioPassthrough } from '../media/audio-passthrough.ts';
import type { AudioPacket } from '../media/decode.ts';
import { TS_CLOCK_HZ, type VideoFrame } from '../media/frame.ts';
import { FrameRateCap } from '../media/geometry.ts';
import type { TsProgram, TsUnit } from '../media/ts-demux.ts';
import { isDecodableVideo, VideoDecoder } from '../media/video-decoder.ts';
import type { Bus } from '../transport/bus.ts';
import type { TricklePublisher } from '../transport/trickle/publisher.ts';
import { TrickleSubscriber } from '../transport/trickle/subscriber.ts';
import { WorkerError, type PromptEntry, type StreamEvent, type StreamPipelineConfig, type WorkerHeartbeat } from '../transport/worker-protocol.ts';
import type { ResolvedPrompt } from '../inference/types.ts';
import { InferenceWorker } from '../inference/threads/inference-worker.ts';
import type { ThreadPool } from '../inference/threads/inference-thread.ts';
import { followControl } from './control-channel.ts';
import { DegradedWatch } from './degraded.ts';
import { errorCode } from './errors.ts';
import { readInput, type InputEvent } from './input.ts';
import { OutputSegments, openPublisher, trickleFailure, type OutputSource } from './output.ts';
import { StreamReporter } from './reporting.ts';
import { GraphRouter, type FrameSize } from './routing.ts';
import { FrameStats } from './stats.ts';
import { PtsRebaser, type Discontinuity } from './timeline.ts';
import { UnitQueue } from './unit-queue.ts';
import { LagWatch } from './lag-watch.ts';
import { memoryFigures } from './memory.ts';

export interface PipelineDeps {
  bus: Bus;
  config: Readonly<Config>;
  threads: ThreadPool;
  log: Logger;
  /** Validates one prompt entry; throws WorkerError('invalid_prompt'). */
  resolvePrompt: (entry: PromptEntry) => ResolvedPrompt;
  /** Reported in heartbeats. */
  pid: number;
}

/** Drop reasons counted in FrameStats. */
export const DropReason = {
  /** The graph was slower than the input: the oldest waiting frame skipped the graph. */
  graphSlow: 'graph_slow',
  graphError: 'graph_error',
  encodeError: 'encode_error',
  /** No worker holds the active prompt (it was removed). */
  noWorker: 'no_worker',
  /** A frame whose output pts is not above the last output pts (a duplicate or reordered frame). */
  ptsOrder: 'pts_order',
  /** Units waiting when the stream was closed, or shed by a stalled loop. */
  closed: 'stream_closed',
  shed: 'queue_full',
  /** Pictures before the first random access point after a (re)open could not be decoded. */
  noKeyframe: 'no_keyframe',
} as const;

/** One input segment as the processing side sees it. */
interface InputSeg extends OutputSource {
  size: FrameSize;
  /** Ends the segment's hold on the graphs of its frame size. */
  release: () => void;
}

type Item = InputEvent;

export interface PipelineCounters {
  segmentsIn: number;
  decodeErrors: number;
  framesSkippedForResume: number;
  discontinuities: number;
}

export class StreamPipeline {
  readonly streamId: string;
  readonly counters: PipelineCounters = { segmentsIn: 0, decodeErrors: 0, framesSkippedForResume: 0, discontinuities: 0 };
  private readonly cfg: StreamPipelineConfig;
  private readonly log: Logger;
  private readonly stats = new FrameStats();
  private readonly router: GraphRouter;
  private readonly report: StreamReporter;
  private readonly degraded: DegradedWatch;
  private readonly queue: UnitQueue<Item>;
  private readonly timeline: PtsRebaser;
  private readonly fpsCap: FrameRateCap;
  private readonly lag: LagWatch;
  private lastOutputPts: bigint | null = null;
  private readonly resumeAfter: bigint | null;
  private started = false;
  private closed = false;
  private firstOutput = false;
  private inputEnded: WorkerHeartbeat['inputEnded'] = undefined;
  /** How the input ended, set by the input side and reported when the processing side has drained. */
  private inputEnd: { reason: 'input_ended' | 'input_timeout'; detail: string } | null = null;
  private input: TrickleSubscriber | null = null;
  private control: TrickleSubscriber | null = null;
  private publisher: TricklePublisher | null = null;
  private output: OutputSegments | null = null;
  private loops: Promise<unknown>[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  /** Input segments whose frames may still be on their way to the graph (their size holds). */
  private readonly segsInFlight = new Set<InputSeg>();
  // Processing state (one loop owns it).
  private seg: InputSeg | null = null;
  private decoder: VideoDecoder | null = null;
  private audio: AudioPassthrough | null = null;
  private needKey = true;
  /** Arrival of each recent video unit's last byte, by raw pts (a reordering decoder emits later). */
  private readonly arrivals = new Map<bigint, number>();
  private frameRate = 0;
  private lastRawPts: bigint | null = null;
  /** The raw pts of the last frame output (reported, so a successor continues this timeline). */
  private lastOutputRaw: bigint | null = null;
  /** A restarted runner skipping what its predecessor published (timeline seeded). */
  private resuming = false;
  private lastInputAt: number | null = null;
  private lastOutputAt: number | null = null;
  private lastStats = { fpsIn: 0, fpsOut: 0, latencyP50Ms: 0, latencyP99Ms: 0 };

  constructor(
    cfg: StreamPipelineConfig,
    private readonly deps: PipelineDeps,
  ) {
    this.cfg = cfg;
    this.streamId = cfg.streamId;
    this.log = deps.log.child({ streamId: cfg.streamId });
    this.router = new GraphRouter(cfg.streamId, { width: cfg.width, height: cfg.height }, cfg.activePromptId, this.log);
    this.report = new StreamReporter(cfg.streamId, cfg.eventsUrl, deps.bus, deps.config, deps.pid, this.log);
    this.resumeAfter = cfg.resumeAfterPts !== undefined && /^-?\d+$/.test(cfg.resumeAfterPts) ? BigInt(cfg.resumeAfterPts) : null;
    this.lastOutputPts = this.resumeAfter;
    this.timeline = new PtsRebaser(deps.config.runner.timeline);
    const resumeRaw = cfg.resumeAfterInputPts !== undefined && /^\d+$/.test(cfg.resumeAfterInputPts) ? BigInt(cfg.resumeAfterInputPts) : null;
    this.resuming = this.resumeAfter !== null && resumeRaw !== null;
    if (this.resuming) this.timeline.seed(resumeRaw!, this.resumeAfter!);
    this.fpsCap = new FrameRateCap(deps.config.media.maxInputFps);
    this.lag = new LagWatch(deps.config.runner.maxBusyMs, TS_CLOCK_HZ / 1000);
    const actors = deps.config.actors;
    const runner = deps.config.runner;
    this.queue = new UnitQueue<Item>(
      { maxFramesInFlight: actors.maxFramesInFlight, maxQueuedBytes: runner.maxQueuedBytes },
      (item) => (item.type === 'unit' ? { video: item.unit.kind === 'video', key: item.unit.key, bytes: item.unit.data.length } : null),
      (item) => {
        if (item.type === 'unit' && item.unit.kind === 'video') this.stats.drop(this.closed ? DropReason.closed : DropReason.shed);
        if (item.type === 'unit' && item.unit.kind === 'video' && !this.closed) this.needKey = true;
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

  get config(): StreamPipelineConfig {
    return this.cfg;
  }

  get workerIds(): string[] {
    return this.router.workerIds;
  }

  get isStarted(): boolean {
    return this.started;
  }

  // ---- commands --------------------------------------------------------------------------------

  /** Answers `sharedGraphs`: prompts whose compiled graph another worker of this process already held. */
  async addWorker(workerId: string, prompts: PromptEntry[]): Promise<{ warmupMs: number; sharedGraphs: number }> {
    this.checkOpen();
    if (this.router.has(workerId)) throw new WorkerError('worker_exists', `stream ${this.streamId} already has worker ${workerId}`);
    const thread = this.deps.threads.acquire(workerId);
    const worker = new InferenceWorker(workerId, thread, this.deps.resolvePrompt, this.log.child({ workerId }));
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
  async updatePrompts(workerId: string, prompts: PromptEntry[], width?: number, height?: number): Promise<{ warmupPerformed: boolean; lastOutputPts: string | null }> {
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
    this.releaseSegments();
    // A last heartbeat carries the final window's figures (drops included) and the last pts.
    if (this.router.count) this.report.heartbeat(this.router.workerIds, this.router.activePromptId, this.snapshotForHeartbeat(), this.inputEnded);
    await this.publisher?.close().catch((err: unknown) => this.log.warn({ err }, 'closing the output channel failed'));
    this.sendStatus();
    await this.report.close();
    for (const w of this.router.removeAll()) {
      await w.dispose().catch(() => undefined);
      await this.deps.threads.release(w.thread);
    }
    this.closeDecoder();
    this.output?.close();
    this.log.info({ ...this.counters, segmentsOut: this.output?.segmentsOut ?? 0, frames: this.stats.total, memory: memoryFigures() }, 'stream closed');
  }

  // ---- input side ------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new WorkerError('shutting_down', `stream ${this.streamId} is closed`);
  }

  private maybeStart(): void {
    if (this.started || this.closed || !this.router.ready) return;
    this.started = true;
    this.log.info({ activePromptId: this.router.activePromptId, ...this.router.size }, 'media path starts');
    // The input starts at once; the publisher's first answer (the channel's next seq) arrives while
    // the first units come in.
    const ready = openPublisher(this.cfg.publishUrl, { config: this.deps.config.trickle, logger: this.log }).then((p) => {
      this.publisher = p;
      this.output = new OutputSegments(
        p,
        this.deps.config.media,
        this.log,
        (err) => this.failOutput(err),
        (seq) => this.report.trace('runner_send_first_processed_segment', { seq }),
      );
    });
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
      if (this.counters.segmentsIn === 0) return;
      goneAfterData = true;
      sub.close();
    });
    let failure: Error | null = null;
    try {
      for await (const ev of readInput(sub, { maxPesBytes: config.runner.maxUnitBytes, onBytes: () => this.touchInput() })) {
        if (this.closed || this.output?.isFailed) break;
        if (ev.type === 'segment') {
          this.counters.segmentsIn++;
          if (this.counters.segmentsIn === 1) this.report.trace('runner_receive_first_ingest_segment', { seq: ev.seq });
        }
        this.queue.push(ev);
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      this.log.warn({ err: failure }, 'input channel failed');
    }
    if (!this.closed && !this.output?.isFailed) {
      // Reported once the processing side has drained, so a runtime that closes the stream on
      // this event loses none of the frames still on their way.
      // A runner restarted after its stream had output (resumeAfter) finding no channel: the
      // input ended while it was down, it did not fail to appear.
      if (this.counters.segmentsIn === 0 && this.resumeAfter === null && (sub.endReason === 'not_found' || failure)) {
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

  /** Decode, graph and encode, one unit at a time, in input order. */
  private async runProcessing(ready: Promise<void>): Promise<void> {
    await ready.catch((err: unknown) => this.failOutput(err));
    for await (const item of this.queue) {
      if (this.closed) {
        if (item.type === 'unit' && item.unit.kind === 'video') this.stats.drop(DropReason.closed);
        continue;
      }
      if (this.output?.isFailed !== false) continue;
      try {
        await this.process(item);
      } catch (err) {
        this.log.warn({ err, code: errorCode(err) }, 'input unit failed; going on');
      }
    }
    await this.flushDecoder();
    if (this.seg) this.endSegment(this.seg);
    this.releaseSegments();
    await this.output?.drain();
    if (this.inputEnd && !this.closed) this.endInput(this.inputEnd.reason, this.inputEnd.detail);
  }

  private async process(item: Item): Promise<void> {
    switch (item.type) {
      case 'segment': {
        const size = { ...this.router.size };
        const s: InputSeg = { seq: item.seq, size, audio: this.audio?.current ?? null, frameRate: this.frameRate, release: this.router.hold(size) };
        this.seg = s;
        this.segsInFlight.add(s);
        return;
      }
      case 'program':
        await this.openProgram(item.program);
        return;
      case 'unit':
        if (item.unit.kind === 'video') await this.videoUnit(item.unit);
        else await this.audioUnit(item.unit);
        return;
      case 'segment_end': {
        const corrupt = this.decoder?.takeCorrupt() ?? 0;
        if (item.problem || corrupt > 0) {
          this.counters.decodeErrors++;
          const message = item.problem?.message ?? `input segment ${item.seq}: ${corrupt} corrupt pictures skipped`;
          this.log.warn({ seq: item.seq, code: item.problem?.code ?? 'MEDIA_DECODE_FAILED', err: message }, 'input segment failed to decode; going on');
        }
        if (this.seg && this.seg.seq === item.seq) this.endSegment(this.seg);
        return;
      }
    }
  }

  private async openProgram(program: TsProgram): Promise<void> {
    await this.flushDecoder();
    this.closeDecoder();
    this.needKey = true;
    this.audio = program.audio && AudioPassthrough.supports(program.audio.streamType) ? new AudioPassthrough(program.audio.streamType) : null;
    // The segment that brought the program has no output yet: its output carries the audio too.
    if (this.seg) this.seg.audio = this.audio?.current ?? null;
    if (program.audio && !this.audio) this.log.warn({ streamType: program.audio.streamType }, 'input audio cannot be copied through; its packets are dropped');
    if (!program.video || !isDecodableVideo(program.video.streamType)) {
      this.log.warn({ video: program.video }, 'input program has no decodable video stream');
      return;
    }
    this.decoder = VideoDecoder.open(program.video.streamType, { ...this.router.size, threads: this.deps.config.media.decoderThreads });
  }

  private async flushDecoder(): Promise<void> {
    if (!this.decoder || !this.seg) return;
    for (const frame of this.decoder.flush(this.seg.size)) await this.picture(frame, performance.now());
  }

  private closeDecoder(): void {
    this.decoder?.close();
    this.decoder = null;
  }

  private async videoUnit(unit: TsUnit): Promise<void> {
    if (!this.decoder || !this.seg) return;
    if (this.needKey) {
      if (!unit.key) {
        this.stats.drop(DropReason.noKeyframe);
        return;
      }
      this.needKey = false;
    }
    if (unit.pts !== null) {
      this.arrivals.set(unit.pts, unit.lastByteAt);
      if (this.arrivals.size > 64) this.arrivals.delete(this.arrivals.keys().next().value as bigint);
    }
    for (const frame of this.decoder.decode(unit, this.seg.size)) {
      await this.picture(frame, this.arrivals.get(frame.pts) ?? unit.lastByteAt);
    }
  }

  private async audioUnit(unit: TsUnit): Promise<void> {
    if (!this.audio || !this.seg || unit.pts === null) return;
    const t = this.timeline.audio(unit.pts);
    if (t.discontinuity) this.discontinuity(t.discontinuity);
    // Nothing after the resume point has been output yet: this audio was published before.
    if (this.resumeAfter !== null && this.lastOutputPts === this.resumeAfter) return;
    if (!t.advances) return;
    const a = this.audio.packet(unit, t.pts);
    if (!a) return;
    await this.writeAudio(this.seg, a);
  }

  private async writeAudio(seg: InputSeg, a: AudioPacket): Promise<void> {
    if (!this.output) {
      a.packet.free();
      return;
    }
    await this.output.audio(seg, a);
  }

  private async picture(frame: VideoFrame, arrivedAt: number): Promise<void> {
    const seg = this.seg!;
    const raw = frame.pts;
    this.arrivals.delete(raw);
    this.noteFrameRate(raw);
    if (this.resuming) {
      if (this.timeline.videoAtOrBefore(raw, this.deps.config.runner.timeline.maxForwardJumpMs)) {
        this.stats.frameIn();
        this.counters.framesSkippedForResume++;
        return;
      }
      this.resuming = false;
    }
    const t = this.timeline.video(raw);
    if (t.discontinuity) this.discontinuity(t.discontinuity);
    frame.pts = t.pts;
    this.stats.frameIn();
    if (!this.fpsCap.admit(Number(frame.pts) / TS_CLOCK_HZ)) return;
    if (this.resumeAfter !== null && frame.pts <= this.resumeAfter && this.lastOutputPts === this.resumeAfter) {
      this.counters.framesSkippedForResume++;
      return;
    }
    if (this.lastOutputPts !== null && frame.pts <= this.lastOutputPts) {
      this.stats.drop(DropReason.ptsOrder);
      return;
    }
    if (this.lag.skip(frame.pts, this.queue.busySince, this.queue.backedUp, performance.now())) {
      this.stats.drop(DropReason.graphSlow);
      return;
    }
    let r;
    try {
      r = await this.router.run(frame.data, seg.size);
    } catch (err) {
      this.stats.drop(DropReason.graphError);
      this.log.warn({ err, code: errorCode(err), pts: String(frame.pts) }, 'graph run failed; frame dropped');
      return;
    }
    if (!r) {
      this.stats.drop(DropReason.noWorker);
      return;
    }
    if (!this.output) return;
    const w = await this.output.video(seg, { data: r.data, width: r.width, height: r.height, pts: frame.pts, timeBase: frame.timeBase });
    if (w === 'encode_error') this.stats.drop(DropReason.encodeError);
    if (w !== 'written') return;
    const latencyMs = performance.now() - arrivedAt;
    this.stats.frameOut(latencyMs);
    this.lastOutputPts = frame.pts;
    this.lastOutputRaw = raw;
    this.lastOutputAt = Date.now();
    if (!this.firstOutput) {
      this.firstOutput = true;
      this.report.emit({ type: 'first_output', latencyMs });
    }
  }

  /** The input's nominal frame rate from pts deltas (only sizes x264's keyint). */
  private noteFrameRate(raw: bigint): void {
    if (this.lastRawPts !== null && raw > this.lastRawPts) {
      const fps = TS_CLOCK_HZ / Number(raw - this.lastRawPts);
      if (fps >= 1 && fps <= 240) this.frameRate = this.frameRate ? this.frameRate * 0.9 + fps * 0.1 : fps;
    }
    this.lastRawPts = raw;
  }

  private discontinuity(d: Discontinuity): void {
    this.counters.discontinuities++;
    const detail = { kind: d.kind, stream: d.stream, from_pts: d.from?.toString() ?? '', to_pts: d.to.toString(), offset: d.offset.toString() };
    this.log.info(detail, 'input timestamps jumped; output continues rebased');
    this.report.emit({ type: 'discontinuity', ...detail });
    this.report.streamEvent('timestamp_discontinuity', detail);
  }

  private endSegment(seg: InputSeg): void {
    this.output?.endOf(seg);
    this.segsInFlight.delete(seg);
    seg.release();
    if (this.seg === seg) this.seg = null;
  }

  /** Ends every hold still open (the processing side stopped). */
  private releaseSegments(): void {
    for (const seg of [...this.segsInFlight]) {
      this.segsInFlight.delete(seg);
      seg.release();
    }
  }

  private failOutput(err: unknown): void {
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
      ...(this.lastOutputRaw !== null ? { lastInputPts: this.lastOutputRaw.toString() } : {}),
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
      segmentsIn: this.counters.segmentsIn,
      segmentsOut: this.output?.segmentsOut ?? 0,
      decodeErrors: this.counters.decodeErrors,
      discontinuities: this.counters.discontinuities,
      lastInputAt: this.lastInputAt,
      lastOutputAt: this.lastOutputAt,
      ...this.router.size,
    });
  }
}

export type { StreamEvent };
