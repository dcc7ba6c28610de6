// What this node measures it can carry: the CPU its worker processes used over the last interval
// (utime+stime from /proc) divided among the streams they ran gives the cost of one stream; the
// node's capacity is how many such streams fit in its share of the cores and of the free memory, at
// most actors.maxStreams. Until it has run a stream it assumes the configured estimates. A stream's
// cost is learnt only over intervals in which every stream here was steady at both ends: the CPU of
// a fork, a warmup or a restart is a one-off, and counted per stream it would shrink the capacity
// of a node that merely starts and stops streams.
import { readFileSync } from 'node:fs';
import { availableParallelism, freemem } from 'node:os';
import type { ClusterConfig } from '../config.ts';

const CLOCK_TICKS_PER_S = 100;
const PAGE_BYTES = 4096;

function procStat(pid: number): { cpuS: number; rssBytes: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { cpuS: (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_S, rssBytes: Number(f[21]) * PAGE_BYTES };
  } catch {
    return null;
  }
}

export interface CapacityReading {
  capacity: number;
  /** Cores the worker processes used over the last interval. */
  cpuCores: number;
  cores: number;
  /** Cores per stream (measured, or the estimate). */
  streamCpu: number;
}

export class CapacityMeter {
  private last = new Map<number, number>();
  private lastAt = performance.now();
  private lastSteady = false;
  private streamCpu: number;
  private streamMem: number;
  readonly cores = availableParallelism();

  constructor(
    private readonly cfg: ClusterConfig,
    private readonly maxStreams: number,
  ) {
    this.streamCpu = cfg.streamCpuEstimate;
    this.streamMem = cfg.streamMemoryEstimateBytes;
  }

  /** One reading, given the worker pids alive now, how many streams they serve, and whether every
   *  one of those streams is steady (running: none spawning, warming up, restarting or stopping). */
  sample(pids: number[], streams: number, steady: boolean): CapacityReading {
    const now = performance.now();
    const dt = (now - this.lastAt) / 1000;
    this.lastAt = now;
    let cpu = 0;
    let rss = 0;
    const next = new Map<number, number>();
    for (const pid of pids) {
      const st = procStat(pid);
      if (!st) continue;
      next.set(pid, st.cpuS);
      rss += st.rssBytes;
      const before = this.last.get(pid);
      if (before !== undefined) cpu += st.cpuS - before;
    }
    this.last = next;
    const cpuCores = dt > 0 ? cpu / dt : 0;
    const learn = steady && this.lastSteady;
    this.lastSteady = steady;
    if (learn && streams > 0 && dt > 0.2) {
      // A moving average: one busy second (a start, a fork) does not halve the capacity.
      this.streamCpu = 0.7 * this.streamCpu + 0.3 * Math.max(cpuCores / streams, this.cfg.streamCpuEstimate / 4);
      if (rss > 0) this.streamMem = 0.7 * this.streamMem + 0.3 * (rss / streams);
    }
    const byCpu = Math.floor((this.cores * this.cfg.cpuTarget) / this.streamCpu);
    const byMem = Math.floor(((freemem() + rss) * this.cfg.memoryTarget) / this.streamMem);
    return { capacity: Math.max(0, Math.min(this.maxStreams, byCpu, byMem)), cpuCores, cores: this.cores, streamCpu: this.streamCpu };
  }
}
