// Audio of a live input, copied through untouched: each audio access unit from ts-demux.ts (a PES
// payload of self-framed AAC ADTS or MPEG audio frames) becomes one packet for the output muxer,
// which writes self-framed payloads as they are. The codec parameters the muxer needs (codec,
// sample rate, channels) are read from the first frame header once per program.
import '../polyfill.ts';
import { CodecParameters, Packet, Rational } from 'node-av';
import { AV_CHANNEL_ORDER_UNSPEC, AV_CODEC_ID_AAC, AV_CODEC_ID_MP2, AV_CODEC_ID_MP3, AVMEDIA_TYPE_AUDIO, AV_PKT_FLAG_KEY, type AVCodecID } from 'node-av/constants';
import type { AudioPacket, AudioTrack } from './audio-track.ts';
import { STREAM_TYPE, type TsUnit } from './ts-demux.ts';
import { TS_TIME_BASE } from './frame.ts';

const PACKET_TIME_BASE = new Rational(TS_TIME_BASE.num, TS_TIME_BASE.den);

const AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
const MPA_RATES = [
  [11025, 12000, 8000], // MPEG 2.5
  [0, 0, 0],
  [22050, 24000, 16000], // MPEG 2
  [44100, 48000, 32000], // MPEG 1
];

interface Header {
  codecId: AVCodecID;
  sampleRate: number;
  channels: number;
}

function readHeader(streamType: number, d: Buffer): Header | null {
  if (d.length < 7 || d[0] !== 0xff || (d[1] & 0xe0) !== 0xe0) return null;
  if (streamType === STREAM_TYPE.aacAdts) {
    if ((d[1] & 0xf6) !== 0xf0) return null;
    const rate = AAC_RATES[(d[2] >> 2) & 0x0f];
    const channels = ((d[2] & 0x01) << 2) | (d[3] >> 6);
    return rate ? { codecId: AV_CODEC_ID_AAC, sampleRate: rate, channels: channels || 2 } : null;
  }
  if (streamType === STREAM_TYPE.mpeg1Audio || streamType === STREAM_TYPE.mpeg2Audio) {
    const version = (d[1] >> 3) & 0x03;
    const layer = (d[1] >> 1) & 0x03;
    const rate = MPA_RATES[version]?.[(d[2] >> 2) & 0x03];
    if (!rate || layer === 0) return null;
    const channels = (d[3] >> 6) === 3 ? 1 : 2;
    return { codecId: layer === 1 ? AV_CODEC_ID_MP3 : AV_CODEC_ID_MP2, sampleRate: rate, channels };
  }
  return null;
}

/** Codec parameters the output muxer needs for a self-framed audio stream type. */
function trackFor(streamType: number, h: Header | null): AudioTrack {
  const codecpar = new CodecParameters();
  codecpar.alloc();
  codecpar.codecType = AVMEDIA_TYPE_AUDIO;
  codecpar.codecId = h?.codecId ?? (streamType === STREAM_TYPE.aacAdts ? AV_CODEC_ID_AAC : AV_CODEC_ID_MP2);
  // MPEG-TS records only the stream type (from the codec id) for these streams; every frame
  // carries its own rate and channels. The muxer still wants a rate: until a header has been seen
  // it gets a placeholder, which changes nothing in the bytes it writes.
  codecpar.sampleRate = h?.sampleRate ?? 48_000;
  codecpar.channelLayout = { nbChannels: h?.channels ?? 2, order: AV_CHANNEL_ORDER_UNSPEC, mask: 0n };
  if (codecpar.codecId === AV_CODEC_ID_AAC) codecpar.frameSize = 1024;
  return { codecpar, timeBase: TS_TIME_BASE };
}

/**
 * Turns one program's audio units into owned packets for the muxer. The track exists from the
 * program's start (an output segment opened before the first audio unit arrives still carries
 * the audio stream); it is described from the first frame header once one is seen.
 */
export class AudioPassthrough {
  private trackNow: AudioTrack;
  private described = false;

  constructor(private readonly streamType: number) {
    this.trackNow = trackFor(streamType, null);
  }

  /** Whether this stream type can be copied through at all. */
  static supports(streamType: number): boolean {
    return streamType === STREAM_TYPE.aacAdts || streamType === STREAM_TYPE.mpeg1Audio || streamType === STREAM_TYPE.mpeg2Audio;
  }

  get current(): AudioTrack {
    return this.trackNow;
  }

  /** One owned packet (the encoder frees it), or null when the unit cannot be copied. */
  packet(unit: TsUnit, pts: bigint): AudioPacket | null {
    const h = readHeader(this.streamType, unit.data);
    if (!h) return null;
    if (!this.described) {
      this.described = true;
      // Later output segments get the real parameters; ones already open keep theirs (same bytes).
      this.trackNow = trackFor(this.streamType, h);
    }
    const p = new Packet();
    p.alloc();
    p.data = unit.data;
    p.pts = pts;
    p.dts = pts;
    p.flags = AV_PKT_FLAG_KEY;
    p.timeBase = PACKET_TIME_BASE;
    return { track: this.trackNow, packet: p, pts, timeBase: TS_TIME_BASE };
  }
}
