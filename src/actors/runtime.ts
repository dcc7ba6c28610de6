// The actor runtime of one node: hosts stream actors (src/machines with the real effects of this
// folder), keeps the stream and node records on the bus KV, and serves the StreamRuntime port. Every
// StreamRuntime call about a stream goes over the bus to the stream's inbox (subjects.streamCmd), so
// any node's HTTP edge serves any stream; the node hosting it answers. In a cluster it also places
// new streams on the node with most room (its inbox, subjects.nodeCmd), takes over the streams of
// dead nodes, fences its own copies when another node took them, and hands its streams over on a
// drain; all of it reads the cluster view (cluster-view.ts).
import type { z } from 'zod';
import type { Config } from '../config.ts';
import { SfError, isSfError } from '../errors.ts';
import { rootLogger, type Logger } from '../log.ts';
import { BusError, type Bus } from '../transport/bus.ts';
import { subjects } from '../transport/subjects.ts';
import { busGuard } from './bus-guard.ts';
import {
  answer,
  NodeCommand,
  NodeCommandResult,
  StreamCommandResult,
  unwrapReply,
  type StreamCommand,
  type UpdatePromptsResult,
  type WorkspaceInfo,
} from './commands.ts';
import { CapacityMeter, type CapacityReading } from './capacity.ts';
import { createClusterView, feedClusterView, isAlive, nodeViews, orphanPlan, placementOrder, publishNodeStreams, type ClusterFeed, type NodeView } from './cluster-view.ts';
import { streamProcKey, type EffectDeps } from './deps.ts';
import { HostedStream, provideStreamMachine } from './hosted-stream.ts';
import { streamStateName, type StreamSnapshot } from '../machines/index.ts';
import { Inspection } from './inspection.ts';
import { WorkerProcesses } from './processes.ts';
import { Registry, type NodeRecord, type NodeState, type RecordAt } from './registry.ts';
import { ThumbnailStore } from './thumbnails.ts';
import { fenceVerdict, type StreamPrompt, type StreamRecord, type StreamSpec, type StreamStatus } from '../stream-spec.ts';
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
  /** Whether other live nodes have room for this node's streams (a SIGTERM then drains). */
  canHandOver(): boolean;
  /** Hands every stream of this node to other nodes (as POST /node/{id}/drain does); resolves when done. */
  drain(): Promise<void>;
  /** Resolves once a drain of this node has handed its streams over (the node should exit). */
  readonly drained: Promise<void>;
}

const ENDED_STATES = new Set(['terminated', 'failed']);

export async function createRuntime(opts: RuntimeOptions): Promise<Runtime> {
  const { config, bus } = opts;
  const me = config.nodeId;
  const logger = (opts.logger ?? rootLogger).child({ component: 'runtime', nodeId: me });
  const registry = await Registry.open(bus, config);
  const guard = busGuard(bus);
  const hosted = new Map<string, HostedStream>();
  const retention = new Map<HostedStream, NodeJS.Timeout>();
  const listeners = new Set<(e: RuntimeEvent) => void>();
  const inspection = new Inspection(config, bus, logger);
  const thumbnails = new ThumbnailStore(bus, config.dashboard.thumbnails, logger);
  const view = createClusterView();
  const meter = new CapacityMeter(config.cluster, config.actors.maxStreams);
  const leaseMs = config.cluster.leaseMs;
  // Only a bus other nodes share can carry a takeover: then every copy's output is fenced.
  const fenced = bus.kind === 'nats';
  const startedAt = Date.now();
  let heartbeatAt: number | null = null;
  let reading: CapacityReading = meter.sample([], 0, true);
  let nodeState: NodeState = 'active';
  let reserved = 0;
  let closing = false;
  /** Streams being taken over or adopted here (not yet in `hosted`). */
  const arriving = new Set<string>();
  let resolveDrained!: () => void;
  const drained = new Promise<void>((r) => (resolveDrained = r));
  let draining: Promise<void> | null = null;

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

  const liveLocal = () => [...hosted.values()].filter((s) => !s.isEnded() && !s.isAbandoned);
  const activeLocal = () => liveLocal().length;
  const capacity = () => Math.min(config.actors.maxStreams, reading.capacity);

  // ---- the node record and the streams broadcast ------------------------------------------------

  const broadcast = (): void => {
    if (bus.connection() === 'down' || bus.isClosed()) return;
    const streams = [...hosted.values()].filter((s) => !s.isAbandoned).map((s) => s.status());
    try {
      publishNodeStreams(bus, { nodeId: me, at: Date.now(), streams });
    } catch (err) {
      logger.debug({ err }, 'streams broadcast failed');
    }
  };
  let broadcastTimer: NodeJS.Timeout | undefined;
  /** A state change reaches the other nodes' views at once (coalesced over a few ms). */
  const broadcastSoon = (): void => {
    broadcastTimer ??= setTimeout(() => {
      broadcastTimer = undefined;
      broadcast();
    }, 20);
  };

  /** This node as its record says it (what it heartbeats, and what it knows of itself at any moment). */
  const selfRecord = (at: number): NodeRecord => ({
    nodeId: me,
    heartbeatAt: at,
    capacity: capacity(),
    running: activeLocal(),
    cpuCores: reading.cpuCores,
    cores: reading.cores,
    state: nodeState,
    startedAt,
  });

  const heartbeat = async () => {
    if (bus.connection() === 'down' || closing) return;
    const at = Date.now();
    const pids = procs.list({ spares: false }).map((h) => h.pid);
    const live = liveLocal();
    reading = meter.sample(pids, live.length, live.every((s) => s.state() === 'running'));
    const record = selfRecord(at);
    const written = await registry
      .heartbeat(record)
      .then(() => true)
      .catch((err: unknown) => {
        logger.debug({ err }, 'node heartbeat failed');
        return false;
      });
    if (written) {
      heartbeatAt = at;
      // This node knows itself at once; the watch delivering the same record says the watch is alive.
      view.trigger.nodeSeen({ node: record });
      const silentMs = Date.now() - Math.max(feed?.selfSeenAt() ?? 0, feedRestartedAt, startedAt);
      if (feed && silentMs > config.cluster.watchSilentMs) {
        feed.restart();
        feedRestartedAt = Date.now();
      }
    }
    broadcast();
  };
  let feed: ClusterFeed | undefined;
  let feedRestartedAt = 0;
  await heartbeat();
  feed = feedClusterView(view, registry, bus, logger, me);
  await Promise.race([feed.ready, sleep(config.bus.requestTimeoutMs)]);
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
    broadcastSoon();
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

  /** Another node owns `s` now: this copy goes, and its processes with it, without closing its channels. */
  const abandon = (s: HostedStream): void => {
    if (s.isAbandoned) return;
    s.abandon();
    if (hosted.get(s.id) === s) hosted.delete(s.id);
    const h = procs.get(streamProcKey(s.id));
    if (h) void procs.kill(h).catch((err: unknown) => logger.warn({ err }, 'fenced process not killed'));
    broadcastSoon();
  };

  /** The record first, then the change (HostedStream calls this before applying new prompts). */
  const persistFor = (id: string, epoch: number) => async (change: { prompts: StreamPrompt[]; width?: number; height?: number }): Promise<void> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const at = await guard.run(() => registry.get(id));
      if (!at || fenceVerdict(at.record, me, epoch) !== 'owned') throw new SfError('STREAM_NOT_FOUND', `Stream ${id} is run by another node now`);
      const request = { ...at.record.request, prompts: change.prompts, ...(change.width !== undefined ? { width: change.width } : {}), ...(change.height !== undefined ? { height: change.height } : {}) };
      if (await guard.run(() => registry.write(at, { request }))) return;
    }
    throw new SfError('INTERNAL', `Stream ${id}: its record kept changing; prompts not updated`);
  };

  /** Hosts a copy of the stream described by `spec` at `epoch` and starts its actor. */
  const host = (spec: StreamSpec, epoch: number, progress?: StreamRecord['progress']): HostedStream => {
    const old = hosted.get(spec.id);
    if (old) remove(old);
    const stream = new HostedStream({
      deps,
      machine,
      inspection,
      req: spec,
      epoch,
      fenced,
      ...(progress ? { progress } : {}),
      persist: persistFor(spec.id, epoch),
      onEnded,
      onForget: remove,
    });
    hosted.set(spec.id, stream);
    // Other nodes' views learn a state change at once (the figures ride on the heartbeat's broadcast).
    let lastState = '';
    stream.actor.subscribe((snap) => {
      const state = streamStateName(snap as StreamSnapshot);
      if (state === lastState) return;
      lastState = state;
      broadcastSoon();
    });
    stream.start();
    return stream;
  };

  const specOf = (r: StreamRecord): StreamSpec => ({ id: r.id, ...r.request });

  // ---- requests ---------------------------------------------------------------------------------

  /** A request to a stream's inbox, wherever it is hosted. */
  async function ask<R>(id: string, cmd: StreamCommand, schema: z.ZodType<R>, timeoutMs = config.bus.requestTimeoutMs): Promise<R> {
    let subject: string;
    try {
      subject = subjects.streamCmd(id);
    } catch {
      throw new SfError('STREAM_NOT_FOUND', `Stream ${id} not found`);
    }
    return askSubject(subject, cmd, schema, timeoutMs, () => new SfError('STREAM_NOT_FOUND', `Stream ${id} not found`));
  }

  async function askSubject<R>(subject: string, cmd: unknown, schema: z.ZodType<R>, timeoutMs: number, noOne: () => SfError): Promise<R> {
    try {
      const msg = await guard.run(() => bus.request(subject, cmd, { timeoutMs }));
      return unwrapReply(msg.json(), schema);
    } catch (err) {
      if (isSfError(err)) throw err;
      if (err instanceof BusError && err.code === 'BUS_NO_RESPONDERS') throw noOne();
      throw new SfError('INTERNAL', `${subject}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
  }

  /**
   * A stream record whose owner is gone may be taken over: this node's own record with no live copy
   * here (a restart of this node), or another node's whose heartbeat is older than the lease (by the
   * cluster view: a stream that merely does not answer for a moment, say while its node reconnects
   * to another NATS server, is not abandoned).
   */
  async function isAbandoned(r: StreamRecord): Promise<boolean> {
    if (r.owner === me) {
      const s = hosted.get(r.id);
      return !s || s.isEnded() || s.isAbandoned;
    }
    const owner = view.getSnapshot().context.nodes[r.owner];
    return !owner || !isAlive(owner, Date.now(), leaseMs);
  }

  async function getStream(id: string): Promise<StreamStatus | undefined> {
    try {
      return (await ask(id, { type: 'status' }, StreamCommandResult.status)).status;
    } catch (err) {
      // The bus itself is down: the edge says so (503), whatever the view remembers.
      if (isSfError(err) && err.code === 'BUS_UNAVAILABLE') throw err;
      const seen = lastSeenStatus(id);
      if (seen) return seen;
      if (isSfError(err) && err.code === 'STREAM_NOT_FOUND') return undefined;
      throw err;
    }
  }

  /**
   * A stream of another node that did not answer (no responder while its node moves to another NATS
   * server, or no reply because the node died or froze) but whose record is active: what its node
   * last broadcast, as `restarting` once the node's heartbeat is older than the lease.
   */
  function lastSeenStatus(id: string): StreamStatus | undefined {
    const ctx = view.getSnapshot().context;
    const at = ctx.records[id];
    const last = ctx.statuses[id];
    if (!at || at.record.phase !== 'active' || at.record.owner === me || !last || last.nodeId !== at.record.owner) return undefined;
    const owner = ctx.nodes[at.record.owner];
    const lost = !owner || !isAlive(owner, Date.now(), leaseMs);
    return lost ? { ...last.status, state: 'restarting', running: false } : last.status;
  }

  /** Runs the stream on this node (placement chose it, or a client asked this node with no cluster). */
  async function startLocal(req: StreamSpec): Promise<StreamStatus> {
    if (closing || nodeState === 'draining') throw new SfError('NO_CAPACITY', `Node ${me} is ${closing ? 'shutting down' : 'draining'}`);
    const existing = hosted.get(req.id);
    if (existing && !existing.isEnded()) throw new SfError('STREAM_EXISTS', `Stream ${req.id} is already running`);
    if (activeLocal() + reserved + arriving.size >= capacity()) {
      throw new SfError('NO_CAPACITY', `Node ${me} runs ${activeLocal()} streams, its capacity (${capacity()}: measured CPU per stream, at most ${config.actors.maxStreams})`);
    }
    guard.check();
    reserved++;
    let stream: HostedStream;
    try {
      const { id, ...request } = req;
      const claim = await guard.run(() => registry.claim({ id, owner: me, phase: 'active', request, updatedAt: Date.now() }, isAbandoned));
      // An ended stream of that id (here or on another node) still answers status: drop it.
      const old = hosted.get(req.id);
      if (old) remove(old);
      else if (claim.previous) await ask(req.id, { type: 'forget' }, StreamCommandResult.forget).catch(() => undefined);
      stream = host(req, claim.record.epoch);
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

  /** Places the stream on the node with most room (this one or another) and starts it there. */
  async function startStream(req: StreamSpec): Promise<StreamStatus> {
    if (closing) throw new SfError('NO_CAPACITY', 'This node is shutting down');
    guard.check();
    // This node is alive by its own account, whatever its last heartbeat (after a bus outage, say).
    view.trigger.nodeSeen({ node: selfRecord(Date.now()) });
    const ctx = view.getSnapshot().context;
    const rec = ctx.records[req.id]?.record;
    const recOwner = rec ? ctx.nodes[rec.owner] : undefined;
    if (rec && rec.phase === 'active' && recOwner && isAlive(recOwner, Date.now(), leaseMs)) {
      throw new SfError('STREAM_EXISTS', `Stream ${req.id} is already running (on ${rec.owner})`);
    }
    const order = placementOrder(ctx, Date.now(), leaseMs);
    // This node has not seen itself yet (its first heartbeat in flight): it may still take it.
    if (order.length === 0 && !ctx.nodes[me]) return startLocal(req);
    const refusals: string[] = [];
    for (const n of order) {
      try {
        if (n.node_id === me) return await startLocal(req);
        const r = await askSubject(
          subjects.nodeCmd(n.node_id),
          { type: 'start', spec: req } satisfies NodeCommand,
          NodeCommandResult.start,
          config.actors.startTimeoutMs + config.bus.requestTimeoutMs,
          () => new SfError('NO_CAPACITY', `Node ${n.node_id} does not answer`),
        );
        return r.status;
      } catch (err) {
        if (!(isSfError(err) && err.code === 'NO_CAPACITY')) throw err;
        refusals.push(err.message);
      }
    }
    const nodes = nodeViews(ctx, Date.now(), leaseMs);
    const why = [
      ...refusals,
      ...nodes.filter((n) => !order.some((o) => o.node_id === n.node_id)).map((n) => `${n.node_id}: ${n.state === 'active' ? `full (${n.running} of ${n.capacity})` : n.state}`),
    ];
    throw new SfError('NO_CAPACITY', `No node has room for another stream (${why.join('; ') || 'no live node'})`, { nodes: why });
  }

  // ---- takeover, fencing, hand-over -------------------------------------------------------------

  /**
   * Claims a dead node's stream and runs it here. The view only suggests it: the record and the
   * owner's heartbeat are read again directly (a watch can go silent while its server is lost, which
   * would make a live node look dead), then the record is claimed with compare-and-set on that read.
   */
  async function takeOver(seen: RecordAt): Promise<void> {
    const id = seen.record.id;
    if (arriving.has(id) || closing || nodeState === 'draining') return;
    if (activeLocal() + reserved + arriving.size >= capacity()) return;
    arriving.add(id);
    try {
      const at = await registry.get(id);
      if (!at || at.record.phase !== 'active' || at.record.owner === me) return;
      if (at.revision !== seen.revision) view.trigger.recordChanged({ at });
      const owner = await registry.node(at.record.owner);
      if (owner && isAlive(owner, Date.now(), leaseMs)) {
        view.trigger.nodeSeen({ node: owner });
        return;
      }
      // A stale heartbeat may only mean its writes failed for a while (the KV's leader moving after a
      // NATS server loss): a node that answers is alive. A dead node has no responder; a frozen one
      // does not answer in time.
      if (await answers(at.record.owner)) {
        if (owner) view.trigger.nodeSeen({ node: { ...owner, heartbeatAt: Date.now() } });
        return;
      }
      const won = await registry.write(at, { owner: me, epoch: at.record.epoch + 1 });
      if (!won) return;
      logger.warn({ streamId: id, from: at.record.owner, epoch: won.record.epoch }, 'took over the stream of a dead node');
      const s = host(specOf(won.record), won.record.epoch, won.record.progress);
      await s.waitRunning(config.actors.startTimeoutMs).catch((err: unknown) => logger.warn({ err, streamId: id }, 'taken-over stream did not start'));
    } catch (err) {
      logger.warn({ err, streamId: id }, 'takeover failed');
    } finally {
      arriving.delete(id);
    }
  }

  async function answers(nodeId: string): Promise<boolean> {
    try {
      await askSubject(subjects.nodeCmd(nodeId), { type: 'ping' } satisfies NodeCommand, NodeCommandResult.ping, config.cluster.pingTimeoutMs, () =>
        new SfError('NODE_NOT_FOUND', `Node ${nodeId} not found`),
      );
      return true;
    } catch {
      return false;
    }
  }

  /** Every check interval: streams of dead nodes to take over, and copies here another node owns. */
  const orphanSeen = new Map<string, number>();
  const rereading = new Set<string>();
  const check = (): void => {
    if (closing || bus.connection() === 'down') return;
    const ctx = view.getSnapshot().context;
    const now = Date.now();
    for (const s of hosted.values()) {
      const at = ctx.records[s.id];
      if (at && !s.isEnded() && fenceVerdict(at.record, me, s.epoch) === 'lost') abandon(s);
    }
    if (nodeState === 'draining') return;
    const live = new Set<string>();
    const plan = orphanPlan(ctx, now, leaseMs);
    // An owner that looks dead is read again directly: a silent watch must not make it so.
    for (const owner of new Set(plan.map((o) => o.at.record.owner))) {
      if (owner === me || rereading.has(owner)) continue;
      rereading.add(owner);
      void registry
        .node(owner)
        .then((n) => void (n && view.trigger.nodeSeen({ node: n })))
        .catch(() => undefined)
        .finally(() => rereading.delete(owner));
    }
    for (const o of plan) {
      const id = o.at.record.id;
      live.add(id);
      if (o.at.record.owner === me) continue;
      const first = orphanSeen.get(id) ?? now;
      orphanSeen.set(id, first);
      // The node the plan picks claims at once; the others back it up if it has not after a while.
      if (o.to === me || now - first >= config.cluster.failoverBackupMs) void takeOver(o.at);
    }
    for (const id of orphanSeen.keys()) if (!live.has(id)) orphanSeen.delete(id);
  };
  const checkTimer = setInterval(check, config.cluster.checkIntervalMs);
  checkTimer.unref();
  // A record that moves on fences the copy here at once (not only at the next check).
  const viewSub = view.subscribe((snap) => {
    for (const s of hosted.values()) {
      const at = snap.context.records[s.id];
      if (at && !s.isEnded() && fenceVerdict(at.record, me, s.epoch) === 'lost') abandon(s);
    }
  });

  /** Where each stream's output got to goes into its record now and then (a takeover resumes after it). */
  const progressTimer = setInterval(() => {
    if (!fenced || closing || bus.connection() === 'down') return;
    const ctx = view.getSnapshot().context;
    for (const s of hosted.values()) {
      const at = ctx.records[s.id];
      const p = s.progress();
      if (!at || !p || s.isEnding() || fenceVerdict(at.record, me, s.epoch) !== 'owned' || at.record.progress?.lastOutputPts === p.lastOutputPts) continue;
      void registry.write(at, { progress: p }).catch((err: unknown) => logger.debug({ err, streamId: s.id }, 'progress not written'));
    }
  }, config.cluster.progressIntervalMs);
  progressTimer.unref();

  /** A copy of a stream ahead of its hand-over: runs here at the next epoch, output held until the record names this node. */
  async function adopt(id: string): Promise<number> {
    if (closing || nodeState === 'draining') throw new SfError('NO_CAPACITY', `Node ${me} is ${closing ? 'shutting down' : 'draining'}`);
    if (activeLocal() + reserved + arriving.size >= capacity()) throw new SfError('NO_CAPACITY', `Node ${me} is full`);
    const at = await guard.run(() => registry.get(id));
    if (!at || at.record.phase !== 'active') throw new SfError('STREAM_NOT_FOUND', `Stream ${id} not found`);
    arriving.add(id);
    try {
      const epoch = at.record.epoch + 1;
      const s = host(specOf(at.record), epoch, at.record.progress);
      try {
        await s.waitRunning(config.actors.startTimeoutMs);
      } catch (err) {
        abandon(s);
        throw err;
      }
      // Not handed over in time (the old owner died meanwhile, or gave up): this copy goes.
      setTimeout(() => {
        const cur = view.getSnapshot().context.records[id];
        if (hosted.get(id) === s && (!cur || fenceVerdict(cur.record, me, epoch) === 'waiting')) abandon(s);
      }, config.cluster.handoverTimeoutMs).unref();
      return epoch;
    } finally {
      arriving.delete(id);
    }
  }

  /** Hands one stream to another node: its copy there runs first, then the record names it (which stops ours). */
  async function handOver(s: HostedStream): Promise<boolean> {
    const ctx = view.getSnapshot().context;
    for (const n of placementOrder(ctx, Date.now(), leaseMs, { exclude: new Set([me]) })) {
      try {
        const { epoch } = await askSubject(
          subjects.nodeCmd(n.node_id),
          { type: 'adopt', id: s.id } satisfies NodeCommand,
          NodeCommandResult.adopt,
          config.cluster.handoverTimeoutMs,
          () => new SfError('NO_CAPACITY', `Node ${n.node_id} does not answer`),
        );
        for (let attempt = 0; attempt < 5; attempt++) {
          const at = await registry.get(s.id);
          if (!at || fenceVerdict(at.record, me, s.epoch) !== 'owned' || epoch !== at.record.epoch + 1) return false;
          const p = s.progress() ?? at.record.progress;
          if (await registry.write(at, { owner: n.node_id, epoch, ...(p ? { progress: p } : {}) })) {
            logger.info({ streamId: s.id, to: n.node_id, epoch }, 'stream handed over');
            abandon(s);
            return true;
          }
        }
        return false;
      } catch (err) {
        logger.warn({ err, streamId: s.id, to: n.node_id }, 'hand-over refused; trying the next node');
      }
    }
    return false;
  }

  function drain(): Promise<void> {
    draining ??= (async () => {
      nodeState = 'draining';
      await heartbeat();
      logger.info({ streams: activeLocal() }, 'draining: handing every stream to other nodes');
      const streams = [...hosted.values()].filter((s) => !s.isEnding() && !s.isAbandoned);
      const results = await Promise.all(streams.map((s) => handOver(s).catch(() => false)));
      const kept = results.filter((ok) => !ok).length;
      if (kept > 0) logger.warn({ kept }, 'drained, except streams no other node took');
      resolveDrained();
    })();
    return draining;
  }

  // The node's inbox: placement, hand-over and drain requests from other nodes' edges.
  const inbox = bus.subscribe(subjects.nodeCmd(me));
  void (async () => {
    try {
      for await (const m of inbox) {
        void answer(m, NodeCommand, 'node command', async (cmd): Promise<Record<string, unknown>> => {
          if (cmd.type === 'start') return { status: await startLocal(cmd.spec) };
          if (cmd.type === 'adopt') return { epoch: await adopt(cmd.id) };
          if (cmd.type === 'ping') return { nodeId: me };
          const streams = activeLocal();
          void drain();
          return { streams };
        });
      }
    } catch (err) {
      logger.debug({ err }, 'node inbox ended');
    }
  })();

  // ---- lists (from the view: no round trip) ---------------------------------------------------

  async function listStreams(): Promise<StreamStatus[]> {
    guard.check();
    const ctx = view.getSnapshot().context;
    const out = new Map<string, StreamStatus>();
    for (const [id, st] of Object.entries(ctx.statuses)) {
      const at = ctx.records[id];
      // A broadcast of a copy the record no longer names is stale.
      if (at && at.record.owner !== st.nodeId) continue;
      out.set(id, st.status);
    }
    for (const s of hosted.values()) if (!s.isAbandoned) out.set(s.id, s.status());
    // A record whose node has not broadcast it yet (a start in flight elsewhere) asks once.
    const missing = Object.values(ctx.records).filter((at) => at.record.phase === 'active' && !out.has(at.record.id));
    const asked = await Promise.all(missing.map((at) => getStream(at.record.id).catch(() => undefined)));
    for (const st of asked) if (st) out.set(st.request_id, st);
    return [...out.values()].sort((a, b) => a.request_id.localeCompare(b.request_id));
  }

  async function stopStream(id: string): Promise<void> {
    await ask(id, { type: 'stop' }, StreamCommandResult.stop, config.actors.stopTimeoutMs + config.bus.requestTimeoutMs);
  }

  const runtime: Runtime = {
    nodeId: me,
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
      if (nodeState === 'draining') reasons.push('draining');
      if (bus.isClosed()) reasons.push('bus closed');
      else if (bus.connection() === 'down') reasons.push('bus unavailable (reconnecting)');
      if (running >= capacity()) reasons.push('no capacity');
      return { ready: reasons.length === 0, reasons, capacity: capacity(), running };
    },
    nodeInfo() {
      const r = runtime.readiness();
      return { node_id: me, ...r, heartbeat_at: heartbeatAt, started_at: startedAt, bus: bus.kind };
    },
    nodes(): NodeView[] {
      return nodeViews(view.getSnapshot().context, Date.now(), leaseMs);
    },
    async drainNode(nodeId: string) {
      if (nodeId === me) {
        const streams = activeLocal();
        void drain();
        return { streams };
      }
      return askSubject(subjects.nodeCmd(nodeId), { type: 'drain' } satisfies NodeCommand, NodeCommandResult.drain, config.bus.requestTimeoutMs, () =>
        new SfError('NODE_NOT_FOUND', `Node ${nodeId} not found`),
      );
    },
    canHandOver() {
      const ctx = view.getSnapshot().context;
      const free = placementOrder(ctx, Date.now(), leaseMs, { exclude: new Set([me]) }).reduce((a, n) => a + n.free, 0);
      return activeLocal() > 0 && free >= activeLocal();
    },
    drain,
    drained,
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
      clearInterval(checkTimer);
      clearInterval(progressTimer);
      if (broadcastTimer) clearTimeout(broadcastTimer);
      viewSub.unsubscribe();
      inbox.unsubscribe();
      feed?.stop();
      guard.close();
      await Promise.all([...hosted.values()].map((s) => s.stop().catch(() => undefined)));
      for (const s of [...hosted.values()]) remove(s);
      await procs.closeAll();
      await registry.removeNode(me).catch(() => undefined);
      inspection.close();
      thumbnails.close();
      listeners.clear();
      logger.info('runtime closed');
    },
  };
  return runtime;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
