// One input's raw MPEG-TS pts (video frames and audio packets, 90 kHz, 33 bits) mapped onto one
// continuous output timeline: output pts (64-bit, never wrapped) strictly increase per stream and no
// packet is lost to a 33-bit wrap, a publisher restart (pts back to 0) or a jump. Pure: it looks at
// timestamps only (no I/O, no clock), O(1) time and constant memory per packet.
//
// Model. The input is cut into *sections*: stretches where its pts are continuous. Within a section
// out = unwrapped raw + the section's offset, the same offset for video and audio, so A/V sync is
// the input's own. A wrap (2^33 -> 0) stays inside its section: unwrapping adds 2^33, timing is
// exact. A step back by more than maxBackwardStepMs, or ahead by more than maxForwardJumpMs, starts
// a new section whose first packet lands one step (its stream's recent packet duration) after the
// latest output of EITHER stream: for video alone, or video ending level with its audio, the first
// frame follows the last frame by one frame duration; when the old audio ran ahead of the old video,
// video gets that lead as a gap, so the new section's audio does not land on the old section's.
//
// Interleaving. Packets of both sections overlap in arrival order around a cut. A stream that has
// not yet moved to the newest section (it is "lagging") keeps its own section, and offset, while its
// pts continue its own; it joins the newest section when its pts land within maxInterleaveMs of
// that section's latest pts; anything else is its own discontinuity. When both fit, the closer
// wins: an old-section straggler follows its own previous packet by one packet (only a restart that
// lands within a few seconds of the old pts can make this guess wrong). If a joining stream would
// land at or before its own last output (old-section stragglers already ran past the new section's
// start), the section's offset is raised so it lands one step after it: a `realign`. Packets of the
// section already out keep the old offset (their sync is off by the raise, at most about the
// interleave); all later ones, of both streams, share the raised one.
//
// The caller passes video frames in PRESENTATION order, as they leave the decoder (decode order
// would read as backward steps), and audio packets in demux order. Timestamps are in the 90 kHz
// MPEG-TS clock; values outside [0, 2^33) (FFmpeg may have unwrapped them already) are read modulo
// 2^33. A restart to near 0 within maxForwardJumpMs of the wrap point cannot be told from a wrap and
// is taken as one (no packet is lost either way).
import { TimelineConfigSchema, type TimelineConfig } from '../config.ts';
import { TS_CLOCK_HZ } from '../media/frame.ts';

/** Raw PES pts are 33-bit: they wrap every 2^33 ticks (about 26.5 h). */
export const PTS_WRAP = 1n << 33n;
const HALF_WRAP = PTS_WRAP / 2n;

export const defaultTimelineConfig: Readonly<TimelineConfig> = Object.freeze(TimelineConfigSchema.parse({}));

export type TimelineStream = 'video' | 'audio';

/**
 * - `wrap`: the 33-bit clock wrapped (reported once per input, by whichever stream wraps first);
 * - `backward` / `forward`: the input's pts stepped back / jumped ahead past the limits (by the
 *   shorter way round the 33-bit clock), rebased;
 * - `reset`: the first packet after `reset()`, rebased;
 * - `realign`: a stream joining the newest section would not have been after its own last output;
 *   the section's offset was raised.
 */
export type DiscontinuityKind = 'wrap' | 'backward' | 'forward' | 'reset' | 'realign';
export const DISCONTINUITY_KINDS: readonly DiscontinuityKind[] = ['wrap', 'backward', 'forward', 'reset', 'realign'];

export interface Discontinuity {
  readonly kind: DiscontinuityKind;
  /** The stream whose packet revealed it. */
  readonly stream: TimelineStream;
  /** Raw pts (mod 2^33) of that stream's previous packet; null when it had none. */
  readonly from: bigint | null;
  /** Raw pts (mod 2^33) of the packet. */
  readonly to: bigint;
  /** output pts - raw pts for this packet, and for the packets of its section after it. */
  readonly offset: bigint;
}

export interface TimelinePts {
  /** Output pts in the 90 kHz clock: 64-bit, never wrapped. */
  readonly pts: bigint;
  /** False when `pts` is not after this stream's last output (a duplicate or a backward step
   *  within maxBackwardStepMs): the caller drops or fixes that packet. */
  readonly advances: boolean;
  /** Set on the packet that revealed a discontinuity, null otherwise. */
  readonly discontinuity: Discontinuity | null;
}

export interface TimelineCounts {
  readonly discontinuities: Readonly<Record<DiscontinuityKind, number>>;
  /** Packets returned with `advances: false`, per stream. */
  readonly notAdvancing: Readonly<Record<TimelineStream, number>>;
}

/** A stretch of continuous input pts and its offset (shared by the streams in it). */
interface Section {
  offset: bigint;
  /** Unwrapped pts of the latest packet placed in this section (what a lagging stream joins on). */
  refExt: bigint;
  /** Highest 2^33 epoch a stream of this section stepped into (a wrap reported), null: none yet. */
  wrappedInto: bigint | null;
}

class StreamState {
  /** The section this stream's pts currently follow; null before its first packet and after reset(). */
  section: Section | null = null;
  /** Unwrapped pts of the previous packet, in its section's unwrapping. */
  lastExt = 0n;
  lastRaw: bigint | null = null;
  /** Highest output so far. */
  lastOut: bigint | null = null;
  readonly deltas: Float64Array;
  deltaCount = 0;
  deltaNext = 0;
  constructor(window: number) {
    this.deltas = new Float64Array(window);
  }
  recordDelta(d: bigint): void {
    this.deltas[this.deltaNext] = Number(d);
    this.deltaNext = (this.deltaNext + 1) % this.deltas.length;
    if (this.deltaCount < this.deltas.length) this.deltaCount++;
  }
}

const ticks = (ms: number): bigint => BigInt(Math.round((ms * TS_CLOCK_HZ) / 1000));
const mod33 = (x: bigint): bigint => ((x % PTS_WRAP) + PTS_WRAP) % PTS_WRAP;
const epochOf = (ext: bigint): bigint => (ext >= 0n ? ext / PTS_WRAP : -((-ext + PTS_WRAP - 1n) / PTS_WRAP));
const abs = (x: bigint): bigint => (x < 0n ? -x : x);

/** The value `raw + k * 2^33` nearest to `ref`. */
function unwrapNear(ref: bigint, raw: bigint): bigint {
  let d = raw - mod33(ref);
  if (d >= HALF_WRAP) d -= PTS_WRAP;
  else if (d < -HALF_WRAP) d += PTS_WRAP;
  return ref + d;
}

/**
 * Rebases one input's video and audio pts onto a continuous, strictly increasing output timeline.
 * One instance per input stream; feed every video frame and audio packet, in arrival order.
 */
export class PtsRebaser {
  readonly #maxBack: bigint;
  readonly #maxForward: bigint;
  readonly #maxInterleave: bigint;
  readonly #defaultStep: bigint;
  readonly #video: StreamState;
  readonly #audio: StreamState;
  readonly #scratch: Float64Array;
  #latest: Section | null = null;
  readonly #discontinuities: Record<DiscontinuityKind, number> = { wrap: 0, backward: 0, forward: 0, reset: 0, realign: 0 };
  readonly #notAdvancing: Record<TimelineStream, number> = { video: 0, audio: 0 };

  constructor(config: Readonly<TimelineConfig> = defaultTimelineConfig) {
    this.#maxBack = ticks(config.maxBackwardStepMs);
    this.#maxForward = ticks(config.maxForwardJumpMs);
    this.#maxInterleave = ticks(config.maxInterleaveMs);
    const step = ticks(config.defaultFrameDurationMs);
    this.#defaultStep = step > 0n ? step : 1n;
    this.#video = new StreamState(config.frameDurationWindow);
    this.#audio = new StreamState(config.frameDurationWindow);
    this.#scratch = new Float64Array(config.frameDurationWindow);
  }

  /** Output pts of a video frame (presentation order) with raw pts `raw`. */
  video(raw: bigint): TimelinePts {
    return this.#place('video', this.#video, this.#audio, mod33(raw));
  }

  /** Output pts of an audio packet (demux order) with raw pts `raw`. */
  audio(raw: bigint): TimelinePts {
    return this.#place('audio', this.#audio, this.#video, mod33(raw));
  }

  /** The publisher restarted (e.g. a new one on the channel): the next packet is rebased like a
   *  jump, whatever its pts; the other stream's first packet after it joins that section. */
  reset(): void {
    this.#latest = null;
    this.#video.section = null;
    this.#audio.section = null;
  }

  /**
   * Continues a predecessor's timeline (a runner restarted after a crash): its last output video
   * frame had raw pts `lastRaw` and output pts `lastOutput`. Frames that follow `lastRaw` get the
   * same offset it had; anything else is a discontinuity after `lastOutput`. Call before any packet.
   */
  seed(lastRaw: bigint, lastOutput: bigint): void {
    const raw = mod33(lastRaw);
    const section: Section = { offset: lastOutput - raw, refExt: raw, wrappedInto: null };
    this.#latest = section;
    this.#video.section = section;
    this.#video.lastExt = raw;
    this.#video.lastRaw = raw;
    this.#video.lastOut = lastOutput;
  }

  /** Whether raw video pts `raw` is at or before the seeded (or last) video frame, within `windowMs`
   *  (a restarted runner skips what its predecessor already published). */
  videoAtOrBefore(raw: bigint, windowMs: number): boolean {
    const st = this.#video;
    if (st.lastRaw === null) return false;
    const d = unwrapNear(st.lastExt, mod33(raw)) - st.lastExt;
    return d <= 0n && d >= -ticks(windowMs);
  }

  /** Counters since construction (a copy). */
  counts(): TimelineCounts {
    return { discontinuities: { ...this.#discontinuities }, notAdvancing: { ...this.#notAdvancing } };
  }

  #place(stream: TimelineStream, st: StreamState, other: StreamState, raw: bigint): TimelinePts {
    const latest = this.#latest;
    if (st.section === null) {
      if (latest === null) return this.#start(stream, st, other, raw, st.lastRaw === null ? raw : unwrapNear(st.lastExt, raw), 'reset');
      return this.#join(stream, st, latest, raw, unwrapNear(latest.refExt, raw));
    }
    const own = unwrapNear(st.lastExt, raw);
    const d = own - st.lastExt;
    const ownFits = d >= -this.#maxBack && d <= this.#maxForward;
    if (st.section === latest || latest === null) {
      return ownFits ? this.#continue(stream, st, raw, own, d) : this.#start(stream, st, other, raw, own, d < 0n ? 'backward' : 'forward');
    }
    // Lagging: the other stream started a newer section.
    const joined = unwrapNear(latest.refExt, raw);
    const dj = abs(joined - latest.refExt);
    const joinFits = dj <= this.#maxInterleave;
    if (ownFits && (!joinFits || abs(d) <= dj)) return this.#continue(stream, st, raw, own, d);
    if (joinFits) return this.#join(stream, st, latest, raw, joined);
    return this.#start(stream, st, other, raw, own, d < 0n ? 'backward' : 'forward');
  }

  /** Next packet of the stream's own section. */
  #continue(stream: TimelineStream, st: StreamState, raw: bigint, ext: bigint, d: bigint): TimelinePts {
    const section = st.section!;
    let event: Discontinuity | null = null;
    if (d > 0n) {
      st.recordDelta(d);
      const epoch = epochOf(ext);
      if (epoch > epochOf(st.lastExt) && (section.wrappedInto === null || epoch > section.wrappedInto)) {
        section.wrappedInto = epoch;
        event = this.#event('wrap', stream, st.lastRaw, raw, ext + section.offset - raw);
      }
    }
    st.lastExt = ext;
    st.lastRaw = raw;
    section.refExt = ext;
    return this.#emit(stream, st, ext + section.offset, event);
  }

  /** A new section starting at this packet, one step after the latest output of either stream. */
  #start(stream: TimelineStream, st: StreamState, other: StreamState, raw: bigint, ext: bigint, kind: DiscontinuityKind): TimelinePts {
    const mine = st.lastOut === null ? null : st.lastOut + this.#step(st);
    const theirs = other.lastOut === null ? null : other.lastOut + this.#step(other);
    const anchor = mine === null ? theirs : theirs === null || mine >= theirs ? mine : theirs;
    // The very first packet (or one after a reset() before any output) keeps its pts.
    const offset = anchor === null ? 0n : anchor - ext;
    const section: Section = { offset, refExt: ext, wrappedInto: null };
    const from = st.lastRaw;
    this.#latest = section;
    st.section = section;
    st.lastExt = ext;
    st.lastRaw = raw;
    const event = anchor === null ? null : this.#event(kind, stream, from, raw, ext + offset - raw);
    return this.#emit(stream, st, ext + offset, event);
  }

  /** First packet of this stream in the section another stream started: same offset, unless that
   *  would not be after its own last output (then the section's offset is raised). */
  #join(stream: TimelineStream, st: StreamState, section: Section, raw: bigint, ext: bigint): TimelinePts {
    let out = ext + section.offset;
    let event: Discontinuity | null = null;
    const from = st.lastRaw;
    if (st.lastOut !== null && out <= st.lastOut) {
      const target = st.lastOut + this.#step(st);
      section.offset += target - out;
      out = target;
      event = this.#event('realign', stream, from, raw, out - raw);
    }
    st.section = section;
    st.lastExt = ext;
    st.lastRaw = raw;
    section.refExt = ext;
    return this.#emit(stream, st, out, event);
  }

  #emit(stream: TimelineStream, st: StreamState, pts: bigint, discontinuity: Discontinuity | null): TimelinePts {
    const advances = st.lastOut === null || pts > st.lastOut;
    if (advances) st.lastOut = pts;
    else this.#notAdvancing[stream]++;
    return { pts, advances, discontinuity };
  }

  #event(kind: DiscontinuityKind, stream: TimelineStream, from: bigint | null, to: bigint, offset: bigint): Discontinuity {
    this.#discontinuities[kind]++;
    return { kind, stream, from, to, offset };
  }

  /** The stream's packet duration: median of its recent positive deltas (lower middle), else the default. */
  #step(st: StreamState): bigint {
    const n = st.deltaCount;
    if (n === 0) return this.#defaultStep;
    const s = this.#scratch;
    for (let i = 0; i < n; i++) {
      const v = st.deltas[i];
      let j = i;
      for (; j > 0 && s[j - 1] > v; j--) s[j] = s[j - 1];
      s[j] = v;
    }
    return BigInt(s[(n - 1) >> 1]);
  }
}
