// The unit that flows through a worker's media path: one decoded picture with the exact
// timestamp it had in the input, so output frame k can carry input frame k's pts.

export interface TimeBase {
  num: number;
  den: number;
}

/** MPEG-TS timestamps count a 90 kHz clock: the media path's one time base, in and out. */
export const TS_CLOCK_HZ = 90_000;
export const TS_TIME_BASE: TimeBase = { num: 1, den: TS_CLOCK_HZ };

export interface VideoFrame {
  /** RGB24, row-major HWC, no padding: width * height * 3 bytes. */
  data: Uint8Array;
  width: number;
  height: number;
  /** Presentation timestamp exactly as demuxed from the input, in `timeBase` units. */
  pts: bigint;
  timeBase: TimeBase;
}
