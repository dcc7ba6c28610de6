// The actor runtime of one node: hosts stream actors (src/machines with the real effects of this
// folder), keeps the stream and node records on the bus KV, and serves the StreamRuntime port. Every
// StreamRuntime call about a stream goes over the bus to the stream's inbox (subjects.streamCmd), so
// any node's HTTP edge serves any stream; the node hosting it answers.
import type { z } from 'zod';
import type { Config } from '../config.ts';
import { SfError, isSfError } from '../errors.ts';
import { rootLogger, type Logger } from '../log.ts';
import { BusError, type Bus } from '../transport/bus.ts';
import { subjects } from '../transport/subjects.ts';
import { busGuard } from './bus-guard.ts';
import { StreamCommandResult, unwrapReply, type StreamCommand, type UpdatePromptsResult, type WorkspaceInfo } from './commands.ts';
import { streamProcKey, type EffectDeps } from './deps.ts';
import { HostedStream, provideStreamMachine } from './hosted-stream.ts';
import { Inspection } from './inspection.ts';
import { WorkerProcesses } from './processes.ts';
import { Registry, type StreamRecord } from './registry.ts';
import { ThumbnailStore } from './thumbnails.ts';
import type { StreamSpec, StreamStatus } from '../stream-spec.ts';
import type { ActorSummary, InspectionRecord, RuntimeEvent, StreamRuntime, UpdatePromptsRequest } from './types.ts';

export interface RuntimeOptions {
  config: Readonly<Config>;
  /** The node's bus (embedded or NATS); the caller owns it and closes it after the runtime. */
  bus: Bus;
  logger?: Logger;
  /** Worker process entry to fork (default: src/runner/main.ts). */
  workerEntry?: string;
}

/** A worker process as the runtime sees it (for status pages and tests). */
export interface ProcessInfo {
  procId: string;
  key: string;
  pid: number;
  /** Answered its first ping (it takes commands). */
  joined: boolean;
  streams: string[];
}

export interface Runtime extends StreamRuntime {
  /** Live worker processes forked by this node and serving streams; with `spares`, idle ones too. */
  processes(opts?: { spares?: boolean }): ProcessInfo[];
}

const ENDED_STATES = new Set(['terminated', 'failed']);

export async function createRuntime(opts: RuntimeOptions): Promise<Runtime> {
  const { config, bus } = opts;
  const logger = (opts.logger ?? rootLogger).child({ component: 'runtime', nodeId: config.nodeId });
  const registry = await Registry.open(bus, config);
  const guard = busGuard(bus);
  const hosted = new Map<string, HostedStream>();
  const retention = new Map<HostedStream, NodeJS.Timeout>();
  const listeners = new Set<(e: RuntimeEvent) => void>();
  const inspection = new Inspection(config, bus, logger);
  const thumbnails = new ThumbnailStore(bus, config.dashboard.thumbnails, logger);
  const startedAt = Date.now();
  let heartbeatAt: number | null = null;
  let reserved = 0;
  let closing = false;

  const emit = (e: RuntimeEvent): void => {
    for (const l of listeners) {
      try {
        l(e);
      } catch (err) {
        logger.warn({ err }, 'runtime event listener failed');
      }
    }
  };
  const procs = new WorkerProcesses({ config, bus, logger, ...(opts.workerEntry ? { entry: opts.workerEntry } : {}) });
  const deps: EffectDeps = {
    config,
    bus,
    logger,
    procs,
    emit,
    streams: {
      pipelineConfig(streamId, size) {
        const s = hosted.get(streamId);
        if (!s) throw new SfError('STREAM_NOT_FOUND', `Stream ${streamId} is not hosted here`);
        return s.pipelineConfig(size);
      },
      isEnding: (streamId) => hosted.get(streamId)?.isEnding() ?? true,
    },
  };
  const machine = provideStreamMachine(deps);

  const activeLocal = () => [...hosted.values()].filter((s) => !s.isEnded()).length;

  const heartbeat = async () => {
    if (bus.connection() === 'down') return;
    const at = Date.now();
    await registry
      .heartbeat({ nodeId: config.nodeId, heartbeatAt: at, capacity: config.actors.maxStreams, running: activeLocal(), startedAt })
      .then(() => void (heartbeatAt = at))
      .catch((err: unknown) => logger.debug({ err }, 'node heartbeat failed'));
  };
  await heartbeat();
  const heartbeatTimer = setInterval(() => void heartbeat(), config.actors.heartbeatIntervalMs);
  heartbeatTimer.unref();

  const remove = (s: HostedStream): void => {
    const t = retention.get(s);
    if (t) clearTimeout(t);
    retention.delete(s);
    if (hosted.get(s.id) === s) hosted.delete(s.id);
    s.dispose();
    void registry.remove(s.id, s.epoch).catch((err: unknown) => logger.debug({ err }, 'stream record removal failed'));
  };

  const onEnded = (s: HostedStream): void => {
    void registry.markEnded(s.id, s.epoch).catch((err: unknown) => logger.debug({ err }, 'mark ended failed'));
    // A spawn abandoned half-way (the stream stopped meanwhile) can leave its process behind,
    // possibly still joining: end it once it has, unless the id runs again by then.
    void procs.settled(streamProcKey(s.id)).then((leftover) => {
      const now = hosted.get(s.id);
      if (leftover && leftover.workers.size === 0 && (!now || now.isEnded())) {
        void procs.terminate(leftover, { graceful: true }).catch((err: unknown) => logger.warn({ err }, 'leftover process not ended'));
      }
    });
    if (closing) return;
    const t = setTimeout(() => remove(s), config.actors.endedStreamRetentionMs);
    t.unref();
    retention.set(s, t);
  };

  /** A request to a stream's inbox, wherever it is hosted. */
  async function ask<R>(id: string, cmd: StreamCommand, schema: z.ZodType<R>, timeoutMs = config.bus.requestTimeoutMs): Promise<R> {
    let subject: string;
    try {
      subject = subjects.streamCmd(id);
    } catch {
      throw new SfError('STREAM_NOT_FOUND', `Stream ${id} not found`);
    }
    try {
      const msg = await guard.run(() => bus.request(subject, cmd, { timeoutMs }));
      return unwrapReply(msg.json(), schema);
    } catch (err) {
      if (isSfError(err)) throw err;
      if (err instanceof BusError && err.code === 'BUS_NO_RESPONDERS') throw new SfError('STREAM_NOT_FOUND', `Stream ${id} not found`);
      throw new SfError('INTERNAL', `Stream ${id}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
  }

  /** A stream record whose owner no longer answers (its node died) may be taken over. */
  async function isAbandoned(r: StreamRecord): Promise<boolean> {
    try {
      await ask(r.id, { type: 'status' }, StreamCommandResult.status);
      return false;
    } catch (err) {
      return isSfError(err) && err.code === 'STREAM_NOT_FOUND';
    }
  }

  async function getStream(id: string): Promise<StreamStatus | undefined> {
    try {
      return (await ask(id, { type: 'status' }, StreamCommandResult.status)).status;
    } catch (err) {
      if (isSfError(err) && err.code === 'STREAM_NOT_FOUND') return undefined;
      throw err;
    }
  }

  async function startStream(req: StreamSpec): Promise<StreamStatus> {
    if (closing) throw new SfError('NO_CAPACITY', 'This node is shutting down');
    const existing = hosted.get(req.id);
    if (existing && !existing.isEnded()) throw new SfError('STREAM_EXISTS', `Stream ${req.id} is already running`);
    if (activeLocal() + reserved >= config.actors.maxStreams) {
      throw new SfError('NO_CAPACITY', `This node runs its maximum of ${config.actors.maxStreams} streams`);
    }
    guard.check();
    reserved++;
    let stream: HostedStream;
    try {
      const { id, ...request } = req;
      const claim = await guard.run(() => registry.claim(
        { id, owner: config.nodeId, phase: 'active', request, updatedAt: Date.now() },
        isAbandoned,
      ));
      // An ended stream of that id (here or on another node) still answers status: drop it.
      const old = hosted.get(req.id);
      if (old) remove(old);
      else if (claim.previous) await ask(req.id, { type: 'forget' }, StreamCommandResult.forget).catch(() => undefined);
      stream = new HostedStream({ deps, machine, inspection, req, epoch: claim.epoch, onEnded, onForget: remove });
      hosted.set(req.id, stream);
      stream.start();
    } finally {
      reserved--;
    }
    logger.info({ streamId: req.id, architecture: req.architecture }, 'stream starting');
    try {
      await stream.waitRunning(config.actors.startTimeoutMs);
      // Start answers once a subscriber can open the output channel (bounded by the header timeout).
      await stream.channelsOpened;
      // The spare pool fills once the node is in use (an idle node forks nothing), after this start
      // so as not to slow it: from then on a start or a crash restart skips the fork.
      procs.replenish();
    } catch (err) {
      // Nothing half-started stays behind a failed start.
      await stream.stop();
      throw err;
    }
    return stream.status();
  }

  async function listStreams(): Promise<StreamStatus[]> {
    guard.check();
    // A stream that fails to answer is left out, unless the bus is why: then the whole list fails.
    const unlessBusDown = <T>(fallback: T) => (err: unknown): T => {
      if (isSfError(err) && err.code === 'BUS_UNAVAILABLE') throw err;
      return fallback;
    };
    const ids = new Set([...(await guard.run(() => registry.streamIds()).catch(unlessBusDown([] as string[]))), ...hosted.keys()]);
    const all = await Promise.all([...ids].map((id) => getStream(id).catch(unlessBusDown(undefined))));
    return all.filter((s): s is StreamStatus => s !== undefined).sort((a, b) => a.request_id.localeCompare(b.request_id));
  }

  async function stopStream(id: string): Promise<void> {
    await ask(id, { type: 'stop' }, StreamCommandResult.stop, config.actors.stopTimeoutMs + config.bus.requestTimeoutMs);
  }

  const runtime: Runtime = {
    nodeId: config.nodeId,
    workspace: config.inference.workspace,
    startStream,
    getStream,
    listStreams,
    stopStream,
    async stopAll() {
      const active = (await listStreams()).filter((s) => !ENDED_STATES.has(s.state));
      await Promise.all(active.map((s) => stopStream(s.request_id).catch((err: unknown) => logger.warn({ err, streamId: s.request_id }, 'stop failed'))));
      return active.length;
    },
    async updatePrompts(id: string, req: UpdatePromptsRequest): Promise<UpdatePromptsResult> {
      return ask(
        id,
        { type: 'update_prompts', prompts: req.prompts, ...(req.parameters ? { parameters: req.parameters } : {}) },
        StreamCommandResult.update_prompts,
        config.actors.workerStartTimeoutMs + 2 * config.bus.requestTimeoutMs,
      );
    },
    async restartWorker(id: string) {
      await ask(id, { type: 'restart_worker' }, StreamCommandResult.restart_worker);
    },
    async switchPrompt(id: string, promptId: string) {
      return (await ask(id, { type: 'switch_prompt', promptId }, StreamCommandResult.switch_prompt)).active_prompt_id;
    },
    async workspaceInfo(id: string): Promise<WorkspaceInfo> {
      return (await ask(id, { type: 'workspace_info' }, StreamCommandResult.workspace_info)).info;
    },
    readiness() {
      const running = activeLocal();
      const reasons: string[] = [];
      if (closing) reasons.push('shutting down');
      if (bus.isClosed()) reasons.push('bus closed');
      else if (bus.connection() === 'down') reasons.push('bus unavailable (reconnecting)');
      if (running >= config.actors.maxStreams) reasons.push('no capacity');
      return { ready: reasons.length === 0, reasons, capacity: config.actors.maxStreams, running };
    },
    nodeInfo() {
      const r = runtime.readiness();
      return { node_id: config.nodeId, ...r, heartbeat_at: heartbeatAt, started_at: startedAt, bus: bus.kind };
    },
    thumbnail: (streamId, side) => thumbnails.get(streamId, side),
    onThumbnail: (l) => thumbnails.on(l),
    inspectActors(): ActorSummary[] {
      return [...hosted.values()].flatMap((s) => s.summaries());
    },
    recentInspection(filter?: { streamId?: string }): InspectionRecord[] {
      return inspection.recent(filter);
    },
    onInspection: (l) => inspection.on(l),
    onRuntimeEvent(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    processes(o?: { spares?: boolean }): ProcessInfo[] {
      return procs.list(o).map((h) => ({ procId: h.procId, key: h.key, pid: h.pid, joined: h.joined, streams: [...h.streams] }));
    },
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(heartbeatTimer);
      guard.close();
      await Promise.all([...hosted.values()].map((s) => s.stop().catch(() => undefined)));
      for (const s of [...hosted.values()]) remove(s);
      await procs.closeAll();
      await registry.removeNode(config.nodeId).catch(() => undefined);
      inspection.close();
      thumbnails.close();
      listeners.clear();
      logger.info('runtime closed');
    },
  };
  return runtime;
}
