// Cuts a TS or MP4 file into MPEG-TS segments at video keyframes, by remuxing (no re-encode): one
// segment per GOP, each with its own PAT/PMT so it decodes alone. Audio goes with the GOP its pts
// falls in, which needs one GOP of look-ahead (audio and video are not demuxed in pts order), so a
// segment is emitted when the keyframe AFTER the next one arrives, or at the end of the file.
import '../polyfill.ts';
import { Demuxer, Muxer, type Packet, type Stream } from 'node-av';
import { AV_NOPTS_VALUE } from 'node-av/constants';
import { defaultConfig, type MediaConfig } from '../config.ts';
import { asMediaError, MediaError } from './errors.ts';
import { applyFfmpegLogLevel } from './ffmpeg-log.ts';
import type { TimeBase } from './frame.ts';

export interface TsSegment {
  /** 0, 1, 2, ... in file order. */
  index: number;
  /** The whole segment, PAT/PMT first, then an IDR. */
  data: Uint8Array;
  /** pts of the segment's first (key)frame in `timeBase` units, and in seconds. */
  startPts: bigint;
  timeBase: TimeBase;
  startSeconds: number;
  /** Time to the next segment's start (the last segment: its last frame's pts + one frame). */
  durationSeconds: number;
  videoPackets: number;
  audioPackets: number;
}

export interface SegmentFileOptions {
  media?: MediaConfig;
}

interface PendingGop {
  startPts: bigint;
  video: Packet[];
  /** Last video pts seen (for the last segment's duration). */
  lastPts: bigint;
}

const seconds = (pts: bigint, tb: TimeBase): number => (Number(pts) * tb.num) / tb.den;

async function muxSegment(video: Stream, audio: Stream | undefined, packets: Array<{ pkt: Packet; audio: boolean }>, media: MediaConfig): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  const muxer = await Muxer.open(
    {
      write: (buf: Buffer) => {
        size += buf.length;
        if (size > media.maxSegmentBytes) throw new MediaError('MEDIA_SEGMENT_FAILED', `segment exceeds ${media.maxSegmentBytes} bytes`);
        chunks.push(Buffer.from(buf));
        return buf.length;
      },
    },
    { format: 'mpegts' },
  );
  try {
    const vi = muxer.addStream(video);
    const ai = audio ? muxer.addStream(audio) : -1;
    for (const { pkt, audio: isAudio } of packets) {
      muxer.writePacketSync(pkt, isAudio ? ai : vi);
    }
  } finally {
    await muxer.close();
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/**
 * Yields the file's segments in order. The first segment starts at the first keyframe (packets
 * before it cannot decode alone and are skipped); audio before that keyframe joins segment 0.
 */
export async function* segmentFile(path: string, opts: SegmentFileOptions = {}): AsyncGenerator<TsSegment> {
  const media = opts.media ?? defaultConfig.media;
  applyFfmpegLogLevel(media);
  let demuxer: Demuxer;
  try {
    demuxer = await Demuxer.open(path, { copyTs: true, options: { probesize: media.fileProbeBytes, fpsprobesize: media.probeFpsFrames } });
  } catch (err) {
    throw asMediaError('MEDIA_SEGMENT_FAILED', `cannot open ${path}`, err);
  }
  const gops: PendingGop[] = [];
  let audioPkts: Packet[] = [];
  try {
    const video = demuxer.video();
    if (!video) throw new MediaError('MEDIA_SEGMENT_FAILED', `${path} holds no video stream`);
    const rawAudio = demuxer.audio();
    const audio = rawAudio && rawAudio.codecpar.sampleRate > 0 ? rawAudio : undefined;
    const vtb: TimeBase = { num: video.timeBase.num, den: video.timeBase.den };
    const atb: TimeBase | null = audio ? { num: audio.timeBase.num, den: audio.timeBase.den } : null;
    let index = 0;

    // Emits gops[0] with the audio whose pts falls before gops[1] starts (all of it at the end).
    const emit = async (last: boolean): Promise<TsSegment> => {
      const gop = gops.shift()!;
      const endSec = gops[0] ? seconds(gops[0].startPts, vtb) : Infinity;
      const mine: Packet[] = [];
      const rest: Packet[] = [];
      for (const a of audioPkts) (last || seconds(a.pts, atb!) < endSec ? mine : rest).push(a);
      audioPkts = rest;
      // Interleave by time so the muxer writes a well-formed, evenly spread stream.
      const all = [
        ...gop.video.map((pkt) => ({ pkt, audio: false, t: seconds(pkt.dts !== AV_NOPTS_VALUE ? pkt.dts : pkt.pts, vtb) })),
        ...mine.map((pkt) => ({ pkt, audio: true, t: seconds(pkt.pts, atb!) })),
      ].sort((x, y) => x.t - y.t);
      try {
        const data = await muxSegment(video, audio, all, media);
        const startSeconds = seconds(gop.startPts, vtb);
        const frameGuess = gop.video.length > 1 ? (seconds(gop.lastPts, vtb) - startSeconds) / (gop.video.length - 1) : 0;
        const durationSeconds = Number.isFinite(endSec) ? endSec - startSeconds : seconds(gop.lastPts, vtb) - startSeconds + frameGuess;
        return {
          index: index++,
          data,
          startPts: gop.startPts,
          timeBase: vtb,
          startSeconds,
          durationSeconds,
          videoPackets: gop.video.length,
          audioPackets: mine.length,
        };
      } finally {
        for (const p of gop.video) p.free();
        for (const p of mine) p.free();
      }
    };

    // A local file: reading it directly is cheaper than a thread-pool round trip per packet.
    for (const pkt of demuxer.packetsSync()) {
      if (!pkt) break;
      if (pkt.streamIndex === video.index) {
        if (pkt.isKeyframe && pkt.pts !== AV_NOPTS_VALUE) {
          gops.push({ startPts: pkt.pts, video: [], lastPts: pkt.pts });
          // Two complete GOPs behind the newest keyframe: the older one has all its audio now.
          if (gops.length > 2) yield await emit(false);
        }
        const cur = gops[gops.length - 1];
        if (!cur) continue;
        const own = pkt.clone();
        if (!own) continue;
        cur.video.push(own);
        if (pkt.pts !== AV_NOPTS_VALUE && pkt.pts > cur.lastPts) cur.lastPts = pkt.pts;
      } else if (audio && pkt.streamIndex === audio.index && pkt.pts !== AV_NOPTS_VALUE) {
        const own = pkt.clone();
        if (own) audioPkts.push(own);
      }
    }
    while (gops.length) yield await emit(gops.length === 1);
  } catch (err) {
    throw asMediaError('MEDIA_SEGMENT_FAILED', `cannot segment ${path}`, err);
  } finally {
    for (const g of gops) for (const p of g.video) p.free();
    for (const p of audioPkts) p.free();
    await demuxer.close().catch(() => undefined);
  }
}
