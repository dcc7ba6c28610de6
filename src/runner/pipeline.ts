// One stream's media path inside a worker process: trickle GET -> progressive decode -> drop-oldest
// mailbox -> the active prompt's inference worker -> encode with the input's exact pts -> trickle
// POST, one output segment per input segment. Also the stream's control/events channels, its
// heartbeats and its events on the bus. Frames never leave the process.
import '../polyfill.ts';
import { Scaler } from 'node-av';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { releaseItem, decodeStream, type AudioPacket, type InputInfo } from '../media/decode.ts';
import { SegmentEncoder, YuvConverter } from '../media/encode.ts';
import type { VideoFrame } from '../media/frame.ts';
import { FrameRateCap } from '../media/geometry.ts';
import type { Bus } from '../transport/bus.ts';
import { subjects } from '../transport/subjects.ts';
import type { TricklePublisher } from '../transport/trickle/publisher.ts';
import { TrickleSubscriber } from '../transport/trickle/subscriber.ts';
import type { PromptEntry, StreamEvent, StreamPipelineConfig, WorkerHeartbeat } from '../transport/worker-protocol.ts';
import type { ResolvedPrompt } from '../inference/types.ts';
import { followControl } from './control-channel.ts';
import { DegradedWatch } from './degraded.ts';
import { errorCode, WorkerError } from './errors.ts';
import { EventsChannel } from './events-channel.ts';
import type { ThreadPool } from '../inference/threads/inference-thread.ts';
import { InferenceWorker, type Prepared } from '../inference/threads/inference-worker.ts';
import { DropOldestMailbox } from './mailbox.ts';
import { PtsPacer } from './pacer.ts';
import { isTrickleFailure, LazySegmentSink, openPublisher, trickleFailure } from './output.ts';
import { FrameStats } from './stats.ts';

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
  /** The graph was slower than the input: the oldest waiting frame made room. */
  graphSlow: 'graph_slow',
  graphError: 'graph_error',
  encodeError: 'encode_error',
  /** No worker holds the active prompt (it was removed). */
  noWorker: 'no_worker',
  /** A frame whose pts is not above the last output pts (the input went back in time). */
  ptsOrder: 'pts_order',
  /** Frames still waiting when the stream was closed. */
  closed: 'stream_closed',
} as const;

/** One input segment as the output side sees it. */
interface InputSeg {
  seq: number;
  info: InputInfo | null;
  /** Ends the segment's hold on the graphs of its frame size (see holdGraphs()). */
  release: () => void;
}

type Item =
  | { kind: 'frame'; seg: InputSeg; frame: VideoFrame; decodedAt: number }
  | { kind: 'audio'; seg: InputSeg; audio: AudioPacket }
  | { kind: 'end'; seg: InputSeg };

interface Out {
  seg: InputSeg;
  enc: SegmentEncoder;
  sink: LazySegmentSink;
  width: number;
  height: number;
  frames: number;
}

export interface PipelineCounters {
  segmentsIn: number;
  segmentsOut: number;
  decodeErrors: number;
  framesSkippedForResume: number;
}

export class StreamPipeline {
  readonly streamId: string;
  readonly counters: PipelineCounters = { segmentsIn: 0, segmentsOut: 0, decodeErrors: 0, framesSkippedForResume: 0 };
  private readonly cfg: StreamPipelineConfig;
  private readonly log: Logger;
  private readonly stats = new FrameStats();
  private readonly workers = new Map<string, InferenceWorker>();
  /** Each worker's prompt entries, to re-warm them when the stream's size changes. */
  private readonly workerPrompts = new Map<string, PromptEntry[]>();
  private size: { width: number; height: number };
  private activePromptId: string;
  private lastOutputPts: bigint | null = null;
  private readonly resumeAfter: bigint | null;
  private readonly mailbox: DropOldestMailbox<Item>;
  /** Decoded items on their way to the mailbox, released at the input's pace (see pacer.ts). */
  private pacer: PtsPacer<Item> | null = null;
  private readonly degraded: DegradedWatch;
  private readonly converter = new YuvConverter();
  private started = false;
  private closed = false;
  private outputFailed = false;
  private firstOutput = false;
  private inputEnded = false;
  /** How the input ended, set by the input side and reported when the output side has drained. */
  private inputEnd: { reason: 'input_ended' | 'input_timeout'; detail: string } | null = null;
  private input: TrickleSubscriber | null = null;
  private control: TrickleSubscriber | null = null;
  private events: EventsChannel | null = null;
  private output: TricklePublisher | null = null;
  private loops: Promise<unknown>[] = [];
  /** Output segments being ended, in order (see finish()). */
  private finishing: Promise<void> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];
  /** Input segments whose frames may still be on their way to the graph (their size holds). */
  private readonly segsInFlight = new Set<InputSeg>();
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
    this.size = { width: cfg.width, height: cfg.height };
    this.activePromptId = cfg.activePromptId;
    this.resumeAfter = cfg.resumeAfterPts !== undefined && /^-?\d+$/.test(cfg.resumeAfterPts) ? BigInt(cfg.resumeAfterPts) : null;
    this.lastOutputPts = this.resumeAfter;
    const actors = deps.config.actors;
    this.mailbox = new DropOldestMailbox<Item>(
      actors.maxFramesInFlight,
      (item) => {
        if (item.kind === 'frame') this.stats.drop(DropReason.graphSlow);
        else if (item.kind === 'audio') releaseItem({ kind: 'audio', audio: item.audio });
      },
      (item) => item.kind === 'frame',
    );
    this.degraded = new DegradedWatch(actors.degradedInputMs, (d) => {
      this.log.info({ degraded: d }, d ? 'no input: degraded' : 'input is back');
      this.emit({ type: 'degraded', degraded: d });
    });
    const hb = setInterval(() => this.heartbeat(), actors.heartbeatIntervalMs);
    this.timers.push(hb);
    if (cfg.eventsUrl) {
      this.events = new EventsChannel(cfg.eventsUrl, deps.config.trickle, actors.maxQueuedStreamEvents, this.log);
      this.timers.push(setInterval(() => this.sendStatus(), actors.eventsIntervalMs));
      this.sendStatus();
    }
    if (cfg.controlUrl) {
      this.control = followControl(cfg.controlUrl, {
        config: deps.config.trickle,
        waitMs: actors.inputWaitMs,
        maxBytes: actors.maxControlMessageBytes,
        log: this.log,
        onParams: (params) => this.emit({ type: 'control', params }),
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
    return [...this.workers.keys()];
  }

  get isStarted(): boolean {
    return this.started;
  }

  // ---- commands --------------------------------------------------------------------------------

  /** Answers `sharedGraphs`: prompts whose compiled graph another worker of this process already held. */
  async addWorker(workerId: string, prompts: PromptEntry[]): Promise<{ warmupMs: number; sharedGraphs: number }> {
    this.checkOpen();
    if (this.workers.has(workerId)) throw new WorkerError('worker_exists', `stream ${this.streamId} already has worker ${workerId}`);
    const thread = this.deps.threads.acquire(workerId);
    const worker = new InferenceWorker(workerId, thread, this.deps.resolvePrompt, this.log.child({ workerId }));
    try {
      const { warmupMs, shared } = await worker.load(prompts, this.size.width, this.size.height);
      this.checkOpen();
      this.workers.set(workerId, worker);
      this.workerPrompts.set(workerId, prompts);
      this.maybeStart();
      this.heartbeatOf(workerId, this.snapshotForHeartbeat());
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
    const worker = this.workerOrThrow(workerId);
    const next = { width: width ?? this.size.width, height: height ?? this.size.height };
    const resized = next.width !== this.size.width || next.height !== this.size.height;
    // Every worker of the stream must take frames of the new size: on a resize the others re-warm
    // too. All compile beside the running graphs first, then all swap at once (one frame boundary),
    // so no worker ever holds graphs of a size the decoder does not produce.
    const staged: Prepared[] = [];
    try {
      staged.push(await worker.prepare(prompts, next.width, next.height));
      if (resized) {
        for (const [id, w] of this.workers) {
          if (id !== workerId) staged.push(await w.prepare(this.workerPrompts.get(id) ?? [], next.width, next.height));
        }
      }
    } catch (err) {
      await Promise.allSettled(staged.map((p) => p.discard()));
      throw err;
    }
    for (const p of staged) p.commit();
    this.workerPrompts.set(workerId, prompts);
    if (resized) {
      // Frames already decoded at the old size finish on the old graphs, which the workers keep
      // while the segments decoded at that size are in flight (holdGraphs()).
      this.size = next;
      this.log.info({ width: next.width, height: next.height }, 'stream size changed; frames at the new size start at the next input segment');
    }
    if (!this.workerFor(this.activePromptId) && prompts.length) {
      this.log.info({ from: this.activePromptId, to: prompts[0].id }, 'active prompt replaced by the update');
      this.activePromptId = prompts[0].id;
    }
    this.maybeStart();
    return { warmupPerformed: resized, lastOutputPts: this.lastOutputPts?.toString() ?? null };
  }

  /** The next frame goes to `promptId`'s worker; answers the last pts output before the switch. */
  switchPrompt(promptId: string): { activePromptId: string; lastOutputPts: string | null } {
    this.checkOpen();
    if (!this.workerFor(promptId)) throw new WorkerError('unknown_prompt', `no worker of stream ${this.streamId} holds prompt ${promptId}`);
    this.activePromptId = promptId;
    this.maybeStart();
    return { activePromptId: promptId, lastOutputPts: this.lastOutputPts?.toString() ?? null };
  }

  async removeWorker(workerId: string): Promise<{ removed: boolean }> {
    const worker = this.workerOrThrow(workerId);
    this.workers.delete(workerId);
    this.workerPrompts.delete(workerId);
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
    for (const item of this.pacer?.stop() ?? []) {
      if (item.kind === 'audio') item.audio.packet.free();
      else if (item.kind === 'frame') this.stats.drop(DropReason.closed);
    }
    this.mailbox.end();
    await Promise.allSettled(this.loops);
    for (const item of this.mailbox.drainRemaining()) if (item.kind === 'audio') item.audio.packet.free();
    this.releaseSegments();
    // A last heartbeat carries the final window's figures (drops included) and the last pts.
    if (this.workers.size) {
      const stats = this.snapshotForHeartbeat();
      for (const id of this.workers.keys()) this.heartbeatOf(id, stats);
    }
    await this.output?.close().catch((err: unknown) => this.log.warn({ err }, 'closing the output channel failed'));
    if (this.events) {
      this.sendStatus();
      await this.events.close().catch(() => undefined);
    }
    for (const [id, w] of this.workers) {
      this.workers.delete(id);
      await w.dispose().catch(() => undefined);
      await this.deps.threads.release(w.thread);
    }
    this.converter.close();
    this.log.info({ ...this.counters, frames: this.stats.total }, 'stream closed');
  }

  // ---- media path ------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new WorkerError('shutting_down', `stream ${this.streamId} is closed`);
  }

  private workerOrThrow(workerId: string): InferenceWorker {
    const w = this.workers.get(workerId);
    if (!w) throw new WorkerError('unknown_worker', `stream ${this.streamId} has no worker ${workerId}`);
    return w;
  }

  private workerFor(promptId: string): InferenceWorker | undefined {
    for (const w of this.workers.values()) if (w.has(promptId)) return w;
    return undefined;
  }

  private maybeStart(): void {
    if (this.started || this.closed || !this.workerFor(this.activePromptId)) return;
    this.started = true;
    this.log.info({ activePromptId: this.activePromptId, ...this.size }, 'media path starts');
    const ready = openPublisher(this.cfg.publishUrl, { config: this.deps.config.trickle, logger: this.log }).then((p) => {
      this.output = p;
      if (this.closed) return;
      this.degraded.start();
      // Both sides start together, so no decoded frame waits for the output to exist.
      this.loops.push(this.runOutput(), this.runInput());
    });
    this.loops.push(ready);
  }

  /** The input side: never blocks on the graph (the mailbox drops instead). */
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
    const fpsCap = new FrameRateCap(config.media.maxInputFps);
    const scaler = new Scaler();
    const pacer = config.actors.paceInput
      ? new PtsPacer<Item>(
          { maxAheadMs: config.actors.paceMaxAheadMs, resyncLateMs: config.actors.paceResyncLateMs },
          (item) => this.toMailbox(item),
          () => this.mailbox.end(),
        )
      : null;
    this.pacer = pacer;
    const send = (item: Item): void => {
      if (!pacer) return this.toMailbox(item);
      if (item.kind === 'frame') pacer.pushFrame(item, (Number(item.frame.pts) * item.frame.timeBase.num) / item.frame.timeBase.den);
      else pacer.push(item);
    };
    let failure: Error | null = null;
    try {
      for await (const seg of sub) {
        if (this.closed) break;
        this.counters.segmentsIn++;
        this.touchInput();
        if (this.counters.segmentsIn === 1) this.trace('runner_receive_first_ingest_segment', { seq: seg.seq });
        const { width, height } = this.size;
        const s: InputSeg = { seq: seg.seq, info: null, release: this.holdGraphs(width, height) };
        this.segsInFlight.add(s);
        const body = this.watchBytes(seg.body);
        for await (const item of decodeStream(body, { media: config.media, width, height, log: this.log, fpsCap, scaler, onInput: (i) => (s.info = i) })) {
          if (item.kind === 'error') {
            this.counters.decodeErrors++;
            this.log.warn({ seq: seg.seq, code: item.error.code, err: item.error.message }, 'input segment failed to decode; going on');
            continue;
          }
          if (this.closed || this.outputFailed) {
            releaseItem(item);
            continue;
          }
          if (item.kind === 'audio') {
            if (this.resumeAfter !== null && this.lastOutputPts === this.resumeAfter) {
              // Nothing after the resume point has been output yet: this audio was published before.
              releaseItem(item);
              continue;
            }
            send({ kind: 'audio', seg: s, audio: item.audio });
            continue;
          }
          this.stats.frameIn();
          if (this.resumeAfter !== null && item.frame.pts <= this.resumeAfter) {
            this.counters.framesSkippedForResume++;
            continue;
          }
          send({ kind: 'frame', seg: s, frame: item.frame, decodedAt: 0 });
        }
        send({ kind: 'end', seg: s });
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      this.log.warn({ err: failure }, 'input channel failed');
    } finally {
      scaler.close();
    }
    if (!this.closed && !this.outputFailed) {
      // Reported once the output side has drained (runOutput), so a runtime that closes the stream
      // on this event loses none of the frames still on their way.
      if (this.counters.segmentsIn === 0 && (sub.endReason === 'not_found' || failure)) {
        this.inputEnd = { reason: 'input_timeout', detail: failure ? failure.message : `no input channel within ${config.actors.inputWaitMs} ms` };
      } else if (goneAfterData || sub.endReason === 'closed' || sub.endReason === 'not_found' || failure) {
        this.inputEnd = { reason: 'input_ended', detail: failure ? failure.message : `input channel ${goneAfterData ? 'not_found' : sub.endReason}` };
      }
    }
    if (pacer && !this.closed) pacer.end();
    else this.mailbox.end();
  }

  /** Into the graph's mailbox; a frame's latency clock starts here (decoded, and due at the input's pace). */
  private toMailbox(item: Item): void {
    if (item.kind === 'frame') item.decodedAt = performance.now();
    this.mailbox.push(item);
  }

  private endInput(reason: 'input_ended' | 'input_timeout' | 'control_closed', detail: string): void {
    if (this.inputEnded) return;
    this.inputEnded = true;
    this.degraded.stop();
    this.log.info({ reason, detail }, 'input ended');
    this.emit({ type: 'input_ended', reason, detail });
  }

  /**
   * Holds every worker's graphs at width x height until the segment decoded at that size has been
   * through the output side, so a size change meanwhile lets its frames finish on the old graphs.
   */
  private holdGraphs(width: number, height: number): () => void {
    const releases = [...this.workers.values()].map((w) => w.hold(width, height));
    return () => {
      for (const r of releases.splice(0)) r();
    };
  }

  private endSegment(seg: InputSeg): void {
    this.segsInFlight.delete(seg);
    seg.release();
  }

  /** Ends every hold still open (the output side stopped; a segment that failed to decode sent no end). */
  private releaseSegments(): void {
    for (const seg of [...this.segsInFlight]) this.endSegment(seg);
  }

  private touchInput(): void {
    this.lastInputAt = Date.now();
    this.degraded.touch();
  }

  private async *watchBytes(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of body) {
      this.touchInput();
      yield chunk;
    }
  }

  /** The output side: graph, then encode, one frame at a time, in input order. */
  private async runOutput(): Promise<void> {
    let out: Out | null = null;
    for await (const item of this.mailbox) {
      // Every frame of the segment has run: its hold on the graphs of its size ends.
      if (item.kind === 'end') this.endSegment(item.seg);
      if (this.closed && item.kind === 'frame') {
        // Closing: what still waits is not run, but it is accounted for.
        this.stats.drop(DropReason.closed);
        continue;
      }
      if (this.outputFailed) {
        if (item.kind === 'audio') item.audio.packet.free();
        continue;
      }
      if (item.kind === 'end') {
        if (out && out.seg === item.seg) {
          this.finish(out);
          out = null;
        }
        continue;
      }
      if (item.kind === 'audio') {
        if (out && out.seg !== item.seg) {
          this.finish(out);
          out = null;
        }
        out ??= this.startOutput(item.seg);
        try {
          await out.enc.writeAudio(item.audio);
        } catch (err) {
          this.log.debug({ err }, 'audio packet not muxed');
        }
        continue;
      }
      out = await this.runFrame(item, out);
    }
    if (out) this.finish(out);
    this.releaseSegments();
    await this.finishing;
    if (this.inputEnd && !this.closed) this.endInput(this.inputEnd.reason, this.inputEnd.detail);
  }

  private async runFrame(item: Extract<Item, { kind: 'frame' }>, current: Out | null): Promise<Out | null> {
    let out = current;
    const { frame } = item;
    const promptId = this.activePromptId;
    const worker = this.workerFor(promptId);
    if (!worker) {
      this.stats.drop(DropReason.noWorker);
      return out;
    }
    let r;
    try {
      r = await worker.run(promptId, frame.data, frame.width, frame.height);
    } catch (err) {
      this.stats.drop(DropReason.graphError);
      this.log.warn({ err, code: errorCode(err), pts: String(frame.pts) }, 'graph run failed; frame dropped');
      return out;
    }
    if (this.lastOutputPts !== null && frame.pts <= this.lastOutputPts) {
      this.stats.drop(DropReason.ptsOrder);
      return out;
    }
    // A new input segment, or a new frame size (a size update), starts a fresh output segment.
    if (out && (out.seg !== item.seg || (out.frames > 0 && (out.width !== r.width || out.height !== r.height)))) {
      this.finish(out);
      out = null;
    }
    if (this.outputFailed) return null;
    out ??= this.startOutput(item.seg);
    const latencyMs = performance.now() - item.decodedAt;
    try {
      await out.enc.writeVideo({ data: r.data, width: r.width, height: r.height, pts: frame.pts, timeBase: frame.timeBase });
    } catch (err) {
      await out.enc.abort(err).catch(() => undefined);
      if (isTrickleFailure(err)) this.failOutput(err);
      else {
        this.stats.drop(DropReason.encodeError);
        this.log.warn({ err, code: errorCode(err) }, 'encode failed; output segment dropped');
      }
      return null;
    }
    out.width = r.width;
    out.height = r.height;
    out.frames++;
    this.stats.frameOut(latencyMs);
    this.lastOutputPts = frame.pts;
    this.lastOutputAt = Date.now();
    if (!this.firstOutput) {
      this.firstOutput = true;
      this.emit({ type: 'first_output', latencyMs });
    }
    return out;
  }

  private startOutput(seg: InputSeg): Out {
    const sink = new LazySegmentSink(this.output!);
    const enc = new SegmentEncoder(sink, {
      media: this.deps.config.media,
      audio: seg.info?.audio ?? null,
      frameRate: seg.info?.frameRate,
      converter: this.converter,
    });
    return { seg, enc, sink, width: 0, height: 0, frames: 0 };
  }

  /**
   * Ends an output segment without holding up the frame loop: the end waits for the server's answer
   * to the segment's POST (a network round trip), while the next segment's frames go on into their
   * own encoder and POST. Segments end in order, one after another.
   */
  private finish(out: Out): void {
    this.finishing = this.finishing.then(() => this.finishNow(out));
  }

  private async finishNow(out: Out): Promise<void> {
    try {
      await out.enc.end();
      if (out.frames === 0) return;
      this.counters.segmentsOut++;
      if (this.counters.segmentsOut === 1) this.trace('runner_send_first_processed_segment', { seq: out.sink.seq });
    } catch (err) {
      if (isTrickleFailure(err)) this.failOutput(err);
      else this.log.warn({ err, code: errorCode(err) }, 'output segment failed to finish');
    }
  }

  private failOutput(err: unknown): void {
    if (this.outputFailed) return;
    this.outputFailed = true;
    const cause = trickleFailure(err) ?? (err as Error);
    const reason = `${errorCode(cause) ?? 'error'}: ${cause.message}`;
    this.log.error({ err }, 'output channel failed');
    this.emit({ type: 'output_failed', reason });
    // Nothing more can be published: stop reading input too.
    this.input?.close();
    this.degraded.stop();
  }

  // ---- reporting -------------------------------------------------------------------------------

  private emit(ev: StreamEvent): void {
    try {
      this.deps.bus.publish(subjects.streamEvt(this.streamId), ev);
    } catch (err) {
      this.log.warn({ err, event: ev.type }, 'stream event not published');
    }
  }

  private snapshotForHeartbeat(): WorkerHeartbeat['stats'] {
    const s = this.stats.snapshot();
    this.lastStats = { fpsIn: s.fpsIn, fpsOut: s.fpsOut, latencyP50Ms: s.latencyP50Ms, latencyP99Ms: s.latencyP99Ms };
    return {
      ...s,
      degraded: this.degraded.degraded,
      ...(this.lastOutputPts !== null ? { lastOutputPts: this.lastOutputPts.toString() } : {}),
    };
  }

  private heartbeatOf(workerId: string, stats: WorkerHeartbeat['stats']): void {
    const hb: WorkerHeartbeat = { pid: this.deps.pid, streamId: this.streamId, workerId, activePromptId: this.activePromptId, stats };
    try {
      this.deps.bus.publish(subjects.workerHb(this.streamId, workerId), hb);
    } catch (err) {
      this.log.debug({ err }, 'heartbeat not published');
    }
  }

  private heartbeat(): void {
    if (this.closed || this.workers.size === 0) return;
    // One stats window per stream per interval: every worker's heartbeat carries the same snapshot.
    const stats = this.snapshotForHeartbeat();
    for (const id of this.workers.keys()) this.heartbeatOf(id, stats);
  }

  private sendStatus(): void {
    this.events?.send('ai_stream_events', {
      type: 'status',
      stream_id: this.streamId,
      pipeline: 'streamfleet',
      active_prompt_id: this.activePromptId,
      state: this.closed ? 'stopped' : this.inputEnded ? 'input_ended' : this.started ? 'running' : 'starting',
      degraded: this.degraded.degraded,
      input_fps: this.lastStats.fpsIn,
      output_fps: this.lastStats.fpsOut,
      latency_p50_ms: this.lastStats.latencyP50Ms,
      latency_p99_ms: this.lastStats.latencyP99Ms,
      frames_out: this.stats.total,
      segments_in: this.counters.segmentsIn,
      segments_out: this.counters.segmentsOut,
      decode_errors: this.counters.decodeErrors,
      last_input_time: this.lastInputAt,
      last_output_time: this.lastOutputAt,
      width: this.size.width,
      height: this.size.height,
    });
  }

  private trace(type: string, extra: Record<string, unknown>): void {
    this.events?.send('stream_trace', { type, stream_id: this.streamId, ...extra });
  }
}
