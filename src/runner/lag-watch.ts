// When a frame skips the graph. A burst is fine as long as the loop catches up; a graph slower
// than the input is not, and the two look alike for a while (frames waiting, the loop never idle).
// What tells them apart is the loop's rate: since it last went idle, has it processed input time
// at least as fast as wall time went by? A loop that has been busy longer than `maxBusyMs` with
// frames backing up, and has processed less input time than the wall time that passed, is slower
// than the input: the frame in hand is decoded but skips the graph (a counted `graph_slow` drop),
// which lets the loop catch up at decode speed, then the graph runs again. Latency therefore stays
// bounded by about `maxBusyMs`, and a burst (a whole segment posted at once) that the loop clears
// faster than real time loses nothing however long it takes.

export class LagWatch {
  private since = -1;
  private startPts = 0n;

  constructor(
    private readonly maxBusyMs: number,
    /** The input clock's ticks per millisecond (90 for MPEG-TS). */
    private readonly ticksPerMs: number,
  ) {}

  /**
   * Whether the frame with (output) pts `pts` should skip the graph. `busySince` is when the loop
   * last found nothing waiting; `backedUp` whether frames wait behind this one.
   */
  skip(pts: bigint, busySince: number, backedUp: boolean, now: number): boolean {
    if (busySince !== this.since) {
      // A new busy period starts with this frame.
      this.since = busySince;
      this.startPts = pts;
    }
    const busyMs = now - busySince;
    if (!backedUp || busyMs <= this.maxBusyMs) return false;
    const processedMs = Number(pts - this.startPts) / this.ticksPerMs;
    return processedMs < busyMs;
  }
}
