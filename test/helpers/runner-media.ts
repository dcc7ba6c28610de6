// Drives the runner's own media parts in-process, as a worker and `streamfleet process` do: input
// segments (bytes, or chunked bodies) -> input.ts (one continuous TS demux) -> processing.ts
// (decode, timeline, graph, encode) -> output segments collected in memory. Records what each part
// says: the frames that went into the graph (with their output pts), every input segment's problem,
// the drops, and each output segment's bytes.
import { loadConfig, type MediaConfig } from '../../src/config.ts';
import { rootLogger } from '../../src/log.ts';
import type { MediaError } from '../../src/media/errors.ts';
import type { SegmentWriter } from '../../src/transport/trickle/publisher.ts';
import { readInput, type InputSegment } from '../../src/runner/input.ts';
import { identityGraph } from '../../src/runner/offline.ts';
import { StreamProcessing, type FrameCounter, type FrameGraphRunner } from '../../src/runner/processing.ts';
import { defaultTimelineConfig } from '../../src/runner/timeline.ts';

export interface GraphFrame {
  /** The input segment being read when the frame reached the graph. */
  seq: number;
  pts: bigint;
  width: number;
  height: number;
  /** A copy of the bytes (only when asked for: keepData). */
  data?: Buffer;
}

export interface OutputSegment {
  seq: number;
  chunks: Uint8Array[];
  ended: boolean;
  aborted: boolean;
  bytes(): Buffer;
}

export interface RunResult {
  /** Frames handed to the graph, in order. */
  frames: GraphFrame[];
  /** Per input segment: the problem input.ts found in its bytes, or the decoder's corrupt pictures. */
  segments: Array<{ seq: number; problem: MediaError | null; damaged: boolean }>;
  /** Output segments as they were opened (only ended ones hold a whole segment). */
  outputs: OutputSegment[];
  drops: Record<string, number>;
  framesOut: number;
  droppedByFpsCap: number;
  /** Ended output segments, back to back: what `process` writes to its file. */
  file(): Buffer;
}

export interface RunOptions {
  media?: MediaConfig;
  graph?: FrameGraphRunner;
  keepData?: boolean;
  /** Called with the bytes handed to the input so far whenever a frame reaches the graph. */
  onFrame?: (f: GraphFrame) => void;
}

type Body = Uint8Array | AsyncIterable<Uint8Array>;

function asSegments(bodies: Body[]): AsyncIterable<InputSegment> {
  return (async function* () {
    for (const [seq, b] of bodies.entries()) {
      yield {
        seq,
        body:
          b instanceof Uint8Array
            ? (async function* () {
                if (b.length) yield b;
              })()
            : b,
      };
    }
  })();
}

/** Runs each of `bodies` as one input segment of one stream. */
export async function runSegments(bodies: Body[], o: RunOptions = {}): Promise<RunResult> {
  const media = o.media ?? loadConfig({}).media;
  const graph = o.graph ?? identityGraph({ width: media.width, height: media.height });
  const outputs: OutputSegment[] = [];
  const frames: GraphFrame[] = [];
  const drops: Record<string, number> = {};
  let framesOut = 0;
  const counter: FrameCounter = {
    frameIn: () => undefined,
    frameOut: () => void framesOut++,
    drop: (reason, n = 1) => void (drops[reason] = (drops[reason] ?? 0) + n),
  };
  let seq = -1;
  const opener = {
    next(): SegmentWriter {
      const seg: OutputSegment = { seq: outputs.length, chunks: [], ended: false, aborted: false, bytes: () => Buffer.concat(seg.chunks) };
      outputs.push(seg);
      return {
        seq: seg.seq,
        write: async (c) => void seg.chunks.push(c),
        end: async () => void (seg.ended = true),
        abort: () => void (seg.aborted = true),
      };
    },
  };
  const p = new StreamProcessing({
    media,
    timeline: defaultTimelineConfig,
    graph,
    output: opener,
    counter,
    log: rootLogger,
    hooks: {
      tap: (side, data, width, height, pts) => {
        if (side !== 'input') return;
        const f: GraphFrame = { seq, pts, width, height, ...(o.keepData ? { data: Buffer.from(data) } : {}) };
        frames.push(f);
        o.onFrame?.(f);
      },
    },
  });
  const segments: RunResult['segments'] = [];
  try {
    for await (const ev of readInput(asSegments(bodies), { maxPesBytes: 16 << 20 })) {
      if (ev.type === 'segment') seq = ev.seq;
      const before = p.counters.decodeErrors;
      await p.handle(ev);
      if (ev.type === 'segment_end') segments.push({ seq: ev.seq, problem: ev.problem, damaged: p.counters.decodeErrors > before });
    }
    await p.finish();
  } finally {
    p.close();
  }
  return {
    frames,
    segments,
    outputs,
    drops,
    framesOut,
    droppedByFpsCap: p.droppedByFpsCap,
    file: () => Buffer.concat(outputs.filter((s) => s.ended).map((s) => s.bytes())),
  };
}
