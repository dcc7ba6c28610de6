// The cluster's records on the bus KV: one per stream (its request, owner node and epoch) created
// with compare-and-set so one id runs once, and one per node (heartbeat and capacity).
import { z } from 'zod';
import type { Config } from '../config.ts';
import { SfError } from '../errors.ts';
import { KvRevisionMismatchError, type Bus, type KeyValue } from '../transport/bus.ts';
import { StreamRecordSpec } from '../stream-spec.ts';

export const StreamRecord = z.object({
  id: z.string(),
  owner: z.string(),
  epoch: z.number().int(),
  phase: z.enum(['active', 'ended']),
  request: StreamRecordSpec,
  updatedAt: z.number(),
});
export type StreamRecord = z.infer<typeof StreamRecord>;

export const NodeRecord = z.object({
  nodeId: z.string(),
  heartbeatAt: z.number(),
  capacity: z.number().int(),
  running: z.number().int(),
  startedAt: z.number(),
});
export type NodeRecord = z.infer<typeof NodeRecord>;

export class Registry {
  private constructor(
    private readonly streams: KeyValue,
    private readonly nodes: KeyValue,
    private readonly config: Readonly<Config>,
  ) {}

  static async open(bus: Bus, config: Readonly<Config>): Promise<Registry> {
    const [streams, nodes] = await Promise.all([bus.kv(config.bus.streamsBucket), bus.kv(config.bus.nodesBucket)]);
    return new Registry(streams, nodes, config);
  }

  /**
   * Claims `record.id` for this node. An id held by a live stream answers STREAM_EXISTS; an ended one,
   * or one whose owner no longer answers (`isAbandoned`), is taken over with compare-and-set on its
   * revision, so of two nodes racing for it exactly one wins. Returns the record's revision.
   */
  async claim(record: Omit<StreamRecord, 'epoch'>, isAbandoned: (r: StreamRecord) => Promise<boolean>): Promise<{ revision: number; epoch: number; previous?: StreamRecord }> {
    try {
      return { revision: await this.streams.create(record.id, { ...record, epoch: 1 }), epoch: 1 };
    } catch (err) {
      if (!(err instanceof KvRevisionMismatchError)) throw err;
    }
    const cur = await this.streams.get(record.id);
    if (!cur) return this.claim(record, isAbandoned);
    const prev = StreamRecord.safeParse(cur.json());
    if (prev.success && prev.data.phase === 'active' && !(await isAbandoned(prev.data))) {
      throw new SfError('STREAM_EXISTS', `Stream ${record.id} is already running`);
    }
    const epoch = (prev.success ? prev.data.epoch : 0) + 1;
    try {
      const revision = await this.streams.update(record.id, { ...record, epoch }, cur.revision);
      return { revision, epoch, ...(prev.success ? { previous: prev.data } : {}) };
    } catch (err) {
      if (err instanceof KvRevisionMismatchError) throw new SfError('STREAM_EXISTS', `Stream ${record.id} is already running`);
      throw err;
    }
  }

  /** Marks the stream ended, unless another claim (a newer epoch) owns the key by now. */
  async markEnded(id: string, epoch: number): Promise<void> {
    const cur = await this.streams.get(id);
    if (!cur) return;
    const r = StreamRecord.safeParse(cur.json());
    if (!r.success || r.data.epoch !== epoch) return;
    await this.streams.update(id, { ...r.data, phase: 'ended', updatedAt: Date.now() }, cur.revision).catch(() => undefined);
  }

  /** Deletes the record if it is still this epoch's. */
  async remove(id: string, epoch: number): Promise<void> {
    const cur = await this.streams.get(id);
    if (!cur) return;
    const r = StreamRecord.safeParse(cur.json());
    if (r.success && r.data.epoch !== epoch) return;
    await this.streams.delete(id);
  }

  async streamIds(): Promise<string[]> {
    return this.streams.keys();
  }

  async heartbeat(n: NodeRecord): Promise<void> {
    await this.nodes.put(n.nodeId, n);
  }

  async removeNode(nodeId: string): Promise<void> {
    await this.nodes.delete(nodeId);
  }
}
