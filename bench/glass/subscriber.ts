// A stamping trickle subscriber of our own (node:http, keep-alive agent). Follows a channel from a
// given seq (0: the first segment): GET /{ch}/{seq}; 404 = "not there yet", retried quickly; 470 =
// jump forward to Lp-Trickle-Latest (or, when Latest is not ahead of seq, ask again: too early); 200 with an empty body = an empty segment, go on; Lp-Trickle-Closed or
// stop() = the end. After a segment's headers arrive the GET for seq+1 is opened at once
// (preconnect). Every body chunk is stamped with performance.now() on arrival and fed to a TS
// scanner of its own (one per segment: a PES ends at the next payload_unit_start on the video PID
// or at the segment's end); per output video pts the stamp of the chunk that carried its last byte.
import http from 'node:http';
import { TsStreamScanner, type StampedFrame } from './ts.ts';
import { sleep, type Target } from './http.ts';

export interface SubscriberStats {
  segments: number;
  emptySegments: number;
  notFound: number;
  jumps: Array<{ from: number; to: number }>;
  /** 470 answers for a seq ahead of the live edge (asked again) */
  early470: number;
  /** the first few 470s in detail */
  log470: Array<{ seq: number; latest: string | undefined; preconnect: boolean; answeredAfterMs: number; at: number }>;
  /** every segment read: seq, bytes, when its headers came and when its body ended (performance.now()) */
  segLog: Array<{ seq: number; bytes: number; headersAt: number; endAt: number; closed: boolean }>;
  errors: string[];
  duplicates: number;
  bytes: number;
  closed: boolean;
  /** frames whose PES was still open when the subscriber was stopped (counted, stamped by their last chunk) */
  cutAtStop: number;
}

interface Pending {
  seq: number;
  sentAt: number;
  preconnect: boolean;
  req: http.ClientRequest;
  res: Promise<http.IncomingMessage | Error>;
}

export class StampingSubscriber {
  readonly frames = new Map<number, StampedFrame>();
  firstByteAt = NaN;
  lastChunkAt = NaN;
  readonly stats: SubscriberStats = { segments: 0, emptySegments: 0, notFound: 0, jumps: [], early470: 0, log470: [], segLog: [], errors: [], duplicates: 0, bytes: 0, closed: false, cutAtStop: 0 };
  private stopped = false;
  private scanner: TsStreamScanner | null = null;
  private videoPid = -1;
  private open = new Set<http.ClientRequest>();
  readonly done: Promise<void>;

  constructor(
    private readonly agent: http.Agent,
    private readonly target: Target,
    private readonly channel: string,
    private readonly fromSeq = 0,
    private readonly notFoundRetryMs = 25,
  ) {
    this.done = this.loop();
  }

  /** pts of the PES still being received (its end not seen yet), if any. */
  pendingPts(): number | null {
    return this.scanner?.currentPts() ?? null;
  }

  /** Stops: aborts the open GETs; the PES in progress is closed with the stamp of its last chunk. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      if (this.scanner?.currentPts() != null) this.stats.cutAtStop++;
      this.scanner?.end();
      this.scanner = null;
      for (const r of this.open) r.destroy();
    }
    await this.done;
  }

  private get(seq: number, preconnect = false): Pending {
    const sentAt = performance.now();
    const req = http.request({ agent: this.agent, host: this.target.host, port: this.target.port, method: 'GET', path: `${this.target.base}/${this.channel}/${seq}` });
    this.open.add(req);
    const res = new Promise<http.IncomingMessage | Error>((resolve) => {
      req.on('response', resolve);
      req.on('error', (e) => {
        this.open.delete(req);
        resolve(e);
      });
      req.on('close', () => this.open.delete(req));
    });
    req.end();
    return { seq, sentAt, preconnect, req, res };
  }

  private onFrame = (f: StampedFrame) => {
    if (this.frames.has(f.pts)) this.stats.duplicates++;
    else this.frames.set(f.pts, f);
  };

  private async loop(): Promise<void> {
    let seq = this.fromSeq;
    let pending: Pending | null = null;
    let errorsInRow = 0;
    while (!this.stopped) {
      const p: Pending = pending && pending.seq === seq ? pending : this.get(seq);
      if (pending && pending !== p) pending.req.destroy();
      pending = null;
      const res = await p.res;
      if (this.stopped) break;
      if (res instanceof Error) {
        this.stats.errors.push(`GET ${seq}: ${res.message}`);
        if (++errorsInRow > 20) break;
        await sleep(50);
        continue;
      }
      const status = res.statusCode ?? 0;
      const h = (k: string) => {
        const v = res.headers[k];
        return Array.isArray(v) ? v[0] : v;
      };
      if (status === 404) {
        res.resume();
        this.stats.notFound++;
        await sleep(this.notFoundRetryMs);
        continue;
      }
      if (status === 470) {
        res.resume();
        const latest = Number(h('lp-trickle-latest'));
        if (this.stats.log470.length < 8) {
          const now = performance.now();
          this.stats.log470.push({ seq, latest: h('lp-trickle-latest'), preconnect: p.preconnect, answeredAfterMs: now - p.sentAt, at: now });
        }
        if (Number.isInteger(latest) && latest > seq) {
          // Fell behind the ring: jump to the live edge (the segments in between are lost).
          this.stats.jumps.push({ from: seq, to: latest });
          seq = latest;
        } else {
          // Too far ahead: typically a preconnected GET sent before the previous segment's first
          // byte advanced the live edge. Ask again for the same seq (never step back: that would
          // re-read a segment already read).
          this.stats.early470++;
          await sleep(this.notFoundRetryMs);
        }
        continue;
      }
      if (status !== 200) {
        res.resume();
        this.stats.errors.push(`GET ${seq}: HTTP ${status}`);
        if (++errorsInRow > 20) break;
        await sleep(50);
        continue;
      }
      errorsInRow = 0;
      const closed = h('lp-trickle-closed') !== undefined;
      // Preconnect the next segment while this one streams.
      if (!closed) pending = this.get(seq + 1, true);
      const headersAt = performance.now();
      const scanner = new TsStreamScanner(this.videoPid, this.onFrame);
      this.scanner = scanner;
      const bytes = await new Promise<number>((resolve) => {
        let n = 0;
        res.on('data', (chunk: Buffer) => {
          const t = performance.now();
          if (Number.isNaN(this.firstByteAt)) this.firstByteAt = t;
          this.lastChunkAt = t;
          n += chunk.length;
          scanner.push(chunk, t);
        });
        res.on('end', () => resolve(n));
        res.on('error', (e) => {
          if (!this.stopped) this.stats.errors.push(`GET ${seq} body: ${e.message}`);
          resolve(n);
        });
        res.on('close', () => resolve(n));
      });
      if (this.stopped) break;
      scanner.end();
      this.scanner = null;
      if (scanner.videoPid >= 0) this.videoPid = scanner.videoPid;
      this.stats.bytes += bytes;
      this.stats.segments++;
      this.stats.segLog.push({ seq, bytes, headersAt, endAt: performance.now(), closed });
      if (bytes === 0) this.stats.emptySegments++;
      if (closed) {
        this.stats.closed = true;
        break;
      }
      seq++;
    }
    pending?.req.destroy();
    for (const r of this.open) r.destroy();
  }
}
