// The latest thumbnail of every stream's input and output, as its worker processes publish them
// (`sf.stream.*.thumb.*`, src/runner/thumbnails.ts): what the edge serves at
// GET /stream/{id}/thumbnail/{side} and announces on the dashboard feed. Bounded: at most
// `dashboard.thumbnails.maxStreamsKept` streams (the least recently updated dropped first), each
// thumbnail at most `maxBytes`, and one older than `keepMs` is gone.
import type { ThumbnailConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Bus, BusSubscription } from '../transport/bus.ts';
import { parseThumbSubject, subjectPatterns, type ThumbnailSide } from '../transport/subjects.ts';
import type { Thumbnail } from './types.ts';

const JPEG_SOI = [0xff, 0xd8];

export class ThumbnailStore {
  private readonly latest = new Map<string, Partial<Record<ThumbnailSide, Thumbnail>>>();
  private readonly listeners = new Set<(t: Thumbnail) => void>();
  private readonly sub: BusSubscription;
  private seq = 0;
  /** Messages that were not a JPEG thumbnail, or too large. */
  rejected = 0;

  constructor(
    bus: Bus,
    private readonly cfg: Readonly<ThumbnailConfig>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.sub = bus.subscribe(subjectPatterns.allThumbnails);
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for await (const m of this.sub) {
        const where = parseThumbSubject(m.subject);
        const d = m.data;
        if (!where || d.length < 4 || d.length > this.cfg.maxBytes || d[0] !== JPEG_SOI[0] || d[1] !== JPEG_SOI[1]) {
          this.rejected++;
          continue;
        }
        this.put({ streamId: where.streamId, side: where.side, jpeg: Buffer.from(d), at: this.now(), seq: ++this.seq });
      }
    } catch (err) {
      this.log.debug({ err }, 'thumbnail subscription ended');
    }
  }

  private put(t: Thumbnail): void {
    const entry = this.latest.get(t.streamId) ?? {};
    // Re-inserted: the Map's order is least recently updated first.
    this.latest.delete(t.streamId);
    entry[t.side] = t;
    this.latest.set(t.streamId, entry);
    while (this.latest.size > this.cfg.maxStreamsKept) this.latest.delete(this.latest.keys().next().value as string);
    for (const l of this.listeners) {
      try {
        l(t);
      } catch (err) {
        this.log.warn({ err }, 'thumbnail listener failed');
      }
    }
  }

  get(streamId: string, side: ThumbnailSide): Thumbnail | undefined {
    const t = this.latest.get(streamId)?.[side];
    if (!t) return undefined;
    if (this.now() - t.at > this.cfg.keepMs) {
      const e = this.latest.get(streamId)!;
      delete e[side];
      if (!e.input && !e.output) this.latest.delete(streamId);
      return undefined;
    }
    return t;
  }

  on(l: (t: Thumbnail) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get size(): number {
    return this.latest.size;
  }

  close(): void {
    this.sub.unsubscribe();
    this.listeners.clear();
    this.latest.clear();
  }
}
