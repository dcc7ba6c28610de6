// One trickle channel: a fixed ring of segments at seq % ringSize plus the write head. Pure state,
// no I/O: the server's HTTP handlers ask it which segment a request maps to.
import { Segment } from './segment.ts';
import { SEQ_CURRENT, SEQ_NEXT } from './protocol.ts';

export interface ReadLookup {
  /** The resolved seq (-1 and -2 turned into real numbers). */
  idx: number;
  /** The write head when the lookup happened. */
  latest: number;
  segment: Segment | null;
}

export class Channel {
  private readonly ring: (Segment | undefined)[];
  /** The next seq a write will use (advances when a POST's first byte arrives, or an empty POST ends). */
  nextWrite = 0;
  writeTime: number;
  closed = false;

  constructor(
    readonly name: string,
    public mimeType: string,
    ringSize: number,
    now: number = Date.now(),
  ) {
    this.ring = new Array<Segment | undefined>(ringSize);
    this.writeTime = now;
  }

  private pos(idx: number): number {
    return idx % this.ring.length;
  }

  /** The live segment for `idx`, if the ring still holds it. */
  get(idx: number): Segment | null {
    if (idx < 0) return null;
    const s = this.ring[this.pos(idx)];
    return s && s.idx === idx ? s : null;
  }

  /** Segments the ring holds now, oldest first. */
  segments(): Segment[] {
    return this.ring.filter((s): s is Segment => s !== undefined).sort((a, b) => a.idx - b.idx);
  }

  private place(idx: number, contentType: string): Segment {
    const p = this.pos(idx);
    this.ring[p]?.evict();
    const s = new Segment(idx, contentType);
    this.ring[p] = s;
    return s;
  }

  /** The segment a POST for `seq` (-1 = next) writes into. A fresh segment (pre-created by a GET or
   *  opened by an earlier POST that sent nothing) is taken over so parked readers get the data; a
   *  segment that already holds bytes is replaced (a second write to a seq reconnects). */
  forWrite(seq: number, contentType: string): Segment {
    const idx = seq === SEQ_NEXT ? this.nextWrite : seq;
    const existing = this.get(idx);
    if (existing && existing.fresh) {
      const old = existing.writer;
      existing.writer = null;
      old?.detach();
      if (contentType) existing.contentType = contentType;
      return existing;
    }
    return this.place(idx, contentType || this.mimeType);
  }

  /** Resolves a GET. Exactly the next seq (or 1 before anything was written, for a subscriber that
   *  preconnects right behind a -1) is pre-created so the reader parks until the publisher starts it. */
  forRead(seq: number): ReadLookup {
    let idx = seq;
    if (seq === SEQ_NEXT) idx = this.nextWrite;
    else if (seq === SEQ_CURRENT) idx = this.nextWrite > 0 ? this.nextWrite - 1 : 0;
    let segment = this.get(idx);
    if (!segment && !this.closed && (idx === this.nextWrite || (this.nextWrite === 0 && idx === 1))) {
      segment = this.place(idx, this.mimeType);
    }
    return { idx, latest: this.nextWrite, segment };
  }

  /** The first byte of `idx` arrived (or its POST ended empty): the write head moves past it. It
   *  never moves back: a publisher rewriting an older seq leaves the live edge where it is. */
  markWrite(idx: number, now: number = Date.now()): void {
    if (idx + 1 > this.nextWrite) this.nextWrite = idx + 1;
    this.writeTime = now;
  }

  /** Lp-Trickle-Reset on a POST for `idx`: the publisher restarted. Every older segment ends (its
   *  readers get a clean end of body, as from go-livepeer) so readers parked on the previous run are
   *  released; segments at or ahead of `idx` stay (preconnects may come out of order). The write head
   *  follows a restart to a lower seq: the only way it moves back. */
  reset(idx: number): void {
    for (const s of this.ring) if (s && s.idx < idx) s.close();
    if (idx < this.nextWrite) this.nextWrite = idx;
  }

  close(): void {
    this.closed = true;
    for (let i = 0; i < this.ring.length; i++) {
      this.ring[i]?.evict();
      this.ring[i] = undefined;
    }
  }
}
