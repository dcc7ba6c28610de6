// Input smoothing between decode and the graph. Each input segment is demuxed on its own, and the
// demuxer holds back its first frames until its probe is full (about 0.7 s at 128 KiB), then lets
// them out in one burst of ~20 frames within a few ms. A drop-oldest mailbox of 1-2 frames would
// drop most of every burst even when the graph keeps up with the input easily. The pacer releases
// frames on their own clock instead: frame pts - anchor pts after the anchor's wall time, so the
// graph sees the input's rate and the mailbox drops only when the graph really is slower.
//
// The anchor is the first frame; it moves (to "now, this frame") when a frame is due more than
// maxAheadMs in the future (input arriving faster than real time, e.g. the backlog of segment -2)
// or more than resyncLateMs in the past (input stalled and came back). So at most maxAheadMs of
// frames are ever held, and latency never grows with the stream's age. Items that are not frames
// (audio, segment markers) keep their place in the order and leave as soon as what precedes them has.

export interface PacerOptions {
  maxAheadMs: number;
  resyncLateMs: number;
  now?: () => number;
}

interface Held<T> {
  item: T;
  /** Wall time (ms) it is due; -Infinity for items that are not paced. */
  due: number;
}

export class PtsPacer<T> {
  private readonly q: Held<T>[] = [];
  private anchor: { wall: number; pts: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ending = false;
  private stopped = false;
  private readonly now: () => number;
  /** Anchor moves (for tests and logs). */
  resyncs = 0;

  constructor(
    private readonly o: PacerOptions,
    private readonly release: (item: T) => void,
    private readonly onEnd: () => void,
  ) {
    this.now = o.now ?? (() => performance.now());
  }

  get size(): number {
    return this.q.length;
  }

  /** A frame, with its pts in seconds. */
  pushFrame(item: T, ptsSeconds: number): void {
    if (this.stopped) return;
    const now = this.now();
    let due = this.anchor ? this.anchor.wall + (ptsSeconds - this.anchor.pts) * 1000 : now;
    if (!this.anchor || due - now > this.o.maxAheadMs || now - due > this.o.resyncLateMs) {
      if (this.anchor) this.resyncs++;
      this.anchor = { wall: now, pts: ptsSeconds };
      due = now;
    }
    this.q.push({ item, due });
    this.pump();
  }

  /** Anything else: leaves in order, right after whatever was pushed before it. */
  push(item: T): void {
    if (this.stopped) return;
    this.q.push({ item, due: -Infinity });
    this.pump();
  }

  /** No more input: what is held still leaves on time, then onEnd. */
  end(): void {
    this.ending = true;
    this.pump();
  }

  /** Stops now; returns what was still held (to free it). */
  stop(): T[] {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    return this.q.splice(0).map((h) => h.item);
  }

  private pump(): void {
    if (this.stopped) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const now = this.now();
    while (this.q.length && this.q[0].due <= now) this.release(this.q.shift()!.item);
    if (this.q.length) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, Math.max(0, this.q[0].due - now));
    } else if (this.ending) {
      this.stopped = true;
      this.onEnd();
    }
  }
}
