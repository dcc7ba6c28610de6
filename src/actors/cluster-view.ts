// What this node knows of the cluster: every node (capacity, load, heartbeat) and every stream
// record, kept in one @xstate/store fed by the KV watches of the two buckets, plus each node's latest
// broadcast of its streams' status. Placement, failover, GET /nodes and GET /streams read it; nothing
// here does a bus round trip. It is state, not a lifecycle: a store, not a machine.
import { createStore } from '@xstate/store';
import type { Logger } from '../log.ts';
import type { Bus, KvChange, KvWatcher } from '../transport/bus.ts';
import { subjectPatterns, subjects } from '../transport/subjects.ts';
import { z } from 'zod';
import { StreamRecord, StreamStatus } from '../stream-spec.ts';
import { NodeRecord, type RecordAt, type Registry } from './registry.ts';

/** A node's broadcast of the streams it runs (subjects.nodeStreams). */
export const NodeStreams = z.object({ nodeId: z.string(), at: z.number(), streams: z.array(StreamStatus) });
export type NodeStreams = z.infer<typeof NodeStreams>;

export interface ClusterContext {
  nodes: Record<string, NodeRecord>;
  records: Record<string, RecordAt>;
  /** The latest status of each stream as its node broadcast it. */
  statuses: Record<string, { nodeId: string; at: number; status: StreamStatus }>;
}

export function createClusterView() {
  return createStore({
    context: { nodes: {}, records: {}, statuses: {} } as ClusterContext,
    on: {
      nodeSeen: (ctx, e: { node: NodeRecord }) => {
        const cur = ctx.nodes[e.node.nodeId];
        // This node's own record is fed at once as well as by the watch: keep the newer.
        if (cur && cur.heartbeatAt > e.node.heartbeatAt) return ctx;
        return { ...ctx, nodes: { ...ctx.nodes, [e.node.nodeId]: e.node } };
      },
      nodeLost: (ctx, e: { nodeId: string }) => {
        const { [e.nodeId]: _gone, ...nodes } = ctx.nodes;
        return { ...ctx, nodes };
      },
      recordChanged: (ctx, e: { at: RecordAt }) => {
        const cur = ctx.records[e.at.record.id];
        // Watches deliver in order; a get() answered late must not put an older revision back.
        if (cur && cur.revision > e.at.revision) return ctx;
        return { ...ctx, records: { ...ctx.records, [e.at.record.id]: e.at } };
      },
      recordRemoved: (ctx, e: { id: string }) => {
        const { [e.id]: _gone, ...records } = ctx.records;
        const { [e.id]: _status, ...statuses } = ctx.statuses;
        return { ...ctx, records, statuses };
      },
      streamsSeen: (ctx, e: { report: NodeStreams }) => {
        const statuses = { ...ctx.statuses };
        for (const [id, s] of Object.entries(statuses)) if (s.nodeId === e.report.nodeId && s.at < e.report.at) delete statuses[id];
        for (const status of e.report.streams) {
          const cur = statuses[status.request_id];
          if (!cur || cur.at <= e.report.at) statuses[status.request_id] = { nodeId: e.report.nodeId, at: e.report.at, status };
        }
        return { ...ctx, statuses };
      },
    },
  });
}
export type ClusterView = ReturnType<typeof createClusterView>;

/** A node as GET /nodes shows it. */
export const NodeView = z.object({
  node_id: z.string(),
  /** `lost`: its heartbeat is older than the lease (its streams are taken over). */
  state: z.enum(['active', 'draining', 'lost']),
  /** Streams it measures it can carry (CPU per stream against its cores, memory), at most --max-streams. */
  capacity: z.number().int(),
  /** Active streams it owns (by the records). */
  running: z.number().int(),
  free: z.number().int(),
  /** Cores its worker processes used over its last heartbeat interval, of `cores`. */
  cpu_cores: z.number(),
  cores: z.number().int(),
  heartbeat_age_ms: z.number(),
  started_at: z.number(),
});
export type NodeView = z.infer<typeof NodeView>;

/** Active streams each node owns, by the records (written before a start answers). */
export function ownedCounts(ctx: ClusterContext): Map<string, number> {
  const n = new Map<string, number>();
  for (const { record } of Object.values(ctx.records)) if (record.phase === 'active') n.set(record.owner, (n.get(record.owner) ?? 0) + 1);
  return n;
}

export function isAlive(node: NodeRecord, now: number, leaseMs: number): boolean {
  return now - node.heartbeatAt <= leaseMs;
}

export function nodeViews(ctx: ClusterContext, now: number, leaseMs: number): NodeView[] {
  const owned = ownedCounts(ctx);
  return Object.values(ctx.nodes)
    .map((n) => {
      const running = owned.get(n.nodeId) ?? 0;
      return {
        node_id: n.nodeId,
        state: isAlive(n, now, leaseMs) ? n.state : ('lost' as const),
        capacity: n.capacity,
        running,
        free: Math.max(0, n.capacity - running),
        cpu_cores: n.cpuCores,
        cores: n.cores,
        heartbeat_age_ms: Math.max(0, now - n.heartbeatAt),
        started_at: n.startedAt,
      };
    })
    .sort((a, b) => a.node_id.localeCompare(b.node_id));
}

/**
 * Nodes that may take one more stream, best first: alive, not draining, with room, ordered by the
 * share of their capacity they would use with it (so streams spread in proportion to capacity),
 * then by node id (every node computes the same order from the same view). `pending`: streams
 * already promised to a node on top of what its records say (a plan placing several at once).
 */
export function placementOrder(
  ctx: ClusterContext,
  now: number,
  leaseMs: number,
  o: { exclude?: ReadonlySet<string>; pending?: ReadonlyMap<string, number> } = {},
): NodeView[] {
  return nodeViews(ctx, now, leaseMs)
    .map((n) => {
      const running = n.running + (o.pending?.get(n.node_id) ?? 0);
      return { ...n, running, free: Math.max(0, n.capacity - running) };
    })
    .filter((n) => n.state === 'active' && n.free > 0 && !o.exclude?.has(n.node_id))
    .sort((a, b) => (a.running + 1) / a.capacity - (b.running + 1) / b.capacity || a.node_id.localeCompare(b.node_id));
}

export interface ClusterFeed {
  /** Settles once both watches delivered their current values (or failed to open once). */
  ready: Promise<void>;
  /** When the nodes watch last delivered `selfId`'s own record (ms since the epoch; 0 before). */
  selfSeenAt(): number;
  /** Reopens both watches (they replay the current values): for a watch that went silent. */
  restart(): void;
  stop(): void;
}

/**
 * Feeds `view` from the registry's watches and the nodes' stream broadcasts until `stop()`. A watch
 * that ends while the bus is open (a reconnect) starts again, replaying the current values first.
 */
export function feedClusterView(view: ClusterView, registry: Registry, bus: Bus, log: Logger, selfId: string): ClusterFeed {
  let stopped = false;
  let selfSeen = 0;
  const watchers = new Set<KvWatcher>();
  const follow = async (open: () => Promise<KvWatcher>, apply: (c: KvChange) => void, onFirst: () => void): Promise<void> => {
    let first = true;
    while (!stopped && !bus.isClosed()) {
      let w: KvWatcher;
      try {
        w = await open();
      } catch (err) {
        log.debug({ err }, 'cluster watch not opened; retrying');
        if (first) onFirst();
        first = false;
        await new Promise((r) => setTimeout(r, 500).unref());
        continue;
      }
      watchers.add(w);
      if (first) {
        // The initial values arrive at once; the view is ready after a short settle.
        setTimeout(onFirst, 50).unref();
        first = false;
      }
      try {
        for await (const c of w) {
          try {
            apply(c);
          } catch (err) {
            log.debug({ err, key: c.key }, 'cluster record ignored');
          }
        }
      } catch (err) {
        log.debug({ err }, 'cluster watch ended');
      }
      watchers.delete(w);
      if (!stopped) await new Promise((r) => setTimeout(r, 200).unref());
    }
  };
  let nodesReady!: () => void;
  let streamsReady!: () => void;
  const ready = Promise.all([new Promise<void>((r) => (nodesReady = r)), new Promise<void>((r) => (streamsReady = r))]).then(() => undefined);
  void follow(
    () => registry.watchNodes(),
    (c) => {
      if (c.operation === 'DEL') view.trigger.nodeLost({ nodeId: c.key });
      else view.trigger.nodeSeen({ node: NodeRecord.parse(c.json()) });
      if (c.key === selfId) selfSeen = Date.now();
    },
    () => nodesReady(),
  );
  void follow(
    () => registry.watchStreams(),
    (c) => {
      if (c.operation === 'DEL') view.trigger.recordRemoved({ id: c.key });
      else view.trigger.recordChanged({ at: { record: StreamRecord.parse(c.json()), revision: c.revision } });
    },
    () => streamsReady(),
  );
  const sub = bus.subscribe(subjectPatterns.allNodeStreams);
  void (async () => {
    try {
      for await (const m of sub) {
        const r = NodeStreams.safeParse(m.json());
        if (r.success) view.trigger.streamsSeen({ report: r.data });
      }
    } catch (err) {
      log.debug({ err }, 'node streams subscription ended');
    }
  })();
  return {
    ready,
    selfSeenAt: () => selfSeen,
    restart() {
      log.warn('cluster watches silent: reopening them');
      for (const w of watchers) w.stop();
    },
    stop() {
      stopped = true;
      sub.unsubscribe();
      for (const w of watchers) w.stop();
    },
  };
}

/** Publishes this node's streams (its broadcast for every other node's view). */
export function publishNodeStreams(bus: Bus, report: NodeStreams): void {
  bus.publish(subjects.nodeStreams(report.nodeId), report);
}

/** A stream whose owner is dead, with the node placement gives it (every node computes the same plan). */
export interface Orphan {
  at: RecordAt;
  /** The node that should take it over first (undefined: no node has room). */
  to: string | undefined;
  /** Since when its owner counts as dead (ms since the epoch). */
  deadSince: number;
}

export function orphanPlan(ctx: ClusterContext, now: number, leaseMs: number): Orphan[] {
  const orphans: Array<{ at: RecordAt; deadSince: number }> = [];
  for (const at of Object.values(ctx.records)) {
    const r = at.record;
    if (r.phase !== 'active') continue;
    const owner = ctx.nodes[r.owner];
    // An owner with no node record at all left it (or never wrote one): dead once the record is a lease old.
    const lastSign = owner ? owner.heartbeatAt : r.updatedAt;
    if (now - lastSign <= leaseMs) continue;
    orphans.push({ at, deadSince: lastSign + leaseMs });
  }
  orphans.sort((a, b) => a.at.record.id.localeCompare(b.at.record.id));
  // Place them one by one on the view, as if each placed one were already running there.
  const pending = new Map<string, number>();
  return orphans.map((o) => {
    const to = placementOrder(ctx, now, leaseMs, { pending })[0]?.node_id;
    if (to) pending.set(to, (pending.get(to) ?? 0) + 1);
    return { ...o, to };
  });
}
