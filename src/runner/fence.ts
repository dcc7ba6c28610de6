// The output fence of one stream in a cluster: the worker process watches the stream's record on the
// bus KV itself and writes output only while the record names its copy (owner and epoch). A copy
// started ahead of a hand-over waits until the record names it; a copy whose record moved on (another
// node took the stream over while this one's node was paused or cut off) stops writing at once, even
// if its own node cannot tell it to.
import type { Logger } from '../log.ts';
import type { Bus, KvWatcher } from '../transport/bus.ts';
import { fenceVerdict, StreamRecord } from '../stream-spec.ts';

export class OutputFence {
  private watcher: KvWatcher | null = null;
  private stopped = false;
  private state: 'waiting' | 'owned' | 'lost' = 'waiting';
  private resolveOpened!: () => void;
  /** Resolves once the record names this copy; never if it is lost first. */
  readonly opened = new Promise<void>((r) => (this.resolveOpened = r));

  constructor(
    private readonly bus: Bus,
    private readonly bucket: string,
    private readonly streamId: string,
    private readonly owner: string,
    private readonly epoch: number,
    private readonly onLost: () => void,
    private readonly log: Logger,
  ) {}

  get isOwned(): boolean {
    return this.state === 'owned';
  }

  async start(): Promise<void> {
    try {
      const kv = await this.bus.kv(this.bucket);
      if (this.stopped) return;
      this.watcher = await kv.watch({ key: this.streamId });
    } catch (err) {
      // No bus: nothing can take the stream over either; write as the node asked.
      this.log.warn({ err }, 'stream record not watched; output unfenced');
      this.settle('owned');
      return;
    }
    void this.follow(this.watcher);
  }

  private async follow(w: KvWatcher): Promise<void> {
    try {
      for await (const c of w) {
        // Only this stream's record counts (a watch recreated across a server loss has been seen to
        // deliver other keys of the bucket).
        if (c.operation === 'DEL' || c.key !== this.streamId) continue;
        const r = StreamRecord.safeParse(c.json());
        if (!r.success || r.data.id !== this.streamId) continue;
        this.settle(fenceVerdict(r.data, this.owner, this.epoch), { owner: r.data.owner, epoch: r.data.epoch, revision: c.revision });
        if (this.state === 'lost') break;
      }
    } catch (err) {
      this.log.debug({ err }, 'stream record watch ended');
    }
  }

  private settle(verdict: 'waiting' | 'owned' | 'lost', seen?: { owner: string; epoch: number; revision: number }): void {
    if (this.state === 'lost' || verdict === this.state) return;
    if (verdict === 'owned') {
      this.state = 'owned';
      this.resolveOpened();
    } else if (verdict === 'lost') {
      this.state = 'lost';
      this.log.warn({ owner: this.owner, epoch: this.epoch, record: seen }, 'the stream is owned elsewhere now: output stops');
      this.stop();
      this.onLost();
    }
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.stop();
  }
}
