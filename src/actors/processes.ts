// The worker PROCESSES of one node: forks them, bridges them to the local bus, waits until they
// answer `ping`, sends them ProcCommands, and ends them (shutdown, then SIGTERM, then SIGKILL).
// A process is keyed by what it serves (`stream:<id>` or `shared:<node>`); concurrent `ensure`
// calls for one key share one fork, so the prompt workers of a stream land in one process.
import { fork, type ChildProcess } from 'node:child_process';
import { workerConfig, type Config } from '../config.ts';
import { V8_TRANSFER_FLAGS } from '../free-buffer.ts';
import type { Logger } from '../log.ts';
import { BusError, type Bus, type BusSubscription } from '../transport/bus.ts';
import { bridgeChild, type ChildBridge } from '../transport/local/bridge-parent.ts';
import { subjects } from '../transport/subjects.ts';
import { workerBundle } from './worker-bundle.ts';
import { Reply, type ProcCommand } from '../transport/worker-protocol.ts';
import { AbortedError, RuntimeError, WorkerGoneError, WorkerReplyError } from './errors.ts';

/** tsx resolved from this package, not from the working directory (a node started elsewhere still forks). */
const TSX_LOADER = import.meta.resolve('tsx');

/** The V8 flags a worker process runs with (see ActorConfig.workerSemiSpaceMiB and free-buffer.ts). */
function workerV8Flags(config: Config): string[] {
  return [`--max-semi-space-size=${config.actors.workerSemiSpaceMiB}`, ...V8_TRANSFER_FLAGS];
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
}

export class ProcHandle {
  readonly workers = new Set<string>();
  readonly streams = new Set<string>();
  exitInfo: ExitInfo | undefined;
  /** Answered `ping`: commands reach it. */
  joined = false;
  readonly exited: Promise<ExitInfo>;
  bridge: ChildBridge | undefined;
  private resolveExit!: (e: ExitInfo) => void;

  constructor(
    /** What it serves (`stream:<id>`, `shared:<node>`), or SPARE_KEY while idle in the pool. */
    public key: string,
    readonly procId: string,
    readonly child: ChildProcess,
    /** A shared process outlives its streams: only the runtime's close ends it. */
    public shared: boolean,
  ) {
    this.exited = new Promise((resolve) => {
      this.resolveExit = resolve;
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  alive(): boolean {
    return this.exitInfo === undefined;
  }

  markExited(info: ExitInfo): void {
    if (this.exitInfo) return;
    this.exitInfo = info;
    this.resolveExit(info);
  }
}

export interface ProcessesOptions {
  config: Readonly<Config>;
  bus: Bus;
  logger: Logger;
  /** A TypeScript worker entry to fork through tsx (default: src/runner/main.ts, bundled; see worker-bundle.ts). */
  entry?: string;
}

/** Key of an idle spare process (not serving anything yet). */
export const SPARE_KEY = 'spare';

const workerKey = (streamId: string, workerId: string) => `${streamId}/${workerId}`;

export class WorkerProcesses {
  private readonly byKey = new Map<string, ProcHandle>();
  private readonly starting = new Map<string, Promise<ProcHandle>>();
  private readonly all = new Set<ProcHandle>();
  private readonly spares: ProcHandle[] = [];
  private sparesStarting = 0;
  private incarnation = 0;
  private closing = false;

  constructor(private readonly opts: ProcessesOptions) {
    // Built (or found in the cache) now, so the first start does not wait for it; a failure
    // surfaces at that start.
    if (!opts.entry) workerBundle().catch(() => undefined);
  }

  /** Every live process serving something; with `spares`, the idle pool too. */
  list(opts: { spares?: boolean } = {}): ProcHandle[] {
    return [...this.all].filter((h) => opts.spares || h.key !== SPARE_KEY);
  }

  /** Keeps config.actors.spareWorkers idle processes forked and joined (in the background). */
  replenish(): void {
    while (!this.closing && this.spares.length + this.sparesStarting < this.opts.config.actors.spareWorkers) {
      this.sparesStarting++;
      this.start(SPARE_KEY, false)
        .then(
          (h) => {
            if (this.closing) void this.kill(h);
            else {
              this.spares.push(h);
              void h.exited.then(() => {
                const i = this.spares.indexOf(h);
                if (i >= 0) this.spares.splice(i, 1);
              });
            }
          },
          (err: unknown) => this.opts.logger.warn({ err }, 'spare worker process failed to start'),
        )
        .finally(() => this.sparesStarting--);
    }
  }

  /** Hands an idle spare to `key`, if one is ready. */
  private takeSpare(key: string, shared: boolean): ProcHandle | undefined {
    for (;;) {
      const h = this.spares.shift();
      if (!h) return undefined;
      if (!h.alive()) continue;
      h.key = key;
      h.shared = shared;
      this.byKey.set(key, h);
      this.opts.logger.info({ procId: h.procId, pid: h.pid, key }, 'spare worker process assigned');
      this.replenish();
      return h;
    }
  }

  /** The joined, live process for `key` (one still starting is not returned). */
  get(key: string): ProcHandle | undefined {
    const h = this.byKey.get(key);
    return h?.alive() && h.joined ? h : undefined;
  }

  byPid(pid: number | undefined): ProcHandle | undefined {
    if (pid === undefined) return undefined;
    for (const h of this.all) if (h.pid === pid) return h;
    return undefined;
  }

  addWorker(h: ProcHandle, streamId: string, workerId: string): void {
    h.workers.add(workerKey(streamId, workerId));
    h.streams.add(streamId);
  }

  removeWorker(h: ProcHandle, streamId: string, workerId: string): void {
    h.workers.delete(workerKey(streamId, workerId));
  }

  workersOfStream(h: ProcHandle, streamId: string): number {
    let n = 0;
    for (const w of h.workers) if (w.startsWith(`${streamId}/`)) n++;
    return n;
  }

  /** The process for `key` once any fork in progress has settled (joined or failed). */
  async settled(key: string): Promise<ProcHandle | undefined> {
    await this.starting.get(key)?.catch(() => undefined);
    return this.get(key);
  }

  /** The live process for `key`, forked (and joined to the bus) when there is none. */
  ensure(key: string, opts: { shared: boolean; signal?: AbortSignal }): Promise<ProcHandle> {
    if (this.closing) return Promise.reject(new RuntimeError('WORKER_GONE', 'the runtime is closing'));
    let p = this.starting.get(key);
    const live = this.get(key);
    if (!p && live) return Promise.resolve(live);
    const spare = p ? undefined : this.takeSpare(key, opts.shared);
    if (spare) return Promise.resolve(spare);
    if (!p) {
      p = this.start(key, opts.shared).finally(() => this.starting.delete(key));
      this.starting.set(key, p);
    }
    // One caller giving up does not cancel the fork others wait for; it only stops waiting.
    return opts.signal ? raceAbort(p, opts.signal, 'spawn') : p;
  }

  private async start(key: string, shared: boolean): Promise<ProcHandle> {
    const { config, bus, logger } = this.opts;
    // Unique per fork: a process that is still dying never shares an inbox with its successor.
    const procId = `${key.replace(/[^A-Za-z0-9_-]/g, '_')}_${++this.incarnation}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SF_PROC_ID: procId,
      SF_NODE_ID: config.nodeId,
      SF_CONFIG: JSON.stringify(workerConfig(config)),
    };
    if (config.actors.workerMallocArenas > 0) env.MALLOC_ARENA_MAX = String(config.actors.workerMallocArenas);
    if (config.bus.natsUrl) env.SF_NATS_URL = config.bus.natsUrl;
    else delete env.SF_NATS_URL;
    const entry = this.opts.entry ?? (await workerBundle());
    // Subscribed before the fork, so the process's one `ready` cannot be missed.
    const ready = bus.subscribe(subjects.procReady(procId));
    const child = fork(entry, [], {
      execArgv: [...workerV8Flags(config), ...(this.opts.entry ? ['--import', TSX_LOADER] : [])],
      env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const h = new ProcHandle(key, procId, child, shared);
    const log = logger.child({ procId, pid: child.pid });
    this.all.add(h);
    if (key !== SPARE_KEY) this.byKey.set(key, h);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      log.info({ code, signal, key: h.key }, 'worker process exited');
      h.markExited({ code, signal });
      this.all.delete(h);
      if (this.byKey.get(h.key) === h) this.byKey.delete(h.key);
    };
    child.once('exit', onExit);
    child.once('error', (err) => {
      log.error({ err }, 'worker process error');
      // A fork that never started emits 'error' without 'exit'.
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) onExit(null, null);
    });
    if (bus.kind !== 'nats') h.bridge = bridgeChild(bus, child, { logger });
    try {
      await this.waitJoined(h, ready);
    } catch (err) {
      await this.kill(h);
      throw err;
    } finally {
      ready.unsubscribe();
    }
    h.joined = true;
    log.info('worker process joined the bus');
    return h;
  }

  /** Until the process announces `ready` or answers a ping (pinged in case the announcement is lost). */
  private async waitJoined(h: ProcHandle, ready: BusSubscription): Promise<void> {
    const { actors } = this.opts.config;
    const deadline = Date.now() + actors.workerStartTimeoutMs;
    let announced = false;
    const announcement = (async () => {
      for await (const _ of ready) return (announced = true);
      return false;
    })();
    for (;;) {
      if (announced) return;
      if (!h.alive()) throw new WorkerGoneError(h.procId, `exited before joining the bus (${describeExit(h.exitInfo)})`);
      try {
        await this.request(h, { type: 'ping' }, Math.max(1, Math.min(this.opts.config.bus.requestTimeoutMs, deadline - Date.now())));
        return;
      } catch (err) {
        const retry = err instanceof BusError && (err.code === 'BUS_NO_RESPONDERS' || err.code === 'BUS_TIMEOUT');
        if (!retry) throw err;
      }
      if (Date.now() >= deadline) {
        throw new RuntimeError('WORKER_JOIN_TIMEOUT', `worker process ${h.procId} did not join the bus in ${actors.workerStartTimeoutMs} ms`);
      }
      await Promise.race([sleep(actors.workerPingIntervalMs), h.exited, announcement]);
    }
  }

  /** Sends one command; resolves with the reply's result, throws WorkerReplyError / WorkerGoneError. */
  async request(h: ProcHandle, cmd: ProcCommand, timeoutMs: number, signal?: AbortSignal): Promise<Record<string, unknown>> {
    if (!h.alive()) throw new WorkerGoneError(h.procId, `has exited (${describeExit(h.exitInfo)})`);
    const asked = this.opts.bus.request(subjects.procCmd(h.procId), cmd, { timeoutMs });
    const gone = h.exited.then((e) => {
      throw new WorkerGoneError(h.procId, `exited during ${cmd.type} (${describeExit(e)})`);
    });
    let raced: Promise<unknown> = Promise.race([asked, gone]);
    if (signal) raced = raceAbort(raced, signal, cmd.type);
    gone.catch(() => undefined);
    const msg = (await raced) as Awaited<typeof asked>;
    const parsed = Reply.safeParse(msg.json());
    if (!parsed.success) throw new RuntimeError('BAD_REPLY', `bad reply to ${cmd.type} from ${h.procId}`);
    const r = parsed.data;
    if (!r.ok) throw new WorkerReplyError(r.code, r.message);
    return r.result;
  }

  /**
   * Ends a process: `shutdown` when asked to be graceful, then SIGTERM, then SIGKILL, each after
   * workerStopGraceMs. An abort skips straight to SIGKILL. Resolves once it has exited.
   */
  async terminate(h: ProcHandle, opts: { graceful: boolean; signal?: AbortSignal }): Promise<void> {
    if (!h.alive()) return;
    const grace = this.opts.config.actors.workerStopGraceMs;
    const aborted = opts.signal ? abortPromise(opts.signal) : new Promise<void>(() => undefined);
    const exitedOr = (ms: number) => Promise.race([h.exited.then(() => true), sleep(ms).then(() => false), aborted.then(() => false)]);
    if (opts.graceful && !opts.signal?.aborted) {
      await this.request(h, { type: 'shutdown' }, grace).catch(() => undefined);
      if (await exitedOr(grace)) return;
    }
    if (!opts.signal?.aborted && h.alive()) {
      h.child.kill('SIGTERM');
      if (await exitedOr(grace)) return;
    }
    await this.kill(h);
  }

  /** SIGKILL and wait for the exit. */
  async kill(h: ProcHandle): Promise<void> {
    if (!h.alive()) return;
    h.child.kill('SIGKILL');
    await h.exited;
  }

  /** Ends every process (the runtime's close): nothing forked by this node outlives it. */
  async closeAll(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.starting.values()]);
    await Promise.all([...this.all].map((h) => this.terminate(h, { graceful: true })));
  }
}

export function describeExit(e: ExitInfo | undefined): string {
  if (!e) return 'running';
  if (e.code !== null) return `code ${e.code}`;
  return e.signal !== null ? `signal ${e.signal}` : 'exited';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function abortPromise(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

export function raceAbort<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) return Promise.reject(new AbortedError(what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError(what));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
