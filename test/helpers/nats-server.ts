// Starts a real nats-server (JetStream on) on a free port for one test file; stop() kills it by
// pid and removes its store. Readiness is the server's own "Server is ready" log line.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EPHEMERAL_PORT_ATTEMPTS, isPortTaken, spawnNatsServer, type RunningNatsServer } from '../../src/cli/nats-cluster.ts';
import { freePort } from './ports.ts';

export { spawnNatsServer, type RunningNatsServer } from '../../src/cli/nats-cluster.ts';

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

export async function startNatsServer(opts: StartNatsServerOptions = {}): Promise<NatsServerHandle> {
  let storeDir = '';
  let port = 0;
  const spawnIt = () =>
    spawnNatsServer(['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...(opts.args ?? [])], {
      ownedDir: storeDir,
      readyTimeoutMs: opts.readyTimeoutMs,
    });
  let server: RunningNatsServer;
  for (let attempt = 1; ; attempt++) {
    storeDir = await mkdtemp(join(tmpdir(), 'sf-nats-'));
    port = await freePort();
    try {
      server = await spawnIt();
      break;
    } catch (err) {
      // Another process bound the picked port first: pick again (a failed start removed its store).
      if (!isPortTaken(err) || attempt >= EPHEMERAL_PORT_ATTEMPTS) throw err;
    }
  }
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
