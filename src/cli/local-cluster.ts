// A whole cluster on one machine, as `streamfleet cluster up` runs it: the 3-server NATS JetStream
// cluster of infra/nats/cluster (its configs rewritten to local ports and a temp store), the KV buckets
// given one replica per server (infra/nats/ensure-buckets.ts, run as compose's `nats-init` runs it),
// then N `streamfleet serve` processes on all the servers' URLs, each ready once its /readyz answers 200.
// Every process is started and stopped by pid: nodes first (SIGTERM, SIGKILL of its process group after
// a bound), then the NATS servers; the temp dir goes last. Each process runs in a process group of its
// own, so a Ctrl-C in the terminal reaches only the command, which stops them in that order.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ensureWorkspace } from '../inference/workspace.ts';
import type { Logger } from '../log.ts';
import { freePort, startCluster, type ConfServer, type ProcessExit } from './nats-cluster.ts';

const port = z.number().int().min(0).max(65535);

/** Every default and bound of a local cluster (`streamfleet cluster up` flags set the common ones). Valid when empty. */
export const LocalClusterConfigSchema = z.object({
  /** streamfleet nodes to start: node-1 .. node-N. */
  nodes: z.number().int().min(1).max(16).default(3),
  /** API port of node-1; node-i listens on port + i - 1. 0: ephemeral ports. */
  port: port.default(8000),
  /** Embedded trickle port of node-1; node-i on tricklePort + i - 1. 0: ephemeral ports. */
  tricklePort: port.default(3389),
  /** NATS client port of nats-1 (nats-i: + i - 1). Not 4222, so a NATS already on this machine stays undisturbed. 0: ephemeral. */
  natsPort: port.default(14222),
  /** NATS route (cluster) port of nats-1. 0: ephemeral. */
  natsClusterPort: port.default(16222),
  /** NATS monitoring port of nats-1. 0: ephemeral. */
  natsMonitorPort: port.default(18222),
  /** Address every process listens on. */
  host: z.literal('127.0.0.1').default('127.0.0.1'),
  /** The nodes' shared workspace (made once, before they start, with the built-in models). */
  workspace: z.string().default('workspace'),
  /** A `serve --config` file handed to every node. */
  nodeConfigFile: z.string().optional(),
  /** The nodes' log level (SF_LOG_LEVEL overrides); their log lines reach stderr prefixed with the node id. */
  nodeLogLevel: z.string().default('warn'),
  /** The folder of nats-1.conf, nats-2.conf, ...: one server per file. */
  natsConfigDir: z.string().default(fileURLToPath(new URL('../../infra/nats/cluster/', import.meta.url))),
  /** The bucket one-shot (run with `node --import tsx`). */
  ensureBucketsScript: z.string().default(fileURLToPath(new URL('../../infra/nats/ensure-buckets.ts', import.meta.url))),
  /** `nats-server` to run. */
  natsBinary: z.string().default('nats-server'),
  /** A NATS server must log "Server is ready" within this long. */
  natsReadyTimeoutMs: z.number().int().positive().default(15_000),
  /** Once all run: routes up and a JetStream meta leader within this long. */
  natsFormTimeoutMs: z.number().int().positive().default(30_000),
  /** ensure-buckets' --wait (seconds): retrying while the cluster elects its leaders. */
  ensureBucketsWaitS: z.number().int().positive().default(60),
  /** A node must print its ready line and answer /readyz 200 within this long. */
  nodeReadyTimeoutMs: z.number().int().positive().default(90_000),
  /** How often /readyz is asked while a node comes up. */
  readyzPollMs: z.number().int().positive().default(200),
  /** A node sent SIGTERM has this long (it stops its streams and workers) before SIGKILL of its process group. */
  nodeStopGraceMs: z.number().int().positive().default(25_000),
  /** A NATS server sent SIGTERM has this long before SIGKILL. */
  natsStopGraceMs: z.number().int().positive().default(5_000),
  /** Log lines kept per child for a report of why it failed to start. */
  childLogKeepBytes: z.number().int().positive().default(32 * 1024),
});
export type LocalClusterConfig = z.infer<typeof LocalClusterConfigSchema>;
export type LocalClusterConfigInput = z.input<typeof LocalClusterConfigSchema>;

export class LocalClusterError extends Error {
  readonly code = 'LOCAL_CLUSTER';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LocalClusterError';
  }
}

export function loadLocalClusterConfig(input: LocalClusterConfigInput = {}): Readonly<LocalClusterConfig> {
  const c = LocalClusterConfigSchema.parse(input);
  for (const [name, first] of Object.entries({ port: c.port, tricklePort: c.tricklePort }) as Array<[string, number]>) {
    if (first !== 0 && first + c.nodes - 1 > 65535) throw new LocalClusterError(`${name} ${first} + ${c.nodes} nodes passes 65535`);
  }
  return Object.freeze(c);
}

export interface NatsMember {
  name: string;
  pid: number;
  url: string;
  monitor: string;
}

export interface NodeMember {
  nodeId: string;
  pid: number;
  api: string;
  trickle: string;
  nats: string;
}

export interface ChildLoss {
  kind: 'node' | 'nats';
  name: string;
  pid: number;
  exit: ProcessExit;
}

export interface LocalCluster {
  /** The temp dir holding the NATS configs and stores; removed by stop(). */
  dir: string;
  nats: NatsMember[];
  /** Every node's `--nats` (all servers' client URLs). */
  natsUrls: string;
  nodes: NodeMember[];
  buckets: Array<{ bucket: string; action: string; replicas: number }>;
  /** Nodes first (SIGTERM, then SIGKILL of the process group after the bound), then NATS, then the temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** The hard way, now: SIGKILL of every process group still alive (a stop() in progress then finishes at once). */
  kill(): void;
}

export interface StartLocalClusterOptions {
  logger: Logger;
  /** A child that exits while the cluster runs (not during stop): a node or a NATS server. The rest keep running. */
  onLoss?: (loss: ChildLoss) => void;
  /** Each line a node writes to stderr (its log), with its id; default: dropped. */
  onNodeLog?: (nodeId: string, line: string) => void;
  /** Abandons the start (a Ctrl-C while it comes up): it rejects once what it started has stopped. */
  signal?: AbortSignal;
}

/** The repository root: where `node --import tsx` finds tsx and bin/streamfleet.js lives. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'streamfleet.js');

const running = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

function exitOf(c: ChildProcess): Promise<ProcessExit> {
  if (!running(c)) return Promise.resolve({ code: c.exitCode, signal: c.signalCode });
  return new Promise((r) => c.once('exit', (code, signal) => r({ code, signal })));
}

/** SIGKILL of the child's process group (it and what it forked), or of the child alone if that fails. */
function killGroup(c: ChildProcess): void {
  if (c.pid === undefined) return;
  try {
    process.kill(-c.pid, 'SIGKILL');
  } catch {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL of its process group; resolves on its exit. */
async function stopChild(c: ChildProcess, graceMs: number): Promise<ProcessExit> {
  const exited = exitOf(c);
  if (running(c)) {
    c.kill('SIGTERM');
    const timer = setTimeout(() => killGroup(c), graceMs);
    await exited;
    clearTimeout(timer);
  }
  return exited;
}

/** `nats-1.conf`, `nats-2.conf`, ... of the folder, in order. */
async function natsConfigs(dir: string): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => /^nats-\d+\.conf$/.test(f)).sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]));
  if (files.length === 0) throw new LocalClusterError(`no nats-N.conf in ${dir}`);
  return files.map((f) => readFileSync(join(dir, f), 'utf8'));
}

const nth = (first: number, i: number): number => (first === 0 ? 0 : first + i);

/** Runs ensure-buckets to completion; its JSON lines are the buckets' reports. */
async function runEnsureBuckets(c: LocalClusterConfig, urls: string, replicas: number, track: (p: ChildProcess) => void) {
  const child = spawn(process.execPath, ['--import', 'tsx', c.ensureBucketsScript, '--nats', urls, '--replicas', String(replicas), '--wait', String(c.ensureBucketsWaitS)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  track(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    if (err.length < c.childLogKeepBytes) err += s;
  });
  const exit = await exitOf(child);
  if (exit.code !== 0) throw new LocalClusterError(`ensure-buckets exited with ${exit.code ?? exit.signal}: ${err.trim()}`);
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { bucket: string; action: string; replicas: number });
}

interface NodeStart {
  child: ChildProcess;
  member: Promise<NodeMember>;
}

function startNode(c: LocalClusterConfig, i: number, natsUrls: string, tricklePort: number, workspace: string, o: StartLocalClusterOptions): NodeStart {
  const nodeId = `node-${i + 1}`;
  const args = [
    BIN,
    'serve',
    '--node-id', nodeId,
    '--host', c.host,
    '--port', String(nth(c.port, i)),
    '--trickle-port', String(tricklePort),
    '--nats', natsUrls,
    '--workspace', workspace,
    ...(c.nodeConfigFile ? ['--config', c.nodeConfigFile] : []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, SF_LOG_LEVEL: process.env.SF_LOG_LEVEL ?? c.nodeLogLevel },
  });
  let log = '';
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (log.length < c.childLogKeepBytes) log += line + '\n';
    o.onNodeLog?.(nodeId, line);
  });
  const member = (async (): Promise<NodeMember> => {
    const lines = createInterface({ input: child.stdout! });
    const ready = await new Promise<{ port: number; trickle_port: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new LocalClusterError(`${nodeId}: no ready line in ${c.nodeReadyTimeoutMs} ms\n${log}`)), c.nodeReadyTimeoutMs);
      child.once('error', (err) => reject(new LocalClusterError(`${nodeId}: cannot start: ${err.message}`, { cause: err })));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new LocalClusterError(`${nodeId} exited with ${code ?? signal} while starting:\n${log}`));
      });
      lines.on('line', (line) => {
        if (!line.startsWith('{"event":"ready"')) return;
        clearTimeout(timer);
        resolve(JSON.parse(line) as { port: number; trickle_port: number });
      });
    });
    const api = `http://${c.host}:${ready.port}`;
    // Ready means /readyz says so (capacity and bus); nothing announces it, so ask.
    const deadline = Date.now() + c.nodeReadyTimeoutMs;
    for (;;) {
      if (!running(child)) throw new LocalClusterError(`${nodeId} exited while starting:\n${log}`);
      const status = await fetch(`${api}/readyz`).then((r) => r.status, () => 0);
      if (status === 200) break;
      if (Date.now() > deadline) throw new LocalClusterError(`${nodeId}: /readyz not 200 within ${c.nodeReadyTimeoutMs} ms (last ${status})`);
      await new Promise((r) => setTimeout(r, c.readyzPollMs));
    }
    return { nodeId, pid: child.pid!, api, trickle: `http://${c.host}:${ready.trickle_port}`, nats: natsUrls };
  })();
  return { child, member };
}

/** Starts the NATS cluster, its buckets and the nodes; rejects (with everything it started stopped) if any part fails. */
export async function startLocalCluster(config: Readonly<LocalClusterConfig>, o: StartLocalClusterOptions): Promise<LocalCluster> {
  const c = config;
  const log = o.logger;
  const dir = await mkdtemp(join(tmpdir(), 'sf-cluster-'));
  let stopping = false;
  let servers: ConfServer[] = [];
  const children: ChildProcess[] = [];
  const nodeChildren: ChildProcess[] = [];
  let stopped: Promise<void> | undefined;

  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      stopping = true;
      await Promise.all(nodeChildren.map((ch) => stopChild(ch, c.nodeStopGraceMs)));
      await Promise.all(children.filter((ch) => !nodeChildren.includes(ch)).map((ch) => stopChild(ch, c.natsStopGraceMs)));
      await Promise.all(servers.map((s) => s.stop(c.natsStopGraceMs)));
      await rm(dir, { recursive: true, force: true });
    })());
  const kill = (): void => {
    stopping = true;
    for (const ch of children) if (running(ch)) killGroup(ch);
    for (const s of servers) void s.kill();
  };

  // Waits that end early on abort. The NATS start is not cut short (its servers are known only once it
  // returns); it is bounded by natsReadyTimeoutMs + natsFormTimeoutMs.
  const aborted = new Promise<never>((_r, reject) => {
    const fail = (): void => reject(new LocalClusterError('interrupted while starting'));
    if (o.signal?.aborted) fail();
    else o.signal?.addEventListener('abort', fail, { once: true });
  });
  aborted.catch(() => undefined);
  const unlessAborted = <T>(p: Promise<T>): Promise<T> => Promise.race([p, aborted]);
  const checkAborted = (): void => {
    if (o.signal?.aborted) throw new LocalClusterError('interrupted while starting');
  };

  try {
    const confs = await natsConfigs(c.natsConfigDir);
    servers = await startCluster(confs, {
      parentDir: dir,
      readyTimeoutMs: c.natsReadyTimeoutMs,
      formTimeoutMs: c.natsFormTimeoutMs,
      ports: confs.map((_t, i) => ({ client: nth(c.natsPort, i), monitor: nth(c.natsMonitorPort, i), cluster: nth(c.natsClusterPort, i) })),
      binary: c.natsBinary,
      detached: true,
    });
    checkAborted();
    const nats = servers.map((s, i) => ({ name: `nats-${i + 1}`, pid: s.pid, url: s.url, monitor: s.monitor }));
    for (const [i, s] of servers.entries()) {
      void s.exited.then((exit) => {
        if (stopping) return;
        log.warn({ server: nats[i].name, pid: s.pid, ...exit }, 'NATS server exited; the cluster keeps running on the others');
        o.onLoss?.({ kind: 'nats', name: nats[i].name, pid: s.pid, exit });
      });
    }
    log.info({ servers: nats }, 'NATS cluster formed');
    const natsUrls = servers.map((s) => s.url).join(',');
    const buckets = await unlessAborted(runEnsureBuckets(c, natsUrls, servers.length, (p) => children.push(p)));
    log.info({ buckets }, 'KV buckets ensured');

    const workspace = ensureWorkspace(resolve(c.workspace));
    const starts: NodeStart[] = [];
    for (let i = 0; i < c.nodes; i++) {
      const tp = c.tricklePort === 0 ? await freePort() : c.tricklePort + i;
      const s = startNode(c, i, natsUrls, tp, workspace, o);
      children.push(s.child);
      nodeChildren.push(s.child);
      starts.push(s);
    }
    const settled = await unlessAborted(Promise.allSettled(starts.map((s) => s.member)));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const nodes = settled.map((r) => (r as PromiseFulfilledResult<NodeMember>).value);
    for (const [i, s] of starts.entries()) {
      void exitOf(s.child).then((exit) => {
        if (stopping) return;
        log.warn({ nodeId: nodes[i].nodeId, pid: nodes[i].pid, ...exit }, 'node exited; the other nodes keep running');
        o.onLoss?.({ kind: 'node', name: nodes[i].nodeId, pid: nodes[i].pid, exit });
      });
    }
    return { dir, nats, natsUrls, nodes, buckets, stop, kill };
  } catch (err) {
    await stop();
    throw err;
  }
}
