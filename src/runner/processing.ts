// A stream's processing side: input events (input.ts: segments, programs, access units, stamped on
// arrival) in, output segments out. One unit at a time, in input order:
//   decode (media/video-decoder, low delay) -> timeline (pts unwrapped, rebased; timeline.ts)
//   -> frame-rate cap -> the graph (a FrameGraphRunner: routing.ts live, a compiled graph offline)
//   -> encode with the frame's pts (output.ts: one output segment per input segment)
// What it needs from around it is narrow: a graph runner, a SegmentOpener (a trickle publisher, or a
// file), a frame counter (stats.ts) and a few hooks. The live runner (pipeline.ts) feeds it from its
// unit queue; the offline `process` command (offline.ts) feeds it a file's segments directly.
//
// Frame buffers. A decoded picture is written into a buffer of the stream's FramePool
// (media/frame-pool.ts) instead of a new 768 KiB one per frame. The buffer goes back to the pool
// when the frame is done: the graph has run on it and returned, the encoder has converted the
// graph's output to yuv420p (synchronously, in OutputSegments.video) and every tap has seen it.
// So a tap (thumbnails) must copy what it keeps, or finish with it before it returns; a graph
// runner that keeps a frame past its run must copy it (a thread runner moves the buffer away,
// which the pool notices and drops).
import '../polyfill.ts';
import type { MediaConfig, TimelineConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { AudioPassthrough } from '../media/audio-passthrough.ts';
import type { AudioPacket } from '../media/audio-track.ts';
import { TS_CLOCK_HZ, type VideoFrame } from '../media/frame.ts';
import { FramePool } from '../media/frame-pool.ts';
import { FrameRateCap } from '../media/geometry.ts';
import type { TsProgram, TsUnit } from '../media/ts-demux.ts';
import { isDecodableVideo, VideoDecoder } from '../media/video-decoder.ts';
import { errorCode } from './errors.ts';
import type { InputEvent } from './input.ts';
import { OutputSegments, type OutputSource, type SegmentOpener } from './output.ts';
import type { FrameSize } from './routing.ts';
import { PtsRebaser, type Discontinuity } from './timeline.ts';

/** Drop reasons counted by the frame counter. */
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

/** What a graph run gives back: an RGB24 frame (maybe of another size than its input). */
export interface GraphOutput {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Where frames run through the graph (the stream's router, or one compiled graph offline). */
export interface FrameGraphRunner {
  /** The size frames are decoded at now (a prompt update may change it; new segments follow). */
  readonly size: FrameSize;
  /**
   * Runs one RGB24 frame of `size`; null when nothing can run it (no worker holds the prompt).
   * `out`, when given, is a buffer the graph may write its output into (it then answers it as
   * `data`); it may also answer the input itself, or a buffer of its own.
   */
  run(data: Uint8Array, size: FrameSize, out?: Uint8Array): Promise<GraphOutput | null>;
  /** Keeps the graphs for frames of `size` alive until the returned release is called. */
  hold(size: FrameSize): () => void;
}

/** Frame accounting (stats.ts's FrameStats). */
export interface FrameCounter {
  frameIn(): void;
  frameOut(latencyMs: number): void;
  drop(reason: string, n?: number): void;
}

export type TapSide = 'input' | 'output';

export interface ProcessingHooks {
  /** The input's timestamps jumped; output continues rebased. */
  discontinuity?(d: Discontinuity): void;
  /** The first frame was written, `latencyMs` after its last input byte arrived. */
  firstOutput?(latencyMs: number): void;
  /** The first output segment was completed (its seq on the output, if known). */
  firstSegment?(seq: number | null): void;
  /** The output failed: nothing more can be written (the caller stops its input). */
  outputFailed?(err: unknown): void;
  /**
   * Sees each frame that goes into the graph (`input`) and each one written (`output`), with its
   * output pts. Synchronous: the bytes are valid only during the call (copy what is kept).
   */
  tap?(side: TapSide, data: Uint8Array, width: number, height: number, pts: bigint): void;
  /** Whether the frame with output pts `pts` should skip the graph (live: the lag watch). */
  skipGraph?(pts: bigint): boolean;
}

export interface ProcessingOptions {
  media: MediaConfig;
  timeline: TimelineConfig;
  graph: FrameGraphRunner;
  output: SegmentOpener;
  counter: FrameCounter;
  log: Logger;
  hooks?: ProcessingHooks;
  /** A restarted runner: output nothing at or before this output pts... */
  resumeAfterPts?: bigint | null;
  /** ...and continue the timeline of the raw input pts that was output last (seeded). */
  resumeAfterInputPts?: bigint | null;
}

export interface ProcessingCounters {
  decodeErrors: number;
  framesSkippedForResume: number;
  discontinuities: number;
}

/** Frames the input's frame rate is averaged over (a 2 s GOP at 30 fps). */
const RATE_WINDOW = 60;

/** One input segment as the processing side sees it. */
interface InputSeg extends OutputSource {
  size: FrameSize;
  /** Ends the segment's hold on the graphs of its frame size. */
  release: () => void;
}

export class StreamProcessing {
  readonly counters: ProcessingCounters = { decodeErrors: 0, framesSkippedForResume: 0, discontinuities: 0 };
  private readonly opts: ProcessingOptions;
  private readonly hooks: ProcessingHooks;
  private readonly log: Logger;
  private readonly output: OutputSegments;
  private readonly timeline: PtsRebaser;
  private readonly fpsCap: FrameRateCap;
  private readonly pool = new FramePool();
  private resumeAfter: bigint | null;
  /** Input segments whose frames may still be on their way to the graph (their size holds). */
  private readonly segsInFlight = new Set<InputSeg>();
  private seg: InputSeg | null = null;
  private decoder: VideoDecoder | null = null;
  private audio: AudioPassthrough | null = null;
  private needKey = true;
  /** Arrival of each recent video unit's last byte, by raw pts (a reordering decoder emits later). */
  private readonly arrivals = new Map<bigint, number>();
  /** Raw pts of the latest frames (at most RATE_WINDOW), for the input's mean frame rate. */
  private readonly recentPts: bigint[] = [];
  private lastOutput: bigint | null;
  /** The raw pts of the last frame output (reported, so a successor continues this timeline). */
  private lastOutputRawPts: bigint | null = null;
  private lastOutputWallAt: number | null = null;
  /** A restarted runner skipping what its predecessor published (timeline seeded). */
  private resuming = false;
  private firstOutputDone = false;

  constructor(opts: ProcessingOptions) {
    this.opts = opts;
    this.hooks = opts.hooks ?? {};
    this.log = opts.log;
    this.resumeAfter = opts.resumeAfterPts ?? null;
    this.lastOutput = this.resumeAfter;
    this.timeline = new PtsRebaser(opts.timeline);
    const resumeRaw = opts.resumeAfterInputPts ?? null;
    this.resuming = this.resumeAfter !== null && resumeRaw !== null;
    if (this.resuming) this.timeline.seed(resumeRaw!, this.resumeAfter!);
    this.fpsCap = new FrameRateCap(opts.media.maxInputFps);
    this.output = new OutputSegments(
      opts.output,
      opts.media,
      this.log,
      (err) => this.hooks.outputFailed?.(err),
      (seq) => this.hooks.firstSegment?.(seq),
    );
  }

  /**
   * Outputs nothing at or before `after` (the last frame on the output channel, written by this
   * stream's previous owner), on top of the resume point it was made with. Before the first frame.
   */
  resumeAfterAtLeast(after: bigint | null): void {
    if (after !== null && (this.lastOutput === null || after > this.lastOutput)) {
      this.resumeAfter = after;
      this.lastOutput = after;
    }
  }

  /** The output pts of the last frame written (the resume point before any). */
  get lastOutputPts(): bigint | null {
    return this.lastOutput;
  }

  get lastOutputRaw(): bigint | null {
    return this.lastOutputRawPts;
  }

  /** Date.now() of the last frame written. */
  get lastOutputAt(): number | null {
    return this.lastOutputWallAt;
  }

  get isFailed(): boolean {
    return this.output.isFailed;
  }

  get segmentsOut(): number {
    return this.output.segmentsOut;
  }

  /** Totals of what was written (frames, audio packets, bytes). */
  get written(): OutputSegments['totals'] {
    return this.output.totals;
  }

  /** Frames the input frame-rate cap let pass by. */
  get droppedByFpsCap(): number {
    return this.fpsCap.dropped;
  }

  /** Units were dropped before they got here: the decoder must restart at a random access point. */
  requireKeyframe(): void {
    this.needKey = true;
  }

  /** Takes one input event (decode, graph, encode as far as it goes). */
  async handle(item: InputEvent): Promise<void> {
    switch (item.type) {
      case 'segment': {
        const size = { ...this.opts.graph.size };
        const s: InputSeg = { seq: item.seq, size, audio: this.audio?.current ?? null, frameRate: this.frameRate(), release: this.opts.graph.hold(size) };
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

  /** The input is over: what the decoder holds is output, the open segment ends, every segment is finished. */
  async finish(): Promise<void> {
    await this.flushDecoder();
    if (this.seg) this.endSegment(this.seg);
    this.releaseSegments();
    await this.output.drain();
  }

  /** Ends every hold still open (the processing side stopped). */
  releaseSegments(): void {
    for (const seg of [...this.segsInFlight]) {
      this.segsInFlight.delete(seg);
      seg.release();
    }
  }

  /** Frees the decoder and the encoder's conversion context. */
  close(): void {
    this.releaseSegments();
    this.closeDecoder();
    this.output.close();
    this.pool.clear();
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
    this.decoder = VideoDecoder.open(program.video.streamType, { ...this.opts.graph.size, threads: this.opts.media.decoderThreads, pool: this.pool });
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
        this.opts.counter.drop(DropReason.noKeyframe);
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
    if (this.resumeAfter !== null && this.lastOutput === this.resumeAfter) return;
    if (!t.advances) return;
    const a = this.audio.packet(unit, t.pts);
    if (!a) return;
    await this.writeAudio(this.seg, a);
  }

  private async writeAudio(seg: InputSeg, a: AudioPacket): Promise<void> {
    await this.output.audio(seg, a);
  }

  /**
   * One decoded picture. Its buffer, and the pool buffer offered to the graph for its output, go
   * back to the pool once the frame is done (see the header).
   */
  private async picture(frame: VideoFrame, arrivedAt: number): Promise<void> {
    const target = { buf: null as Buffer | null };
    try {
      await this.pictureNow(frame, arrivedAt, target);
    } finally {
      this.pool.release(frame.data);
      if (target.buf) this.pool.release(target.buf);
    }
  }

  private async pictureNow(frame: VideoFrame, arrivedAt: number, target: { buf: Buffer | null }): Promise<void> {
    const seg = this.seg!;
    const counter = this.opts.counter;
    const raw = frame.pts;
    this.arrivals.delete(raw);
    this.noteFrameRate(raw);
    if (this.resuming) {
      if (this.timeline.videoAtOrBefore(raw, this.opts.timeline.maxForwardJumpMs)) {
        counter.frameIn();
        this.counters.framesSkippedForResume++;
        return;
      }
      this.resuming = false;
    }
    const t = this.timeline.video(raw);
    if (t.discontinuity) this.discontinuity(t.discontinuity);
    frame.pts = t.pts;
    counter.frameIn();
    if (!this.fpsCap.admit(Number(frame.pts) / TS_CLOCK_HZ)) return;
    if (this.resumeAfter !== null && frame.pts <= this.resumeAfter && this.lastOutput === this.resumeAfter) {
      this.counters.framesSkippedForResume++;
      return;
    }
    if (this.lastOutput !== null && frame.pts <= this.lastOutput) {
      counter.drop(DropReason.ptsOrder);
      return;
    }
    if (this.hooks.skipGraph?.(frame.pts)) {
      counter.drop(DropReason.graphSlow);
      return;
    }
    this.hooks.tap?.('input', frame.data, frame.width, frame.height, frame.pts);
    let r: GraphOutput | null;
    // The output is most often the size of the input; a graph that cannot use the buffer ignores it.
    target.buf = this.pool.take(frame.data.length);
    try {
      r = await this.opts.graph.run(frame.data, seg.size, target.buf);
    } catch (err) {
      counter.drop(DropReason.graphError);
      this.log.warn({ err, code: errorCode(err), pts: String(frame.pts) }, 'graph run failed; frame dropped');
      return;
    }
    if (!r) {
      counter.drop(DropReason.noWorker);
      return;
    }
    const w = await this.output.video(seg, { data: r.data, width: r.width, height: r.height, pts: frame.pts, timeBase: frame.timeBase });
    if (w === 'encode_error') counter.drop(DropReason.encodeError);
    if (w !== 'written') return;
    const latencyMs = performance.now() - arrivedAt;
    counter.frameOut(latencyMs);
    this.lastOutput = frame.pts;
    this.lastOutputRawPts = raw;
    this.lastOutputWallAt = Date.now();
    this.hooks.tap?.('output', r.data, r.width, r.height, frame.pts);
    if (!this.firstOutputDone) {
      this.firstOutputDone = true;
      this.hooks.firstOutput?.(latencyMs);
    }
  }

  /**
   * Notes a frame's raw pts for the input's frame rate (it only sizes x264's keyint): the mean rate
   * over the last RATE_WINDOW frames, so irregular intervals average out as they do over a GOP. A
   * step back or a gap of over a second starts the window again.
   */
  private noteFrameRate(raw: bigint): void {
    const w = this.recentPts;
    const last = w[w.length - 1];
    if (last !== undefined && (raw <= last || raw - last > BigInt(TS_CLOCK_HZ))) w.length = 0;
    w.push(raw);
    if (w.length > RATE_WINDOW) w.shift();
  }

  /** Frames per second over the window; 0 when unknown. */
  private frameRate(): number {
    const w = this.recentPts;
    if (w.length < 2) return 0;
    const fps = ((w.length - 1) * TS_CLOCK_HZ) / Number(w[w.length - 1] - w[0]);
    return fps >= 1 && fps <= 240 ? fps : 0;
  }

  private discontinuity(d: Discontinuity): void {
    this.counters.discontinuities++;
    this.hooks.discontinuity?.(d);
  }

  private endSegment(seg: InputSeg): void {
    this.output.endOf(seg);
    this.segsInFlight.delete(seg);
    seg.release();
    if (this.seg === seg) this.seg = null;
  }
}
