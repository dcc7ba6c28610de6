// The cluster's records on the bus KV. One per stream: its desired state (the spec with its prompts
// as last updated), owner node and epoch, and where its output got to; written with compare-and-set
// on the record's revision, so one id runs once and a stale owner is fenced. One per node: its
// heartbeat, measured capacity and load.
import { z } from 'zod';
import type { Config } from '../config.ts';
import { SfError } from '../errors.ts';
import { KvRevisionMismatchError, type Bus, type KeyValue, type KvWatcher } from '../transport/bus.ts';
import { StreamRecord } from '../stream-spec.ts';

/** A record with the revision it was read at (what a compare-and-set write must name). */
export interface RecordAt {
  record: StreamRecord;
  revision: number;
}

export const NodeState = z.enum(['active', 'draining']);
export type NodeState = z.infer<typeof NodeState>;

export const NodeRecord = z.object({
  nodeId: z.string(),
  heartbeatAt: z.number(),
  /** Streams this node measures it can carry in all (actors/capacity.ts), at most actors.maxStreams. */
  capacity: z.number().int(),
  /** Streams it runs now. */
  running: z.number().int(),
  /** Cores its worker processes used over the last heartbeat interval, and the machine's cores. */
  cpuCores: z.number(),
  cores: z.number().int(),
  state: NodeState,
  startedAt: z.number(),
});
export type NodeRecord = z.infer<typeof NodeRecord>;

export class Registry {
  private constructor(
    private readonly streams: KeyValue,
    private readonly nodes: KeyValue,
  ) {}

  static async open(bus: Bus, config: Readonly<Config>): Promise<Registry> {
    const [streams, nodes] = await Promise.all([bus.kv(config.bus.streamsBucket), bus.kv(config.bus.nodesBucket)]);
    return new Registry(streams, nodes);
  }

  /**
   * Claims `record.id` for this node. An id held by a live stream answers STREAM_EXISTS; an ended one,
   * or one whose owner no longer answers (`isAbandoned`), is taken over with compare-and-set on its
   * revision, so of two nodes racing for it exactly one wins.
   */
  async claim(record: Omit<StreamRecord, 'epoch'>, isAbandoned: (r: StreamRecord) => Promise<boolean>): Promise<RecordAt & { previous?: StreamRecord }> {
    try {
      const created = { ...record, epoch: 1 };
      return { record: created, revision: await this.streams.create(record.id, created) };
    } catch (err) {
      if (!(err instanceof KvRevisionMismatchError)) throw err;
    }
    const cur = await this.get(record.id);
    if (!cur) return this.claim(record, isAbandoned);
    const prev = cur.record;
    if (prev.phase === 'active' && !(await isAbandoned(prev))) {
      throw new SfError('STREAM_EXISTS', `Stream ${record.id} is already running`);
    }
    const next = { ...record, epoch: prev.epoch + 1 };
    try {
      return { record: next, revision: await this.streams.update(record.id, next, cur.revision), previous: prev };
    } catch (err) {
      if (err instanceof KvRevisionMismatchError) throw new SfError('STREAM_EXISTS', `Stream ${record.id} is already running`);
      throw err;
    }
  }

  /** The record of `id` with its revision; null when there is none (or it does not parse). */
  async get(id: string): Promise<RecordAt | null> {
    const cur = await this.streams.get(id);
    if (!cur) return null;
    const r = StreamRecord.safeParse(cur.json());
    return r.success ? { record: r.data, revision: cur.revision } : null;
  }

  /**
   * Writes `change` of the record read at `at`, only if nobody wrote it since (compare-and-set).
   * Returns the new revision, or null when the record moved on (another write won).
   */
  async write(at: RecordAt, change: Partial<StreamRecord>): Promise<RecordAt | null> {
    const record = { ...at.record, ...change, updatedAt: Date.now() };
    try {
      return { record, revision: await this.streams.update(record.id, record, at.revision) };
    } catch (err) {
      if (err instanceof KvRevisionMismatchError) return null;
      throw err;
    }
  }

  /** Marks the stream ended, unless another claim (a newer epoch) owns the key by now. */
  async markEnded(id: string, epoch: number): Promise<void> {
    const cur = await this.get(id);
    if (!cur || cur.record.epoch !== epoch) return;
    await this.write(cur, { phase: 'ended' });
  }

  /** Deletes the record if it is still this epoch's. */
  async remove(id: string, epoch: number): Promise<void> {
    const cur = await this.get(id);
    if (!cur || cur.record.epoch !== epoch) return;
    await this.streams.delete(id);
  }

  async streamIds(): Promise<string[]> {
    return this.streams.keys();
  }

  /** A node's record read directly (not through a watch); null when there is none. */
  async node(nodeId: string): Promise<NodeRecord | null> {
    const cur = await this.nodes.get(nodeId);
    if (!cur) return null;
    const r = NodeRecord.safeParse(cur.json());
    return r.success ? r.data : null;
  }

  async heartbeat(n: NodeRecord): Promise<void> {
    await this.nodes.put(n.nodeId, n);
  }

  async removeNode(nodeId: string): Promise<void> {
    await this.nodes.delete(nodeId);
  }

  watchStreams(): Promise<KvWatcher> {
    return this.streams.watch();
  }

  watchNodes(): Promise<KvWatcher> {
    return this.nodes.watch();
  }
}
