// CPU and memory of other processes from /proc (Linux only).
//   CPU: utime+stime of /proc/<pid>/stat (fields 14 and 15, in clock ticks, `getconf CLK_TCK`).
//   Memory: VmRSS (now) and VmHWM (peak resident set since the process started) of /proc/<pid>/status.
//   A child we spawn and wait for: the kernel adds its utime+stime (and its waited-for descendants')
//   to our own cutime+cstime (fields 16 and 17 of /proc/self/stat) when it is reaped, exactly and
//   including its last instants, which polling its own /proc entry would miss.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let tck = 0;
export function clockTicks(): number {
  if (!tck) {
    try {
      tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      tck = 100;
    }
  }
  return tck;
}

/** Fields of /proc/<pid>/stat after the command name, index 0 = field 3 (state). */
function statFields(pid: number | 'self'): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** utime+stime in clock ticks, or null when the process is gone. */
export function cpuTicks(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[11]) + Number(f[12]) : null;
}

/** Our own cutime+cstime: CPU of the children we have reaped, in clock ticks. */
export function reapedChildrenTicks(): number {
  const f = statFields('self');
  return f ? Number(f[13]) + Number(f[14]) : 0;
}

export function parentPid(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[1]) : null;
}

/** VmRSS, VmHWM (peak) and RssAnon (private memory: RSS less the file pages every process of the machine shares). */
export function memKb(pid: number): { rssKb: number; hwmKb: number; anonKb: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rssKb: get('VmRSS'), hwmKb: get('VmHWM'), anonKb: get('RssAnon') };
  } catch {
    return null;
  }
}

export function alive(pid: number): boolean {
  const f = statFields(pid);
  return f !== null && f[0] !== 'Z' && f[0] !== 'X';
}

/** Every live descendant of pid (walks /proc). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pp = parentPid(Number(e));
    if (pp === null) continue;
    const list = children.get(pp) ?? [];
    list.push(Number(e));
    children.set(pp, list);
  }
  const out: number[] = [];
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

export interface ProcSample {
  first: number;
  last: number;
  rssKb: number;
  hwmKb: number;
  /** highest RssAnon sampled */
  anonPeakKb: number;
  /** performance.now() of the first sample that found the process gone, NaN while alive */
  goneAt: number;
}

/**
 * Samples a set of pids: the first and latest utime+stime seen and the latest VmRSS/VmHWM, so a
 * process that exits early keeps the figures it had (at most one interval stale).
 */
export class ProcWatch {
  readonly samples = new Map<number, ProcSample>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly intervalMs = 250) {}

  add(pid: number): void {
    if (this.samples.has(pid)) return;
    const t = cpuTicks(pid);
    if (t === null) return;
    const m = memKb(pid);
    this.samples.set(pid, { first: t, last: t, rssKb: m?.rssKb ?? NaN, hwmKb: m?.hwmKb ?? NaN, anonPeakKb: m?.anonKb ?? NaN, goneAt: NaN });
  }

  sample(): void {
    for (const [pid, s] of this.samples) {
      const t = cpuTicks(pid);
      if (t === null || !alive(pid)) {
        if (Number.isNaN(s.goneAt)) s.goneAt = performance.now();
        continue;
      }
      s.last = t;
      const m = memKb(pid);
      if (m) {
        s.rssKb = m.rssKb;
        s.hwmKb = Math.max(Number.isNaN(s.hwmKb) ? 0 : s.hwmKb, m.hwmKb);
        s.anonPeakKb = Math.max(Number.isNaN(s.anonPeakKb) ? 0 : s.anonPeakKb, m.anonKb);
      }
    }
  }

  start(): void {
    this.timer ??= setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
  }

  /** CPU ms used by pid between add() and the last sample. */
  cpuMs(pid: number): number {
    const s = this.samples.get(pid);
    return s ? ((s.last - s.first) * 1000) / clockTicks() : NaN;
  }
}
