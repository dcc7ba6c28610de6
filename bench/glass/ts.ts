// A small MPEG-TS packet scanner of our own (the bench must not lean on the service's media code).
// 188-byte packets; PAT (PID 0) -> PMT PID -> the first video elementary stream; a video PES starts
// at a packet with payload_unit_start_indicator on that PID and ends just before the next one (or at
// the end of the byte stream / segment). PTS comes from the PES header.
//
// Two uses:
//  - `scanTs(buf)`: offline, a whole clip: every video PES (frame) with pts, keyframe flag, and the
//    byte range from its first packet to the end of its last packet; the PAT/PMT packets seen.
//  - `TsStreamScanner`: online, chunks as they arrive, each with a time stamp: every video PES with
//    the stamp of the chunk that carried its last byte (not the time its end was discovered).

export const TS_PACKET = 188;
const SYNC = 0x47;

const VIDEO_STREAM_TYPES = new Set([0x01, 0x02, 0x10, 0x1b, 0x24, 0x42, 0xea]);

export interface PacketInfo {
  pid: number;
  pusi: boolean;
  /** random_access_indicator in the adaptation field. */
  rai: boolean;
  /** offset of the payload inside the packet (188 when there is none). */
  payloadStart: number;
}

export function parsePacketHeader(p: Uint8Array, at = 0): PacketInfo | null {
  if (p[at] !== SYNC) return null;
  const b1 = p[at + 1];
  const b3 = p[at + 3];
  const pid = ((b1 & 0x1f) << 8) | p[at + 2];
  const pusi = (b1 & 0x40) !== 0;
  const afc = (b3 >> 4) & 3;
  let payloadStart = 4;
  let rai = false;
  if (afc === 2 || afc === 3) {
    const afLen = p[at + 4];
    if (afLen > 0) rai = (p[at + 5] & 0x40) !== 0;
    payloadStart = 5 + afLen;
  }
  if (afc === 0 || afc === 2 || payloadStart > TS_PACKET) payloadStart = TS_PACKET;
  return { pid, pusi, rai, payloadStart };
}

/** PSI section payload (after the pointer field) of a packet starting a section, or null. */
function sectionOf(p: Uint8Array, at: number, info: PacketInfo): Uint8Array | null {
  if (!info.pusi || info.payloadStart >= TS_PACKET) return null;
  const start = at + info.payloadStart;
  const pointer = p[start];
  const s = start + 1 + pointer;
  if (s + 3 > at + TS_PACKET) return null;
  return p.subarray(s, at + TS_PACKET);
}

/** Program map PIDs listed in a PAT section (single-packet sections only, as every muxer writes). */
export function parsePat(sec: Uint8Array): number[] {
  if (sec[0] !== 0x00) return [];
  const len = ((sec[1] & 0x0f) << 8) | sec[2];
  const end = Math.min(sec.length, 3 + len - 4); // minus CRC
  const pids: number[] = [];
  for (let i = 8; i + 4 <= end; i += 4) {
    const program = (sec[i] << 8) | sec[i + 1];
    const pid = ((sec[i + 2] & 0x1f) << 8) | sec[i + 3];
    if (program !== 0) pids.push(pid);
  }
  return pids;
}

/** The first video elementary PID of a PMT section, or -1. */
export function parsePmtVideoPid(sec: Uint8Array): number {
  if (sec[0] !== 0x02) return -1;
  const len = ((sec[1] & 0x0f) << 8) | sec[2];
  const end = Math.min(sec.length, 3 + len - 4);
  const progInfoLen = ((sec[10] & 0x0f) << 8) | sec[11];
  for (let i = 12 + progInfoLen; i + 5 <= end; ) {
    const type = sec[i];
    const pid = ((sec[i + 1] & 0x1f) << 8) | sec[i + 2];
    const esInfoLen = ((sec[i + 3] & 0x0f) << 8) | sec[i + 4];
    if (VIDEO_STREAM_TYPES.has(type)) return pid;
    i += 5 + esInfoLen;
  }
  return -1;
}

/** PTS (90 kHz) of a PES header at `b`, or null (not a PES start / no PTS). */
export function parsePesPts(b: Uint8Array): number | null {
  if (b.length < 14 || b[0] !== 0 || b[1] !== 0 || b[2] !== 1) return null;
  const flags = b[7];
  if ((flags & 0x80) === 0) return null;
  const p = b.subarray(9, 14);
  // 33 bits: fits a JS number exactly.
  return ((p[0] >> 1) & 0x07) * 2 ** 30 + ((p[1] << 7) | (p[2] >> 1)) * 2 ** 15 + ((p[3] << 7) | (p[4] >> 1));
}

/** Whether an H.264 elementary-stream fragment holds an IDR slice NAL (type 5). */
export function hasIdrNal(b: Uint8Array): boolean {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1 && (b[i + 3] & 0x1f) === 5) return true;
  }
  return false;
}

export interface ClipFrame {
  pts: number;
  key: boolean;
  /** offset of the first packet of this PES */
  start: number;
  /** offset just past the last packet of this PES on the video PID */
  end: number;
}

export interface ClipScan {
  videoPid: number;
  frames: ClipFrame[];
  /** the last PAT and PMT packets seen (188 bytes each), to repeat at segment cuts */
  pat: Uint8Array | null;
  pmt: Uint8Array | null;
  packets: number;
}

/** Offline scan of a whole TS buffer. Stray bytes before a sync byte are skipped. */
export function scanTs(buf: Uint8Array): ClipScan {
  let pmtPids = new Set<number>();
  let videoPid = -1;
  let pat: Uint8Array | null = null;
  let pmt: Uint8Array | null = null;
  const frames: ClipFrame[] = [];
  let cur: { pts: number; start: number; end: number; rai: boolean; es: Uint8Array[] } | null = null;
  const finish = () => {
    if (!cur) return;
    const es = Buffer.concat(cur.es);
    frames.push({ pts: cur.pts, key: cur.rai || hasIdrNal(es), start: cur.start, end: cur.end });
    cur = null;
  };
  let packets = 0;
  let at = 0;
  while (at + TS_PACKET <= buf.length) {
    if (buf[at] !== SYNC) {
      at++;
      continue;
    }
    const info = parsePacketHeader(buf, at)!;
    packets++;
    if (info.pid === 0) {
      const sec = sectionOf(buf, at, info);
      if (sec) {
        pmtPids = new Set(parsePat(sec));
        pat = buf.slice(at, at + TS_PACKET);
      }
    } else if (pmtPids.has(info.pid)) {
      const sec = sectionOf(buf, at, info);
      if (sec) {
        const v = parsePmtVideoPid(sec);
        if (v >= 0) videoPid = v;
        pmt = buf.slice(at, at + TS_PACKET);
      }
    } else if (info.pid === videoPid && info.payloadStart < TS_PACKET) {
      const payload = buf.subarray(at + info.payloadStart, at + TS_PACKET);
      if (info.pusi) {
        finish();
        const pts = parsePesPts(payload);
        if (pts !== null) {
          const hdrLen = 9 + payload[8];
          cur = { pts, start: at, end: at + TS_PACKET, rai: info.rai, es: [payload.subarray(hdrLen)] };
        }
      } else if (cur) {
        cur.end = at + TS_PACKET;
        cur.es.push(payload);
      }
    }
    at += TS_PACKET;
  }
  finish();
  return { videoPid, frames, pat, pmt, packets };
}

export interface StampedFrame {
  pts: number;
  /** stamp of the chunk that carried this PES's last byte */
  lastByteAt: number;
  /** stamp of the chunk that carried its first byte */
  firstByteAt: number;
  bytes: number;
}

/**
 * Online scanner for one self-contained TS byte stream (one trickle segment): feed chunks with
 * their arrival stamps; `end()` at the segment's end closes the last PES. Knows the video PID from
 * an earlier segment if this one lacks PAT/PMT (pass `knownVideoPid`).
 */
export class TsStreamScanner {
  videoPid: number;
  private pmtPids = new Set<number>();
  private partial = Buffer.alloc(0);
  private cur: { pts: number; firstByteAt: number; lastByteAt: number; bytes: number } | null = null;
  readonly frames: StampedFrame[] = [];
  bytes = 0;
  lostSync = 0;

  constructor(knownVideoPid = -1, private readonly onFrame?: (f: StampedFrame) => void) {
    this.videoPid = knownVideoPid;
  }

  push(chunk: Uint8Array, stamp: number): void {
    this.bytes += chunk.length;
    let buf = this.partial.length ? Buffer.concat([this.partial, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    let at = 0;
    while (at + TS_PACKET <= buf.length) {
      if (buf[at] !== SYNC) {
        this.lostSync++;
        at++;
        continue;
      }
      this.packet(buf, at, stamp);
      at += TS_PACKET;
    }
    // Keep the tail (a packet split across chunks) as an owned copy.
    this.partial = at < buf.length ? Buffer.from(buf.subarray(at)) : Buffer.alloc(0);
    buf = Buffer.alloc(0);
  }

  /** pts of the PES in progress (its end not seen yet), or null. */
  currentPts(): number | null {
    return this.cur ? this.cur.pts : null;
  }

  /** The segment ended: its last PES ends here (its stamp stays that of the chunk with its last byte). */
  end(): void {
    this.finish();
    this.partial = Buffer.alloc(0);
  }

  private finish(): void {
    if (!this.cur) return;
    const f: StampedFrame = { pts: this.cur.pts, lastByteAt: this.cur.lastByteAt, firstByteAt: this.cur.firstByteAt, bytes: this.cur.bytes };
    this.cur = null;
    this.frames.push(f);
    this.onFrame?.(f);
  }

  private packet(buf: Buffer, at: number, stamp: number): void {
    const info = parsePacketHeader(buf, at)!;
    if (info.pid === 0) {
      const sec = sectionOf(buf, at, info);
      if (sec) this.pmtPids = new Set(parsePat(sec));
      return;
    }
    if (this.pmtPids.has(info.pid)) {
      const sec = sectionOf(buf, at, info);
      if (sec) {
        const v = parsePmtVideoPid(sec);
        if (v >= 0) this.videoPid = v;
      }
      return;
    }
    if (info.pid !== this.videoPid || info.payloadStart >= TS_PACKET) return;
    if (info.pusi) {
      this.finish();
      const pts = parsePesPts(buf.subarray(at + info.payloadStart, at + TS_PACKET));
      if (pts !== null) this.cur = { pts, firstByteAt: stamp, lastByteAt: stamp, bytes: TS_PACKET };
    } else if (this.cur) {
      this.cur.lastByteAt = stamp;
      this.cur.bytes += TS_PACKET;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Cutting a clip into trickle segments, one GOP each, with the write units of a paced publisher.

export interface WriteUnit {
  /** the video pts whose due time this write goes out at */
  pts: number;
  bytes: Buffer;
}

export interface ClipSegment {
  units: WriteUnit[];
  /** pts of the frames in this segment, in order */
  pts: number[];
  bytes: number;
}

/**
 * Cuts at keyframes. Write unit k = the bytes after frame k-1's last video packet up to the end of
 * frame k's last video packet (so packets before a frame's PES start go out at that frame's time);
 * bytes after a segment's last frame join that frame's unit. Every segment starts with PAT and PMT
 * (the last ones seen are prepended unless the segment already opens with both).
 */
export function cutSegments(buf: Buffer, scan: ClipScan): ClipSegment[] {
  const { frames } = scan;
  const segments: ClipSegment[] = [];
  if (!frames.length) return segments;
  // unit boundaries
  const unitStart: number[] = frames.map((_, k) => (k === 0 ? 0 : frames[k - 1].end));
  let seg: ClipSegment | null = null;
  for (let k = 0; k < frames.length; k++) {
    const start = unitStart[k];
    const end = k === frames.length - 1 ? buf.length - (buf.length % TS_PACKET) : frames[k].end;
    let bytes = buf.subarray(start, end);
    if (!seg || (frames[k].key && seg.pts.length > 0)) {
      if (seg) segments.push(seg);
      seg = { units: [], pts: [], bytes: 0 };
      bytes = withPsi(bytes, scan);
    }
    seg.units.push({ pts: frames[k].pts, bytes: Buffer.from(bytes) });
    seg.pts.push(frames[k].pts);
    seg.bytes += bytes.length;
  }
  if (seg) segments.push(seg);
  return segments;
}

function withPsi(bytes: Buffer, scan: ClipScan): Buffer {
  if (!scan.pat || !scan.pmt) return bytes;
  // Does this unit already open with PAT and PMT before any elementary stream packet?
  let sawPat = false;
  let sawPmt = false;
  const pmtPid = parsePacketHeader(scan.pmt)!.pid;
  for (let at = 0; at + TS_PACKET <= bytes.length; at += TS_PACKET) {
    const info = parsePacketHeader(bytes, at);
    if (!info) break;
    if (info.pid === 0) sawPat = true;
    else if (info.pid === pmtPid) sawPmt = true;
    else if (info.pid !== 0x11 && info.pid !== 0x1fff) break; // SDT and null packets may come first

    if (sawPat && sawPmt) return bytes;
  }
  return Buffer.concat([scan.pat, scan.pmt, bytes]);
}
