// `streamfleet serve` as a real child process, as `npm start` runs it: ready once it prints its
// ready line (its ports); stop() sends SIGTERM, waits, SIGKILLs if it must, then kills by PID any
// process it forked that is still alive and says which.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { alive, descendants } from '../../bench/glass/procstat.ts';
import { freePort } from './ports.ts';

export interface ServeProc {
  pid: number;
  origin: string;
  trickle: string;
  /** Every process the service forked that was seen (worker processes). */
  childrenSeen: Set<number>;
  stop(graceMs?: number): Promise<{ code: number | null; orphans: number[] }>;
}

export async function startServe(dir: string, config: Record<string, unknown>, extra: string[] = []): Promise<ServeProc> {
  const tricklePort = await freePort();
  const cfgPath = join(dir, 'serve-config.json');
  writeFileSync(cfgPath, JSON.stringify(config));
  const child: ChildProcess = spawn(
    process.execPath,
    ['bin/streamfleet.js', 'serve', '--port', '0', '--trickle-port', String(tricklePort), '--host', '127.0.0.1', '--workspace', join(dir, 'ws'), '--config', cfgPath, ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SF_LOG_LEVEL: process.env.SF_LOG_LEVEL ?? 'warn' } },
  );
  const pid = child.pid ?? -1;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ port: number; trickle_port: number }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited early with ${code}`)));
    lines.once('line', (l) => resolve(JSON.parse(l) as { port: number; trickle_port: number }));
  });
  child.stdout!.resume();
  const childrenSeen = new Set<number>();
  const watch = setInterval(() => {
    for (const p of descendants(pid)) childrenSeen.add(p);
  }, 200);
  return {
    pid,
    origin: `http://127.0.0.1:${ready.port}`,
    trickle: `http://127.0.0.1:${ready.trickle_port}`,
    childrenSeen,
    async stop(graceMs = 20_000) {
      clearInterval(watch);
      for (const p of descendants(pid)) childrenSeen.add(p);
      let code: number | null = null;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const r = await Promise.race([exited, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), graceMs))]);
        if (r === 'timeout') {
          child.kill('SIGKILL');
          code = await exited;
        } else code = r;
      } else code = child.exitCode;
      // What it forked gets a moment to follow (workers exit when their IPC channel closes).
      const deadline = Date.now() + 3_000;
      while ([...childrenSeen].some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const orphans = [...childrenSeen].filter(alive);
      for (const p of orphans) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      return { code, orphans };
    },
  };
}
