// A push-style MPEG-TS demuxer for one live input: the trickle segments of a stream are one
// continuous TS byte stream, fed chunk by chunk as they arrive. It finds the program (PAT/PMT) once,
// reassembles the video and audio PES packets, and hands each one out the moment its last byte is
// in: when its PES_packet_length is reached, when the TS packet carrying it ends with adaptation-
// field stuffing (a muxer pads the last TS packet of every PES; FFmpeg's does), at the next PES
// start on its PID, or at the end of the segment. FFmpeg's own demuxer waits for the next PES (one
// frame interval at 30 fps) and probes before its first frame; this one adds neither.
//
// Timestamps stay raw (33-bit, 90 kHz); unwrapping and rebasing are the caller's (runner/timeline).
// PSI sections are read from single TS packets (what every muxer of live TS writes). Anything that
// is not TS is skipped until the next sync byte and counted; nothing here throws on bad bytes.

export const TS_PACKET_SIZE = 188;
const SYNC = 0x47;

/** The elementary streams of the input as the PMT lists them. */
export interface TsProgram {
  pmtPid: number;
  video: { pid: number; streamType: number } | null;
  audio: { pid: number; streamType: number } | null;
}

/** One elementary-stream access unit (a whole PES payload). */
export interface TsUnit {
  kind: 'video' | 'audio';
  streamType: number;
  data: Buffer;
  /** Raw 33-bit PTS/DTS in 90 kHz units; null when the PES carried none. */
  pts: bigint | null;
  dts: bigint | null;
  /** A random access point (adaptation-field flag, or an IDR / IRAP picture found in the payload). */
  key: boolean;
  /** When the chunk holding its last byte arrived (the clock the caller passed to push()). */
  lastByteAt: number;
}

export type TsEvent =
  | { type: 'program'; program: TsProgram }
  | { type: 'unit'; unit: TsUnit }
  /** Bytes skipped to find sync, or a PES lost to a continuity gap: the caller counts them. */
  | { type: 'corrupt'; reason: 'sync_lost' | 'continuity' | 'oversize'; bytes: number };

export interface TsDemuxerOptions {
  /** Largest PES payload reassembled; a larger one is dropped (and reported) rather than grown. */
  maxPesBytes: number;
}

interface PendingPes {
  kind: 'video' | 'audio';
  streamType: number;
  parts: Buffer[];
  size: number;
  /** Expected payload size from PES_packet_length, or -1 when it is 0 (unbounded, as video is). */
  expected: number;
  pts: bigint | null;
  dts: bigint | null;
  rai: boolean;
  headerDone: boolean;
  /** Header bytes seen before the optional header could be parsed (rarely split across packets). */
  headerBuf: Buffer | null;
}

export const STREAM_TYPE = {
  mpeg1Video: 0x01,
  mpeg2Video: 0x02,
  mpeg1Audio: 0x03,
  mpeg2Audio: 0x04,
  aacAdts: 0x0f,
  mpeg4Video: 0x10,
  h264: 0x1b,
  hevc: 0x24,
  ac3: 0x81,
} as const;

const VIDEO_TYPES = new Set<number>([STREAM_TYPE.mpeg1Video, STREAM_TYPE.mpeg2Video, STREAM_TYPE.mpeg4Video, STREAM_TYPE.h264, STREAM_TYPE.hevc, 0x42, 0xd1, 0xea]);
const AUDIO_TYPES = new Set<number>([STREAM_TYPE.mpeg1Audio, STREAM_TYPE.mpeg2Audio, STREAM_TYPE.aacAdts, 0x11, STREAM_TYPE.ac3, 0x87]);

function readTs(b: Buffer, o: number): bigint {
  // 33 bits spread over 5 bytes with marker bits.
  const hi = BigInt((b[o] >> 1) & 0x07);
  const mid = BigInt(((b[o + 1] << 8) | b[o + 2]) >> 1);
  const lo = BigInt(((b[o + 3] << 8) | b[o + 4]) >> 1);
  return (hi << 30n) | (mid << 15n) | lo;
}

/** Whether an H.264 / HEVC access unit holds a picture a decoder can start from. */
export function isRandomAccess(streamType: number, data: Buffer): boolean {
  if (streamType !== STREAM_TYPE.h264 && streamType !== STREAM_TYPE.hevc) return false;
  const n = Math.min(data.length - 3, 4096);
  for (let i = 0; i < n; i++) {
    if (data[i] !== 0 || data[i + 1] !== 0 || data[i + 2] !== 1) continue;
    const h = data[i + 3];
    if (streamType === STREAM_TYPE.h264) {
      const t = h & 0x1f;
      if (t === 5) return true;
      if (t === 1) return false;
    } else {
      const t = (h >> 1) & 0x3f;
      if (t >= 16 && t <= 21) return true;
      if (t < 16) return false;
    }
    i += 3;
  }
  return false;
}

export class TsDemuxer {
  private carry: Buffer | null = null;
  private offset = 0;
  private pmtPid = -1;
  private program: TsProgram | null = null;
  private readonly pes = new Map<number, PendingPes>();
  private readonly cc = new Map<number, number>();

  constructor(private readonly opts: TsDemuxerOptions) {}

  get current(): TsProgram | null {
    return this.program;
  }

  /** Bytes consumed so far. */
  get bytes(): number {
    return this.offset;
  }

  /** Feeds the next bytes of the stream; returns what they completed, in stream order. */
  push(chunk: Uint8Array, at: number): TsEvent[] {
    const out: TsEvent[] = [];
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.carry) {
      buf = Buffer.concat([this.carry, buf]);
      this.carry = null;
    }
    let i = 0;
    let skipped = 0;
    while (i + TS_PACKET_SIZE <= buf.length) {
      if (buf[i] !== SYNC || (i + TS_PACKET_SIZE < buf.length && buf[i + TS_PACKET_SIZE] !== SYNC)) {
        i++;
        skipped++;
        continue;
      }
      if (skipped) {
        out.push({ type: 'corrupt', reason: 'sync_lost', bytes: skipped });
        skipped = 0;
      }
      this.offset += TS_PACKET_SIZE;
      this.packet(buf.subarray(i, i + TS_PACKET_SIZE), at, out);
      i += TS_PACKET_SIZE;
    }
    if (skipped) out.push({ type: 'corrupt', reason: 'sync_lost', bytes: skipped });
    if (i < buf.length) this.carry = Buffer.from(buf.subarray(i));
    return out;
  }

  /**
   * The end of a segment: every PES still open is complete (segments end on packet boundaries).
   * A partial TS packet left over is dropped and reported.
   */
  endSegment(at: number): TsEvent[] {
    const out: TsEvent[] = [];
    if (this.carry) {
      out.push({ type: 'corrupt', reason: 'sync_lost', bytes: this.carry.length });
      this.carry = null;
    }
    for (const pid of [...this.pes.keys()]) this.complete(pid, at, out);
    return out;
  }

  /** Forgets partial packets and continuity (a new publisher); keeps the program until a PMT says otherwise. */
  reset(): void {
    this.carry = null;
    this.pes.clear();
    this.cc.clear();
  }

  private packet(p: Buffer, at: number, out: TsEvent[]): void {
    const pusi = (p[1] & 0x40) !== 0;
    const pid = ((p[1] & 0x1f) << 8) | p[2];
    const afc = (p[3] >> 4) & 0x03;
    const cc = p[3] & 0x0f;
    if (pid === 0x1fff) return;
    let pos = 4;
    let rai = false;
    let stuffed = false;
    if (afc & 0x02) {
      const afLen = p[4];
      if (afLen > 0) {
        const flags = p[5];
        rai = (flags & 0x40) !== 0;
        let used = 1;
        if (flags & 0x10) used += 6; // PCR
        if (flags & 0x08) used += 6; // OPCR
        if (flags & 0x04) used += 1; // splice countdown
        if (flags & 0x02 && 5 + used < p.length) used += 1 + p[5 + used]; // private data
        if (flags & 0x01 && 5 + used < p.length) used += 1 + p[5 + used]; // extension
        stuffed = afLen > used;
      } else {
        stuffed = true;
      }
      pos = 5 + afLen;
    }
    if (!(afc & 0x01) || pos >= p.length) return;
    const hasPayloadCc = this.cc.get(pid);
    this.cc.set(pid, cc);
    const payload = p.subarray(pos);

    if (pid === 0) {
      if (pusi) this.pat(payload);
      return;
    }
    if (pid === this.pmtPid) {
      if (pusi) this.pmt(pid, payload, out);
      return;
    }
    const prog = this.program;
    if (!prog) return;
    const kind = prog.video?.pid === pid ? 'video' : prog.audio?.pid === pid ? 'audio' : null;
    if (!kind) return;
    const streamType = kind === 'video' ? prog.video!.streamType : prog.audio!.streamType;

    if (pusi) {
      this.complete(pid, at, out);
      const pes: PendingPes = { kind, streamType, parts: [], size: 0, expected: -1, pts: null, dts: null, rai, headerDone: false, headerBuf: null };
      this.pes.set(pid, pes);
      this.addPayload(pid, pes, payload, out);
    } else {
      const pes = this.pes.get(pid);
      if (!pes) return;
      if (hasPayloadCc !== undefined && ((hasPayloadCc + 1) & 0x0f) !== cc) {
        // A lost TS packet: the unit is damaged; drop it rather than decode garbage.
        this.pes.delete(pid);
        out.push({ type: 'corrupt', reason: 'continuity', bytes: pes.size });
        return;
      }
      this.addPayload(pid, pes, payload, out);
    }
    const cur = this.pes.get(pid);
    if (!cur) return;
    if ((cur.expected >= 0 && cur.size >= cur.expected) || (stuffed && cur.headerDone)) this.complete(pid, at, out);
  }

  private addPayload(pid: number, pes: PendingPes, payload: Buffer, out: TsEvent[]): void {
    let data = payload;
    if (!pes.headerDone) {
      data = pes.headerBuf ? Buffer.concat([pes.headerBuf, payload]) : payload;
      if (data.length < 9) {
        pes.headerBuf = Buffer.from(data);
        return;
      }
      if (data[0] !== 0 || data[1] !== 0 || data[2] !== 1) {
        this.pes.delete(pid);
        return;
      }
      const len = (data[4] << 8) | data[5];
      const hdl = data[8];
      if (data.length < 9 + hdl) {
        pes.headerBuf = Buffer.from(data);
        return;
      }
      const flags = data[7] >> 6;
      if (flags & 0x02) pes.pts = readTs(data, 9);
      if (flags === 0x03) pes.dts = readTs(data, 14);
      pes.expected = len === 0 ? -1 : len - 3 - hdl;
      pes.headerDone = true;
      pes.headerBuf = null;
      data = data.subarray(9 + hdl);
    }
    if (pes.size + data.length > this.opts.maxPesBytes) {
      this.pes.delete(pid);
      out.push({ type: 'corrupt', reason: 'oversize', bytes: pes.size + data.length });
      return;
    }
    if (data.length) {
      // The chunk's memory is the caller's: keep a copy of just this payload.
      pes.parts.push(Buffer.from(data));
      pes.size += data.length;
    }
  }

  private complete(pid: number, at: number, out: TsEvent[]): void {
    const pes = this.pes.get(pid);
    if (!pes) return;
    this.pes.delete(pid);
    if (!pes.headerDone || pes.size === 0) return;
    let data = pes.parts.length === 1 ? pes.parts[0] : Buffer.concat(pes.parts, pes.size);
    if (pes.expected >= 0 && data.length > pes.expected) data = data.subarray(0, pes.expected);
    const key = pes.rai || (pes.kind === 'video' && isRandomAccess(pes.streamType, data));
    out.push({ type: 'unit', unit: { kind: pes.kind, streamType: pes.streamType, data, pts: pes.pts, dts: pes.dts, key, lastByteAt: at } });
  }

  private section(payload: Buffer): Buffer | null {
    const pointer = payload[0];
    const s = payload.subarray(1 + pointer);
    if (s.length < 3) return null;
    const len = ((s[1] & 0x0f) << 8) | s[2];
    if (3 + len > s.length || len < 9) return null;
    // Without the CRC (last 4 bytes).
    return s.subarray(0, 3 + len - 4);
  }

  private pat(payload: Buffer): void {
    const s = this.section(payload);
    if (!s || s[0] !== 0x00) return;
    for (let o = 8; o + 4 <= s.length; o += 4) {
      const program = (s[o] << 8) | s[o + 1];
      const pid = ((s[o + 2] & 0x1f) << 8) | s[o + 3];
      if (program !== 0) {
        this.pmtPid = pid;
        return;
      }
    }
  }

  private pmt(pid: number, payload: Buffer, out: TsEvent[]): void {
    const s = this.section(payload);
    if (!s || s[0] !== 0x02) return;
    const infoLen = ((s[10] & 0x0f) << 8) | s[11];
    let video: TsProgram['video'] = null;
    let audio: TsProgram['audio'] = null;
    for (let o = 12 + infoLen; o + 5 <= s.length; ) {
      const type = s[o];
      const esPid = ((s[o + 1] & 0x1f) << 8) | s[o + 2];
      const esInfo = ((s[o + 3] & 0x0f) << 8) | s[o + 4];
      if (!video && VIDEO_TYPES.has(type)) video = { pid: esPid, streamType: type };
      else if (!audio && AUDIO_TYPES.has(type)) audio = { pid: esPid, streamType: type };
      else if (!video && !audio && type === 0x06) {
        // Private data (e.g. Opus, VP9 by registration descriptor): not decodable here; remember
        // nothing, so a stream of only such data reports "no video" below.
      }
      o += 5 + esInfo;
    }
    const next: TsProgram = { pmtPid: pid, video, audio };
    const prev = this.program;
    const same =
      prev &&
      prev.video?.pid === video?.pid &&
      prev.video?.streamType === video?.streamType &&
      prev.audio?.pid === audio?.pid &&
      prev.audio?.streamType === audio?.streamType;
    if (same) return;
    this.program = next;
    this.pes.clear();
    out.push({ type: 'program', program: next });
  }
}
