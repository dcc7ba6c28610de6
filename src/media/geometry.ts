// Where a frame is cut and how it is scaled to the size the graph sees, and which input frames are
// let through a frame-rate cap. Pure arithmetic, kept apart from node-av so it is easy to test.

export interface CropRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * ai-runner's resize-then-center-crop: scale the frame by max(tw/w, th/h) so it covers the target
 * keeping its aspect, then keep the centre. Expressed here as the equivalent source rectangle
 * (crop first, then scale that rectangle to exactly tw x th), which lets swscale do both in one
 * pass. Offsets are even so 4:2:0 chroma planes stay aligned.
 */
export function coverCrop(srcW: number, srcH: number, dstW: number, dstH: number): CropRect {
  const scale = Math.max(dstW / srcW, dstH / srcH);
  let width = Math.min(srcW, Math.round(dstW / scale));
  let height = Math.min(srcH, Math.round(dstH / scale));
  width = Math.max(1, width);
  height = Math.max(1, height);
  const x = Math.floor((srcW - width) / 4) * 2;
  const y = Math.floor((srcH - height) / 4) * 2;
  return { x, y, width, height };
}

/**
 * Input frame-rate cap by timestamps: keeps at most `maxFps` frames per second of input time and
 * drops the ones that come too soon (counted in `dropped`). Frames are kept on a fixed schedule
 * (each slot 1/maxFps after the previous one), so 30 fps capped at 24 keeps 24 a second, not 15.
 * maxFps 0 keeps everything. A timestamp going backwards (a new clip) restarts the schedule.
 */
export class FrameRateCap {
  private next: number | null = null;
  private lastKept = -Infinity;
  dropped = 0;
  private readonly interval: number;

  constructor(maxFps: number) {
    this.interval = maxFps > 0 ? 1 / maxFps : 0;
  }

  /** True when the frame at `t` seconds of input time should be kept. */
  admit(t: number): boolean {
    if (this.interval === 0) return true;
    // Timestamp jitter of a few percent of a frame must not drop a frame that is on time.
    const slack = this.interval * 0.05;
    if (this.next === null || t < this.lastKept || t >= this.next - slack) {
      // Behind schedule by more than a slot (a gap in the input): restart it from this frame.
      this.next = this.next === null || t < this.lastKept || t - this.next > this.interval ? t + this.interval : this.next + this.interval;
      this.lastKept = t;
      return true;
    }
    this.dropped++;
    return false;
  }
}
