// Per-stream frame accounting in a worker: frames in and out, the latency each frame gains between
// decode and encode, and drops by reason. A snapshot each heartbeat gives fps over the last window
// and latency percentiles of the frames output in it. Memory is bounded by the window, never by age.

export interface StatsSnapshot {
  frameCount: number;
  fpsIn: number;
  fpsOut: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latenciesMs: number[];
  dropsByReason: Record<string, number>;
}

/** The q-quantile (0..1) of an ascending array, nearest-rank; 0 for an empty one. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export class FrameStats {
  private frameCount = 0;
  private inWindow = 0;
  private outWindow = 0;
  private latencies: number[] = [];
  private drops: Record<string, number> = {};
  private windowStart: number;

  constructor(
    private readonly now: () => number = () => performance.now(),
    /** Latency samples kept per window; beyond it the newest replace random older ones. */
    private readonly maxSamples = 10_000,
  ) {
    this.windowStart = now();
  }

  frameIn(): void {
    this.inWindow++;
  }

  frameOut(latencyMs: number): void {
    this.frameCount++;
    this.outWindow++;
    if (this.latencies.length < this.maxSamples) this.latencies.push(latencyMs);
    else this.latencies[Math.floor(Math.random() * this.maxSamples)] = latencyMs;
  }

  drop(reason: string, n = 1): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + n;
  }

  get total(): number {
    return this.frameCount;
  }

  /** Figures for the window since the last snapshot, then starts a new window. */
  snapshot(): StatsSnapshot {
    const t = this.now();
    const secs = Math.max(1e-3, (t - this.windowStart) / 1000);
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const snap: StatsSnapshot = {
      frameCount: this.frameCount,
      fpsIn: this.inWindow / secs,
      fpsOut: this.outWindow / secs,
      latencyP50Ms: quantile(sorted, 0.5),
      latencyP99Ms: quantile(sorted, 0.99),
      latenciesMs: this.latencies,
      dropsByReason: this.drops,
    };
    this.windowStart = t;
    this.inWindow = 0;
    this.outWindow = 0;
    this.latencies = [];
    this.drops = {};
    return snap;
  }
}
