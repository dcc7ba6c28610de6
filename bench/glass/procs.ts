// The service and the bare trickle server as black-box child processes (`node bin/streamfleet.js`),
// on ephemeral ports, with a temp workspace; stopped by PID (SIGTERM, then SIGKILL), and every
// descendant they left behind killed by PID too.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, writeFileSync, type WriteStream } from 'node:fs';
import net from 'node:net';
import { getPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, descendants } from './procstat.ts';
import { sleep } from './http.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(repo, 'bin', 'streamfleet.js');

/**
 * The bench may run at a raised priority (glass.bench.ts, SF_GLASS_NICE) so that its own timing is
 * not what a loaded machine delays; what it starts runs at the priority it would have had
 * (`nice -n <back>` in front: exact, and inherited by what that process forks in turn).
 */
export function atNormalPriority(cmd: string, args: string[]): [string, string[]] {
  let mine = 0;
  try {
    mine = getPriority();
  } catch {
    /* unknown: leave as is */
  }
  return mine < 0 ? ['nice', ['-n', String(-mine), cmd, ...args]] : [cmd, args];
}

/** Every child started here that has not exited yet, and what they forked: killed by PID if this process ends first. */
const live = new Set<ChildProcess>();
const liveTree = new Map<ChildProcess, number[]>();
export function killAllChildren(): void {
  for (const c of live) {
    const pids = [c.pid ?? -1, ...(liveTree.get(c) ?? [])].filter((p) => p > 0);
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  live.clear();
}
process.once('exit', killAllChildren);

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Child {
  pid: number;
  proc: ChildProcess;
  /** log lines that are warnings or errors (pino level >= 40, or non-JSON stderr) */
  problems: string[];
  logPath: string;
  /** SIGTERM, wait, SIGKILL; then kill any descendant still alive; returns what had to be killed */
  stop(graceMs?: number): Promise<{ exitCode: number | null; signal: string | null; killed: number[]; stopMs: number }>;
}

function track(proc: ChildProcess, logPath: string, onLine: (line: string) => void): { log: WriteStream; problems: string[] } {
  const log = createWriteStream(logPath);
  const problems: string[] = [];
  const lines = (stream: NodeJS.ReadableStream | null, isErr: boolean) => {
    let buf = '';
    stream?.on('data', (c: Buffer) => {
      log.write(c);
      buf += c.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        onLine(line);
        // pino JSON lines (the serve process logs on stdout, its workers on stderr): level >= 40;
        // anything else on stderr counts as a problem too.
        const m = /^\{"level":(\d+)/.exec(line);
        if (m ? Number(m[1]) >= 40 : isErr && line.trim() !== '') problems.push(line.slice(0, 400));
      }
    });
  };
  lines(proc.stdout, false);
  lines(proc.stderr, true);
  return { log, problems };
}

function spawnChild(args: string[], logPath: string, ready: (line: string) => unknown, timeoutMs: number): Promise<{ child: Child; ready: unknown }> {
  return new Promise((resolve, reject) => {
    const [cmd, argv] = atNormalPriority(process.execPath, [bin, ...args]);
    const proc = spawn(cmd, argv, {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SF_LOG_LEVEL: process.env.SF_GLASS_LOG_LEVEL ?? 'warn' },
    });
    live.add(proc);
    // What it forks (workers), refreshed now and then, so an abrupt end of the bench can kill them too.
    const treeTimer = setInterval(() => proc.pid && liveTree.set(proc, descendants(proc.pid)), 2_000);
    treeTimer.unref();
    proc.once('exit', () => {
      clearInterval(treeTimer);
      live.delete(proc);
      liveTree.delete(proc);
    });
    let settled = false;
    const { log, problems } = track(proc, logPath, (line) => {
      if (settled) return;
      const r = ready(line);
      if (r !== undefined) {
        settled = true;
        clearTimeout(timer);
        resolve({ child, ready: r });
      }
    });
    const pid = proc.pid ?? -1;
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    const child: Child = {
      pid,
      proc,
      problems,
      logPath,
      async stop(graceMs = 20_000) {
        const t0 = performance.now();
        const before = pid > 0 ? descendants(pid) : [];
        let res: { code: number | null; signal: string | null } | null = null;
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGTERM');
          res = await Promise.race([exited, sleep(graceMs).then(() => null)]);
          if (!res) {
            proc.kill('SIGKILL');
            res = await exited;
          }
        } else res = await exited;
        const stopMs = performance.now() - t0;
        // Descendants (worker processes, esbuild helpers) get a moment to follow, then are killed.
        const deadline = performance.now() + 3_000;
        while (before.some(alive) && performance.now() < deadline) await sleep(100);
        const killed = before.filter(alive);
        for (const p of killed) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        log.end();
        return { exitCode: res.code, signal: res.signal, killed, stopMs };
      },
    };
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      void child.stop(2_000).then(() => reject(new Error(`${args[0]} not ready within ${timeoutMs} ms (log: ${logPath})`)));
    }, timeoutMs);
    proc.once('exit', (code) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      log.end();
      reject(new Error(`${args[0]} exited with ${code} before it was ready (log: ${logPath})`));
    });
  });
}

export interface ServiceNode extends Child {
  apiPort: number;
  tricklePort: number;
  api: string;
  trickle: string;
}

export async function startService(dir: string, workspace: string, maxStreams: number, tag: string, extraArgs: string[] = []): Promise<ServiceNode> {
  const tricklePort = await freePort();
  // The bench looks for the count where real time breaks: the node's measured capacity must not refuse first.
  const cfgPath = join(dir, `serve-${tag}.json`);
  // SF_GLASS_CONFIG: more of the node's config (JSON), to measure a setting against its default.
  const extra = JSON.parse(process.env.SF_GLASS_CONFIG ?? '{}') as Record<string, Record<string, unknown>>;
  writeFileSync(cfgPath, JSON.stringify({ ...extra, cluster: { cpuTarget: 16, ...extra.cluster } }));
  // prettier-ignore
  const args = ['serve', '--port', '0', '--trickle-port', String(tricklePort), '--host', '127.0.0.1',
    '--workspace', workspace, '--max-streams', String(maxStreams), '--node-id', `glass-${tag}`, '--config', cfgPath, ...extraArgs];
  const { child, ready } = await spawnChild(
    args,
    join(dir, `serve-${tag}.log`),
    (line) => {
      if (!line.startsWith('{"event":"ready"')) return undefined;
      try {
        return JSON.parse(line) as { port: number; trickle_port: number };
      } catch {
        return undefined;
      }
    },
    90_000,
  );
  const r = ready as { port: number; trickle_port: number };
  return { ...child, apiPort: r.port, tricklePort: r.trickle_port, api: `http://127.0.0.1:${r.port}`, trickle: `http://127.0.0.1:${r.trickle_port}` };
}

export async function startTrickleServer(dir: string, tag: string): Promise<Child & { url: string }> {
  const port = await freePort();
  const { child, ready } = await spawnChild(
    ['trickle-server', '--port', String(port), '--host', '127.0.0.1'],
    join(dir, `trickle-${tag}.log`),
    (line) => (line.startsWith('listening ') ? line.slice('listening '.length).trim().replace(/\/$/, '') : undefined),
    60_000,
  );
  return { ...child, url: ready as string };
}
