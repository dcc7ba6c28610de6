// A stream's thumbnails: a few times a second per side, the frame the pipeline already holds (the
// decoded input before the graph, the graph's output after it was written) becomes a small JPEG
// (src/media/jpeg.ts) published on `sf.stream.<id>.thumb.<side>`. Only the JPEG crosses the bus,
// never a frame. The cost is bounded by `dashboard.thumbnails.fps`: a frame that is not due costs one
// clock read; one that is due costs one scale and one mjpeg encode (~0.35 ms at 512x512 -> 160 px),
// measured in `npm run bench -- thumbnails`. Off with `dashboard.thumbnails.enabled: false`.
import type { ThumbnailConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { JpegThumbnailer } from '../media/jpeg.ts';
import type { Bus } from '../transport/bus.ts';
import { subjects, type ThumbnailSide } from '../transport/subjects.ts';

export interface ThumbnailCounters {
  published: number;
  /** Larger than `maxBytes`: not published. */
  tooLarge: number;
  /** Due while the bus was down: not made. A thumbnail is only worth its moment, so none is held
   *  for the reconnect (the bus's reconnect buffer is for the events that must not be lost). */
  busDown: number;
  failures: number;
}

export class ThumbnailTap {
  readonly counters: ThumbnailCounters = { published: 0, tooLarge: 0, busDown: 0, failures: 0 };
  private readonly intervalMs: number;
  private readonly last: Record<ThumbnailSide, number> = { input: -Infinity, output: -Infinity };
  private readonly jpeg: Record<ThumbnailSide, JpegThumbnailer>;
  private failuresInARow = 0;
  private off = false;

  /** A tap for one stream, or null when thumbnails are off. */
  static create(streamId: string, bus: Bus, cfg: Readonly<ThumbnailConfig>, log: Logger, now?: () => number): ThumbnailTap | null {
    return cfg.enabled ? new ThumbnailTap(streamId, bus, cfg, log, now) : null;
  }

  constructor(
    private readonly streamId: string,
    private readonly bus: Bus,
    private readonly cfg: Readonly<ThumbnailConfig>,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.intervalMs = 1000 / cfg.fps;
    const o = { width: cfg.width, quality: cfg.quality, scaler: cfg.scaler };
    this.jpeg = { input: new JpegThumbnailer(o), output: new JpegThumbnailer(o) };
  }

  /** Offers one RGB24 frame of `side`; makes and publishes a thumbnail when one is due. Never throws. */
  frame(side: ThumbnailSide, data: Uint8Array, width: number, height: number): void {
    if (this.off) return;
    const t = this.now();
    if (t - this.last[side] < this.intervalMs) return;
    this.last[side] = t;
    if (this.bus.connection() !== 'up') {
      this.counters.busDown++;
      return;
    }
    let jpeg: Buffer;
    try {
      jpeg = this.jpeg[side].encode(data, width, height);
      this.failuresInARow = 0;
    } catch (err) {
      this.counters.failures++;
      if (++this.failuresInARow >= this.cfg.maxFailures) {
        this.off = true;
        this.log.warn({ err, side, failures: this.failuresInARow }, 'thumbnails keep failing: this stream makes no more');
      } else this.log.debug({ err, side }, 'thumbnail failed');
      return;
    }
    if (jpeg.length > this.cfg.maxBytes) {
      this.counters.tooLarge++;
      return;
    }
    try {
      this.bus.publish(subjects.streamThumb(this.streamId, side), jpeg);
      this.counters.published++;
    } catch (err) {
      this.log.debug({ err }, 'thumbnail not published');
    }
  }

  close(): void {
    this.off = true;
    this.jpeg.input.close();
    this.jpeg.output.close();
  }
}
