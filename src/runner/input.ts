// A stream's input side: the input's segments (the trickle input channel live, a file's GOP
// segments offline), read one after another as ONE continuous MPEG-TS byte stream (media/ts-demux.ts). Each access unit is handed on the moment its last byte
// arrives, stamped with that moment; nothing here decodes or waits. Segment boundaries are kept
// (output segments follow input segments one for one), and a segment whose bytes are not TS, hold
// no video, or were cut short is reported with that segment, without disturbing the next.
import { MediaError } from '../media/errors.ts';
import { TsDemuxer, type TsProgram, type TsUnit } from '../media/ts-demux.ts';

/** One input segment: a TrickleSubscriber yields these. */
export interface InputSegment {
  readonly seq: number;
  /** The bytes as they arrive; throwing mid-way means the segment was cut short. */
  readonly body: AsyncIterable<Uint8Array>;
}

export type InputEvent =
  /** A new input segment begins; every event until its `segment_end` belongs to it. */
  | { type: 'segment'; seq: number }
  /** The PMT named (new) elementary streams: the decoder must be (re)opened. */
  | { type: 'program'; program: TsProgram }
  | { type: 'unit'; unit: TsUnit }
  /** The segment is over; `problem` says what was wrong with its bytes, if anything. */
  | { type: 'segment_end'; seq: number; bytes: number; videoUnits: number; problem: MediaError | null };

export interface InputOptions {
  maxPesBytes: number;
  /** Called for every chunk that arrives (input liveness). */
  onBytes?: () => void;
}

/** Reads `sub` until it ends (or throws what the channel failed with). */
export async function* readInput(sub: AsyncIterable<InputSegment>, opts: InputOptions): AsyncGenerator<InputEvent> {
  const demux = new TsDemuxer({ maxPesBytes: opts.maxPesBytes });
  for await (const seg of sub) {
    yield { type: 'segment', seq: seg.seq };
    let videoUnits = 0;
    let corruptBytes = 0;
    let problem: MediaError | null = null;
    const startBytes = demux.bytes;
    let received = 0;
    const take = function* (events: ReturnType<TsDemuxer['push']>): Generator<InputEvent> {
      for (const ev of events) {
        if (ev.type === 'program') yield { type: 'program', program: ev.program };
        else if (ev.type === 'unit') {
          if (ev.unit.kind === 'video') videoUnits++;
          yield { type: 'unit', unit: ev.unit };
        } else corruptBytes += ev.bytes;
      }
    };
    try {
      for await (const chunk of seg.body) {
        received += chunk.byteLength;
        opts.onBytes?.();
        yield* take(demux.push(chunk, performance.now()));
      }
    } catch (err) {
      problem = new MediaError('MEDIA_SEGMENT_TRUNCATED', `input segment ${seg.seq} failed after ${received} bytes`, { cause: err });
    }
    yield* take(demux.endSegment(performance.now()));
    if (!problem) {
      // An empty segment (a write that ended with no bytes; go-livepeer answers it 200 and empty)
      // is "nothing in this one, go on to the next": not a fault of the input.
      if (received === 0) {
        /* nothing to report */
      } else if (demux.bytes === startBytes) problem = new MediaError('MEDIA_DECODE_FAILED', `input segment ${seg.seq} holds no MPEG-TS packets`);
      else if (!demux.current?.video) problem = new MediaError('MEDIA_DECODE_FAILED', `input segment ${seg.seq} holds no video stream`);
      else if (videoUnits === 0) problem = new MediaError('MEDIA_DECODE_FAILED', `input segment ${seg.seq} decoded to no video frames`);
      else if (corruptBytes > 0) problem = new MediaError('MEDIA_DECODE_FAILED', `input segment ${seg.seq}: ${corruptBytes} bytes damaged`);
    }
    // A damaged segment must not leave half a packet or a half unit for the next one.
    if (problem) demux.reset();
    yield { type: 'segment_end', seq: seg.seq, bytes: received, videoUnits, problem };
  }
}
