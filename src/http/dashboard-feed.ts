// The dashboard's live feed (GET /dashboard/feed, SSE): everything the page shows about nodes and
// streams, pushed as it changes. It is made from what the runtime already reports:
//   stats      each worker heartbeat's window (fps in/out, latency p50/p99 of the frames output in
//              the window: the samples /metrics puts in sf_frame_latency_seconds), drops by reason
//   streams    the stream list (state, pids, restarts, prompt ids) every dashboard.feedIntervalMs and
//              at once when an actor changes state
//   thumbnail  a new thumbnail arrived (the page then loads /stream/{id}/thumbnail/{side})
//   node       this node (id, capacity, load, heartbeat)
// Stats samples are kept per stream (dashboard.historySamples) so a page opened late still draws the
// last minutes; drops are summed per reason since the edge started. Memory is bounded by
// maxStreamsTracked x historySamples; clients by maxFeedClients; a client that stops reading is
// dropped past maxFeedBufferBytes.
import type { ServerResponse } from 'node:http';
import type { NodeSummary, RuntimeEvent, StreamRuntime, Thumbnail } from '../actors/types.ts';
import type { StreamStatus } from '../stream-spec.ts';
import type { DashboardConfig } from '../config.ts';
import type { Logger } from '../log.ts';

export interface StatsSample {
  /** ms since the epoch */
  t: number;
  fps_in: number;
  fps_out: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
}

interface Tracked {
  history: StatsSample[];
  /** Drops by reason, summed over every heartbeat this edge saw. */
  drops: Record<string, number>;
  frameCount: number;
}

export interface StreamView extends StreamStatus {
  drops_by_reason: Record<string, number>;
  thumbnails: { input: { seq: number; at: number } | null; output: { seq: number; at: number } | null };
}

const KEEPALIVE_MS = 15_000;
/** A state change is announced after this pause, so a burst of transitions makes one list. */
const STATE_DEBOUNCE_MS = 50;

export class DashboardFeed {
  private readonly tracked = new Map<string, Tracked>();
  private readonly clients = new Set<ServerResponse>();
  private readonly offs: Array<() => void> = [];
  private tick: NodeJS.Timeout | null = null;
  private keepalive: NodeJS.Timeout | null = null;
  private stateTimer: NodeJS.Timeout | null = null;
  private listing = false;
  private closed = false;

  constructor(
    private readonly runtime: StreamRuntime,
    private readonly cfg: Readonly<DashboardConfig>,
    private readonly log: Logger,
    /** The node's own trickle server, if it has one (the start form's default channel URLs). */
    private readonly trickleUrl: string | null = null,
  ) {
    this.offs.push(runtime.onRuntimeEvent((e) => this.onRuntimeEvent(e)));
    this.offs.push(runtime.onThumbnail((t) => this.onThumbnail(t)));
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Stats samples kept for a stream (oldest first). */
  history(streamId: string): StatsSample[] {
    return this.tracked.get(streamId)?.history ?? [];
  }

  private track(id: string): Tracked {
    let t = this.tracked.get(id);
    if (t) this.tracked.delete(id);
    else t = { history: [], drops: {}, frameCount: 0 };
    // Re-inserted: least recently updated first.
    this.tracked.set(id, t);
    while (this.tracked.size > this.cfg.maxStreamsTracked) this.tracked.delete(this.tracked.keys().next().value as string);
    return t;
  }

  private onRuntimeEvent(e: RuntimeEvent): void {
    if (e.type === 'stats') {
      const t = this.track(e.streamId);
      const sample: StatsSample = {
        t: Date.now(),
        fps_in: round(e.stats.fps_in, 2),
        fps_out: round(e.stats.fps_out, 2),
        latency_p50_ms: round(e.stats.latency_p50_ms, 1),
        latency_p99_ms: round(e.stats.latency_p99_ms, 1),
      };
      t.history.push(sample);
      if (t.history.length > this.cfg.historySamples) t.history.splice(0, t.history.length - this.cfg.historySamples);
      for (const [reason, n] of Object.entries(e.dropsByReason)) if (n > 0) t.drops[reason] = (t.drops[reason] ?? 0) + n;
      t.frameCount = e.frameCount;
      this.broadcast('stats', { stream_id: e.streamId, sample, drops_by_reason: t.drops, frame_count: e.frameCount, frames_dropped: e.stats.frames_dropped });
    } else if (e.type === 'state' || e.type === 'worker_restart') {
      if (this.clients.size && !this.stateTimer) {
        this.stateTimer = setTimeout(() => {
          this.stateTimer = null;
          void this.sendStreams();
        }, STATE_DEBOUNCE_MS);
      }
    }
  }

  private onThumbnail(t: Thumbnail): void {
    this.broadcast('thumbnail', { stream_id: t.streamId, side: t.side, seq: t.seq, at: t.at, bytes: t.jpeg.length });
  }

  private view(s: StreamStatus): StreamView {
    const t = this.tracked.get(s.request_id);
    const th = (side: 'input' | 'output') => {
      const x = this.runtime.thumbnail(s.request_id, side);
      return x ? { seq: x.seq, at: x.at } : null;
    };
    return { ...s, drops_by_reason: t?.drops ?? {}, thumbnails: { input: th('input'), output: th('output') } };
  }

  /** This node, with the edge's clock (`now`) so the page can tell how old the heartbeat is. */
  private node(): NodeSummary & { now: number } {
    return { ...this.runtime.nodeInfo(), now: Date.now() };
  }

  private async streams(): Promise<{ streams: StreamView[]; error?: string }> {
    try {
      return { streams: (await this.runtime.listStreams()).map((s) => this.view(s)) };
    } catch (err) {
      return { streams: [], error: err instanceof Error ? err.message : String(err) };
    }
  }

  private async sendStreams(): Promise<void> {
    if (this.listing || this.closed || !this.clients.size) return;
    this.listing = true;
    try {
      const { streams, error } = await this.streams();
      this.broadcast('streams', { node: this.node(), nodes: this.runtime.nodes(), streams, ...(error ? { error } : {}) });
    } finally {
      this.listing = false;
    }
  }

  /**
   * Takes over `res` as an SSE stream: a `snapshot` first (node, streams, each stream's history),
   * then live events until the client goes. False (nothing written) when the feed is full.
   */
  async attach(res: ServerResponse): Promise<boolean> {
    if (this.closed || this.clients.size >= this.cfg.maxFeedClients) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': streamfleet dashboard feed\n\n');
    this.clients.add(res);
    res.on('close', () => this.detach(res));
    this.startTimers();
    const { streams, error } = await this.streams();
    const history = Object.fromEntries(streams.map((s) => [s.request_id, this.history(s.request_id)]));
    this.send(res, 'snapshot', {
      node: this.node(),
      nodes: this.runtime.nodes(),
      streams,
      history,
      interval_ms: this.cfg.feedIntervalMs,
      history_samples: this.cfg.historySamples,
      trickle_url: this.trickleUrl,
      ...(error ? { error } : {}),
    });
    return true;
  }

  private detach(res: ServerResponse): void {
    this.clients.delete(res);
    if (!this.clients.size) this.stopTimers();
  }

  private startTimers(): void {
    if (this.tick) return;
    this.tick = setInterval(() => void this.sendStreams(), this.cfg.feedIntervalMs);
    this.keepalive = setInterval(() => {
      for (const c of this.clients) c.write(': keep-alive\n\n');
    }, KEEPALIVE_MS);
    this.tick.unref();
    this.keepalive.unref();
  }

  private stopTimers(): void {
    if (this.tick) clearInterval(this.tick);
    if (this.keepalive) clearInterval(this.keepalive);
    if (this.stateTimer) clearTimeout(this.stateTimer);
    this.tick = this.keepalive = this.stateTimer = null;
  }

  private send(res: ServerResponse, event: string, data: unknown): void {
    if (res.destroyed) return;
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (res.writableLength > this.cfg.maxFeedBufferBytes) {
      this.log.warn({ buffered: res.writableLength }, 'dashboard feed client stopped reading; disconnected');
      res.destroy();
      this.detach(res);
    }
  }

  private broadcast(event: string, data: unknown): void {
    if (!this.clients.size) return;
    for (const c of [...this.clients]) this.send(c, event, data);
  }

  close(): void {
    this.closed = true;
    this.stopTimers();
    for (const off of this.offs) off();
    for (const c of this.clients) c.end();
    this.clients.clear();
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
