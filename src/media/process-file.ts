// Offline processing of a whole file through exactly the live path: the file is cut into its
// GOP segments, and each one goes through transcodeSegment (decode -> transform -> encode) into
// its own output segment; the output file is those segments back to back, in order.
// As fast as possible: the cutting runs ahead of the transcoding, and with
// media.offlineSegmentsInFlight > 1 consecutive segments transcode at the same time (each with its
// own scale contexts), their outputs written in input order.
import { open } from 'node:fs/promises';
import { Scaler } from 'node-av';
import { defaultConfig, type MediaConfig } from '../config.ts';
import { rootLogger, type Logger } from '../log.ts';
import { Channel } from './channel.ts';
import { YuvConverter, type SegmentSink } from './encode.ts';
import type { MediaError } from './errors.ts';
import { FrameRateCap } from './geometry.ts';
import { segmentFile, type TsSegment } from './segmenter.ts';
import { identityTransform, transcodeSegment, type FrameTransform, type TranscodeResult } from './transcode.ts';

export interface ProcessFileOptions {
  media?: MediaConfig;
  width?: number;
  height?: number;
  transform?: FrameTransform;
  log?: Logger;
}

export interface ProcessFileResult {
  segments: number;
  videoFrames: number;
  audioPackets: number;
  bytes: number;
  droppedByFpsCap: number;
  /** Input segments that were damaged (their decodable frames were still processed). */
  inputErrors: MediaError[];
}

interface Slot {
  scaler: Scaler;
  converter: YuvConverter;
}

export async function processFile(inPath: string, outPath: string, opts: ProcessFileOptions = {}): Promise<ProcessFileResult> {
  const media = opts.media ?? defaultConfig.media;
  const log = opts.log ?? rootLogger;
  const transform = opts.transform ?? identityTransform;
  const inFlight = media.maxInputFps > 0 ? 1 : media.offlineSegmentsInFlight;
  const fpsCap = new FrameRateCap(media.maxInputFps);
  const result: ProcessFileResult = { segments: 0, videoFrames: 0, audioPackets: 0, bytes: 0, droppedByFpsCap: 0, inputErrors: [] };

  // Cutting runs ahead of transcoding, a couple of segments deep.
  const segments = new Channel<TsSegment>(inFlight + 1);
  const cutter = (async () => {
    try {
      for await (const seg of segmentFile(inPath, { media })) if (!(await segments.push(seg))) break;
      segments.close();
    } catch (err) {
      segments.close(err);
    }
  })();

  const out = await open(outPath, 'w');
  const free: Slot[] = Array.from({ length: inFlight }, () => ({ scaler: new Scaler(), converter: new YuvConverter() }));
  let written: Promise<void> = Promise.resolve();
  const running = new Set<Promise<void>>();
  let failure: unknown = null;

  const runOne = async (seg: TsSegment, slot: Slot, turn: Promise<void>): Promise<void> => {
    const chunks: Uint8Array[] = [];
    const sink: SegmentSink = { write: (c) => void chunks.push(c), end: () => undefined };
    let r: TranscodeResult;
    try {
      r = await transcodeSegment(seg.data, transform, sink, { media, width: opts.width, height: opts.height, log, fpsCap, ...slot });
    } finally {
      free.push(slot);
    }
    // Output in input order: wait for the previous segment's bytes to be on disk.
    await turn;
    await out.write(Buffer.concat(chunks));
    result.segments++;
    result.videoFrames += r.videoFrames;
    result.audioPackets += r.audioPackets;
    result.bytes += r.bytes;
    result.droppedByFpsCap += r.decode.droppedByFpsCap;
    if (r.inputError) result.inputErrors.push(r.inputError);
    log.debug({ segment: seg.index, frames: r.videoFrames }, 'segment processed');
  };

  try {
    for await (const seg of segments) {
      while (running.size >= inFlight) await Promise.race(running);
      if (failure) break;
      const slot = free.pop()!;
      const job = runOne(seg, slot, written);
      // Keeps the order chain alive past a failure so later segments do not wait forever.
      written = job.catch(() => undefined);
      const tracked: Promise<void> = job
        .catch((err) => {
          failure ??= err;
        })
        .finally(() => running.delete(tracked));
      running.add(tracked);
    }
    await Promise.all(running);
    if (failure) throw failure;
  } finally {
    segments.close();
    await cutter;
    await Promise.allSettled(running);
    for (const s of free) {
      s.scaler.close();
      s.converter.close();
    }
    await out.close();
  }
  return result;
}
