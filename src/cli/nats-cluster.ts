// nats-server processes from infra/'s config files, for `streamfleet cluster up` and the tests: the
// file's own text with its ports, store dir and route addresses rewritten to local ones (every rewrite
// must find what it expects, so a config that drifts from the shape known here fails loudly instead of
// silently running something else), started by pid, ready on the server's "Server is ready" line, and
// a cluster formed once every server has its routes and JetStream has a meta leader.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An ephemeral TCP port on 127.0.0.1 that was free a moment ago (for servers that cannot be handed port 0). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export class NatsConfError extends Error {
  readonly code = 'NATS_CONF';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NatsConfError';
  }
}

/**
 * How many times a start on ephemeral ports is made when nats-server cannot bind one: a port picked by
 * `freePort` can be taken by another process before the server binds it (parallel test files do).
 */
export const EPHEMERAL_PORT_ATTEMPTS = 3;

/** Whether a failed start failed because a port was already bound by someone else. */
export function isPortTaken(err: unknown): boolean {
  return err instanceof NatsConfError && /address already in use/i.test(err.message);
}

export interface ConfPorts {
  client: number;
  monitor: number;
  /** This server's cluster (route) port; only for a cluster config. */
  cluster?: number;
  /** Every route's port, in the order the config lists its routes. */
  routes?: number[];
}

function replaceCounted(text: string, re: RegExp, by: (m: string, ...g: string[]) => string, expected: number | 'optional'): string {
  let n = 0;
  const out = text.replace(re, (m: string, ...g: string[]) => {
    n++;
    return by(m, ...g);
  });
  const ok = expected === 'optional' ? n <= 1 : n === expected;
  if (!ok) throw new NatsConfError(`config rewrite ${re}: found ${n}, expected ${expected}`);
  return out;
}

/** The config text bound to 127.0.0.1 with the given ports, its store (and pid file, if it has one) under `dir`. */
export function rewriteNatsConf(text: string, ports: ConfPorts, dir: string): string {
  let t = text;
  t = replaceCounted(t, /^(\s*)host:\s*"?0\.0\.0\.0"?\s*$/m, (_m, ind) => `${ind}host: "127.0.0.1"`, 1);
  t = replaceCounted(t, /^(\s*)port:\s*4222\s*$/m, (_m, ind) => `${ind}port: ${ports.client}`, 1);
  t = replaceCounted(t, /^(\s*)http_port:\s*8222\s*$/m, (_m, ind) => `${ind}http_port: ${ports.monitor}`, 1);
  t = replaceCounted(t, /^(\s*)store_dir:\s*"[^"]*"\s*$/m, (_m, ind) => `${ind}store_dir: ${JSON.stringify(join(dir, 'store'))}`, 1);
  t = replaceCounted(t, /^(\s*)pid_file:\s*"[^"]*"\s*$/m, (_m, ind) => `${ind}pid_file: ${JSON.stringify(join(dir, 'nats.pid'))}`, 'optional');
  const routes = ports.routes ?? [];
  t = replaceCounted(t, /^(\s*)listen:\s*"?0\.0\.0\.0:6222"?\s*$/m, (_m, ind) => `${ind}listen: "127.0.0.1:${ports.cluster}"`, ports.cluster ? 1 : 0);
  let i = 0;
  t = replaceCounted(t, /"nats-route:\/\/[^":/]+:6222"/g, () => `"nats-route://127.0.0.1:${routes[i++]}"`, routes.length);
  return t;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningNatsServer {
  pid: number;
  /** Resolves when the process has exited, for whatever reason. */
  exited: Promise<ProcessExit>;
  /** The start of its log (stderr), for reports. */
  log(): string;
  /** SIGTERM (then SIGKILL after `graceMs`, default 5 s), wait for the exit, remove `ownedDir`. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL, wait for the exit; `ownedDir` stays. */
  kill(): Promise<void>;
}

const LOG_KEEP = 64 * 1024;

/**
 * Spawns nats-server with `args` and resolves once it logs "Server is ready"; a server that exits or
 * stays silent fails with its log (and is stopped). `ownedDir` (its store or config folder) is removed on stop.
 */
export async function spawnNatsServer(
  args: string[],
  o: { ownedDir: string; env?: Record<string, string>; readyTimeoutMs?: number; binary?: string; detached?: boolean },
): Promise<RunningNatsServer> {
  const readyTimeoutMs = o.readyTimeoutMs ?? 15_000;
  const child = spawn(o.binary ?? 'nats-server', args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...o.env },
    // A process group of its own: a terminal's Ctrl-C reaches only the parent, which stops it in order.
    detached: o.detached ?? false,
  });
  const exited = new Promise<ProcessExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  let log = '';
  const stop = async (graceMs = 5_000): Promise<void> => {
    if (running()) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(killer);
    }
    await rm(o.ownedDir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new NatsConfError(`nats-server not ready after ${readyTimeoutMs} ms:\n${log}`)), readyTimeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new NatsConfError(`cannot run nats-server: ${err.message}`, { cause: err }));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new NatsConfError(`nats-server exited with ${code}:\n${log}`));
      });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        if (log.length < LOG_KEEP) log += chunk;
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
    if (running()) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  return { pid: child.pid!, exited, log: () => log, stop, kill };
}

export interface ConfServer extends RunningNatsServer {
  url: string;
  monitor: string;
  ports: ConfPorts;
  /** The folder holding its config and store (removed by stop). */
  dir: string;
}

export interface StartFromConfOptions {
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /** The folder to make this server's own folder in; default the OS temp dir. */
  parentDir?: string;
  /** A name for its folder (`nats-1`); default a random one. */
  name?: string;
  /** `nats-server` to run. */
  binary?: string;
  /** Run it in a process group of its own. */
  detached?: boolean;
}

/** Writes the rewritten config to a folder of its own and starts nats-server on it; resolves once it is ready. */
export async function startFromConf(text: string, ports: ConfPorts, o: StartFromConfOptions = {}): Promise<ConfServer> {
  let dir: string;
  if (o.name && o.parentDir) {
    dir = join(o.parentDir, o.name);
    await mkdir(dir, { recursive: true });
  } else dir = await mkdtemp(join(o.parentDir ?? tmpdir(), 'sf-infra-nats-'));
  const conf = join(dir, 'nats.conf');
  try {
    await writeFile(conf, rewriteNatsConf(text, ports, dir));
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const server = await spawnNatsServer(['-c', conf], { ownedDir: dir, env: o.env, readyTimeoutMs: o.readyTimeoutMs, binary: o.binary, detached: o.detached });
  return { ...server, url: `nats://127.0.0.1:${ports.client}`, monitor: `http://127.0.0.1:${ports.monitor}`, ports, dir };
}

/** GETs a monitoring endpoint (/varz, /routez, /jsz, /healthz) as JSON. */
export async function monitorJson<T = Record<string, unknown>>(server: { monitor: string }, path: string): Promise<T> {
  const res = await fetch(server.monitor + path);
  return (await res.json()) as T;
}

/**
 * Polls a monitoring endpoint until `ok` holds. The servers publish no event when routes come up or
 * JetStream elects its meta leader; their monitoring endpoint is the only place that says so.
 */
export async function untilMonitor<T>(server: { monitor: string }, path: string, ok: (body: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await monitorJson<T>(server, path).catch(() => undefined);
    if (last !== undefined && ok(last)) return last;
    if (Date.now() > deadline) throw new NatsConfError(`${server.monitor}${path} never satisfied the condition; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Routez {
  num_routes: number;
}
export interface Jsz {
  config?: { store_dir: string };
  meta_cluster?: { name: string; leader?: string; cluster_size: number };
}

export interface StartClusterOptions {
  /** Each server's client, monitor and cluster ports; a 0 (or a missing entry) is an ephemeral port. */
  ports?: Array<Partial<Pick<ConfPorts, 'client' | 'monitor' | 'cluster'>>>;
  env?: (i: number) => Record<string, string>;
  /** Folder the servers' folders go in (`nats-1`, ...); default one temp dir each. */
  parentDir?: string;
  readyTimeoutMs?: number;
  /** How long routes and the JetStream meta leader may take once all servers run. */
  formTimeoutMs?: number;
  binary?: string;
  detached?: boolean;
}

/** Starts one server per config text, all routed to each other, and waits for routes and a meta leader. */
export async function startCluster(confs: string[], o: StartClusterOptions = {}): Promise<ConfServer[]> {
  const anyEphemeral = confs.some((_c, i) => {
    const want = o.ports?.[i] ?? {};
    return !want.client || !want.monitor || !want.cluster;
  });
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(confs, o);
    } catch (err) {
      if (!anyEphemeral || !isPortTaken(err) || attempt >= EPHEMERAL_PORT_ATTEMPTS) throw err;
    }
  }
}

async function startClusterOnce(confs: string[], o: StartClusterOptions): Promise<ConfServer[]> {
  const ports: ConfPorts[] = [];
  for (let i = 0; i < confs.length; i++) {
    const want = o.ports?.[i] ?? {};
    ports.push({ client: want.client || (await freePort()), monitor: want.monitor || (await freePort()), cluster: want.cluster || (await freePort()) });
  }
  const routes = ports.map((p) => p.cluster!);
  const servers: ConfServer[] = [];
  const formTimeoutMs = o.formTimeoutMs ?? 20_000;
  try {
    for (let i = 0; i < confs.length; i++) {
      servers.push(
        await startFromConf(confs[i], { ...ports[i], routes }, {
          env: o.env?.(i),
          readyTimeoutMs: o.readyTimeoutMs,
          parentDir: o.parentDir,
          binary: o.binary,
          detached: o.detached,
          ...(o.parentDir ? { name: `nats-${i + 1}` } : {}),
        }),
      );
    }
    for (const s of servers) await untilMonitor<Routez>(s, '/routez', (b) => b.num_routes === confs.length - 1, formTimeoutMs);
    for (const s of servers) await untilMonitor<Jsz>(s, '/jsz', (b) => Boolean(b.meta_cluster?.leader), formTimeoutMs);
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  return servers;
}
