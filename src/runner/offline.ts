// The offline `streamfleet process`: a file through the live runner's own parts, as fast as they go
// (no pacing, no queue: each input event is processed before the next is read). The file is cut into
// its GOP segments (media/segmenter.ts, a remux: each with its own PAT/PMT, as a publisher posts
// them); the input part (input.ts) reads them as one continuous MPEG-TS byte stream, exactly as it
// reads a trickle channel; the processing part (processing.ts) decodes, runs the graph (the prompt's
// compiled graph, or none) and encodes one output segment per input segment; the segments are
// written to the out file back to back, in order. What this measures is what a worker does.
import { open, type FileHandle } from 'node:fs/promises';
import type { Config } from '../config.ts';
import type { FrameGraph } from '../inference/types.ts';
import { rootLogger, type Logger } from '../log.ts';
import { MediaError } from '../media/errors.ts';
import { segmentFile } from '../media/segmenter.ts';
import type { SegmentWriter } from '../transport/trickle/publisher.ts';
import { readInput, type InputSegment } from './input.ts';
import type { SegmentOpener } from './output.ts';
import { StreamProcessing, type FrameCounter, type FrameGraphRunner, type ProcessingHooks } from './processing.ts';
import type { FrameSize } from './routing.ts';

export interface ProcessFileOptions {
  /** The graph each frame runs through (default: none, frames are encoded as decoded). */
  graph?: FrameGraphRunner;
  log?: Logger;
  /** Taps and the like (processing.ts); offline nothing skips the graph. */
  hooks?: Omit<ProcessingHooks, 'skipGraph'>;
}

export interface ProcessFileResult {
  /** Output segments written (one per input segment that gave a frame). */
  segments: number;
  videoFrames: number;
  audioPackets: number;
  bytes: number;
  droppedByFpsCap: number;
  /** Input segments that were damaged (their decodable frames were still processed). */
  damagedSegments: number;
  /** Frames that did not come out, by reason (processing.ts DropReason). */
  drops: Record<string, number>;
}

/** No graph: each frame is encoded as it was decoded. */
export function identityGraph(size: FrameSize): FrameGraphRunner {
  return {
    size,
    run: async (data, s) => ({ data, width: s.width, height: s.height }),
    hold: () => () => undefined,
  };
}

/** One compiled graph (its size is the frames' size). */
export function compiledGraphRunner(graph: FrameGraph): FrameGraphRunner {
  return {
    size: { width: graph.width, height: graph.height },
    run: (data, _size, out) => graph.run(data, out),
    hold: () => () => undefined,
  };
}

/** Frames in and out and drops, tallied. */
class Tally implements FrameCounter {
  framesIn = 0;
  framesOut = 0;
  readonly drops: Record<string, number> = {};
  frameIn(): void {
    this.framesIn++;
  }
  frameOut(): void {
    this.framesOut++;
  }
  drop(reason: string, n = 1): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + n;
  }
}

/**
 * Output segments into one file, in the order they are opened. A segment's bytes are kept until it
 * ends (the next segment's first bytes may come before this one has finished), then appended; an
 * aborted segment is left out.
 */
class FileSegments implements SegmentOpener {
  private seq = 0;
  private turn: Promise<void> = Promise.resolve();
  failure: unknown = null;

  constructor(private readonly file: FileHandle) {}

  next(): SegmentWriter {
    const chunks: Uint8Array[] = [];
    let done = false;
    return {
      seq: this.seq++,
      write: async (chunk) => {
        if (!done) chunks.push(chunk);
      },
      end: () => {
        done = true;
        const data = Buffer.concat(chunks);
        chunks.length = 0;
        this.turn = this.turn.then(async () => {
          if (this.failure) return;
          try {
            await this.file.write(data);
          } catch (err) {
            this.failure = err;
          }
        });
        return this.turn;
      },
      abort: () => {
        done = true;
        chunks.length = 0;
      },
    };
  }

  /** Until every ended segment is on disk. */
  flushed(): Promise<void> {
    return this.turn;
  }
}

/** The next item is fetched while the current one is processed (the file is cut one segment ahead). */
async function* oneAhead<T>(src: AsyncIterable<T>): AsyncGenerator<T> {
  const it = src[Symbol.asyncIterator]();
  let next = it.next();
  let done = false;
  try {
    for (;;) {
      const r = await next;
      if (r.done) {
        done = true;
        return;
      }
      next = it.next();
      yield r.value;
    }
  } finally {
    if (!done) {
      await next.catch(() => undefined);
      await it.return?.();
    }
  }
}

async function* fileSegments(path: string, config: Readonly<Config>): AsyncGenerator<InputSegment> {
  for await (const seg of oneAhead(segmentFile(path, { media: config.media }))) {
    const data = seg.data;
    yield {
      seq: seg.index,
      body: (async function* () {
        if (data.length) yield data;
      })(),
    };
  }
}

/** Runs `inPath` through the runner's input and processing parts into `outPath`. */
export async function processFile(inPath: string, outPath: string, config: Readonly<Config>, opts: ProcessFileOptions = {}): Promise<ProcessFileResult> {
  const log = opts.log ?? rootLogger;
  const graph = opts.graph ?? identityGraph({ width: config.media.width, height: config.media.height });
  const tally = new Tally();
  const file = await open(outPath, 'w');
  const out = new FileSegments(file);
  let outputFailure: unknown = null;
  const processing = new StreamProcessing({
    media: config.media,
    timeline: config.runner.timeline,
    graph,
    output: out,
    counter: tally,
    log,
    hooks: {
      ...opts.hooks,
      outputFailed: (err) => {
        outputFailure ??= err;
        opts.hooks?.outputFailed?.(err);
      },
    },
  });
  try {
    for await (const ev of readInput(fileSegments(inPath, config), { maxPesBytes: config.runner.maxUnitBytes })) {
      if (outputFailure || processing.isFailed) break;
      try {
        await processing.handle(ev);
      } catch (err) {
        log.warn({ err }, 'input unit failed; going on');
      }
    }
    await processing.finish();
    await out.flushed();
  } finally {
    processing.close();
    await file.close();
  }
  const failure = outputFailure ?? out.failure;
  if (failure) throw new MediaError('MEDIA_ENCODE_FAILED', `cannot write ${outPath}: ${(failure as Error).message ?? String(failure)}`, { cause: failure });
  const w = processing.written;
  return {
    segments: processing.segmentsOut,
    videoFrames: w.videoFrames,
    audioPackets: w.audioPackets,
    bytes: w.bytes,
    droppedByFpsCap: processing.droppedByFpsCap,
    damagedSegments: processing.counters.decodeErrors,
    drops: tally.drops,
  };
}
