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
  pid: number;
  /** Kills the server (SIGTERM, then SIGKILL) and removes its JetStream store. */
  stop(): Promise<void>;
}

export interface StartNatsServerOptions {
  /** How long to wait for readiness. Default 15 s. */
  readyTimeoutMs?: number;
  /** Extra nats-server arguments. */
  args?: string[];
}

export async function startNatsServer(opts: StartNatsServerOptions = {}): Promise<NatsServerHandle> {
  const storeDir = await mkdtemp(join(tmpdir(), 'sf-nats-'));
  const port = await freePort();
  const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...(opts.args ?? [])], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let log = '';
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(storeDir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server not ready after ${opts.readyTimeoutMs ?? 15_000} ms:\n${log}`)), opts.readyTimeoutMs ?? 15_000);
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
  return { url: `nats://127.0.0.1:${port}`, port, pid: child.pid!, stop };
}
