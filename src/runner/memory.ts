// The worker process's memory as the OS and V8 see it, for its logs: resident set (private and
// file-backed), V8 heap and the memory outside it (ArrayBuffers: frame buffers).
import { readFileSync } from 'node:fs';

export interface MemoryFigures {
  rssMiB: number;
  rssAnonMiB?: number;
  peakRssMiB?: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  arrayBuffersMiB: number;
}

const mib = (bytes: number) => Math.round(bytes / 1048576);

export function memoryFigures(): MemoryFigures {
  const m = process.memoryUsage();
  const out: MemoryFigures = { rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), heapTotalMiB: mib(m.heapTotal), externalMiB: mib(m.external), arrayBuffersMiB: mib(m.arrayBuffers) };
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1]);
    const anon = kib('RssAnon');
    const hwm = kib('VmHWM');
    if (Number.isFinite(anon)) out.rssAnonMiB = Math.round(anon / 1024);
    if (Number.isFinite(hwm)) out.peakRssMiB = Math.round(hwm / 1024);
  } catch {
    // not Linux: process.memoryUsage() alone
  }
  return out;
}
