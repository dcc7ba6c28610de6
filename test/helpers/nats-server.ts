// Starts a real nats-server (JetStream on) on a free port for one test file; stop() kills it by
// pid and removes its store. Readiness is the server's own "Server is ready" log line.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';

export interface NatsServerHandle {
  url: string;
  port: number;
  /** The running server's pid (a new one after `restart`). */
  pid: number;
  /** Kills the server (SIGTERM, then SIGKILL) and removes its JetStream store. */
  stop(): Promise<void>;
  /** An outage: SIGKILLs the server by pid and waits for its exit, keeping its store. */
  kill(): Promise<void>;
  /** The end of an outage: the server again, on the same port with the same store. */
  restart(): Promise<void>;
}

export interface StartNatsServerOptions {
  /** How long to wait for readiness. Default 15 s. */
  readyTimeoutMs?: number;
  /** Extra nats-server arguments. */
  args?: string[];
}

export interface RunningNatsServer {
  pid: number;
  /** SIGTERM (then SIGKILL after 5 s), wait for the exit, remove `ownedDir`. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL, wait for the exit; `ownedDir` stays. */
  kill(): Promise<void>;
}

/**
 * Spawns nats-server with `args` and resolves once it logs "Server is ready"; a server that exits or
 * stays silent fails with its log. `ownedDir` (its store or config folder) is removed on stop.
 */
export async function spawnNatsServer(
  args: string[],
  o: { ownedDir: string; env?: Record<string, string>; readyTimeoutMs?: number },
): Promise<RunningNatsServer> {
  const readyTimeoutMs = o.readyTimeoutMs ?? 15_000;
  const child = spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...o.env } });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let log = '';
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(o.ownedDir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server not ready after ${readyTimeoutMs} ms:\n${log}`)), readyTimeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}:\n${log}`));
      });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        if (log.length < 64 * 1024) log += chunk;
        if (log.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  // Keep reading so a chatty server never blocks on a full pipe.
  child.stderr!.resume();
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  return { pid: child.pid!, stop, kill };
}

export async function startNatsServer(opts: StartNatsServerOptions = {}): Promise<NatsServerHandle> {
  const storeDir = await mkdtemp(join(tmpdir(), 'sf-nats-'));
  const port = await freePort();
  const spawnIt = () =>
    spawnNatsServer(['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...(opts.args ?? [])], {
      ownedDir: storeDir,
      readyTimeoutMs: opts.readyTimeoutMs,
    });
  let server = await spawnIt();
  const handle: NatsServerHandle = {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: server.pid,
    stop: () => server.stop(),
    kill: () => server.kill(),
    async restart() {
      await server.kill();
      server = await spawnIt();
      handle.pid = server.pid;
    },
  };
  return handle;
}
