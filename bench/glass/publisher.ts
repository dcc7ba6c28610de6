// A paced trickle publisher of our own (node:http, keep-alive agent), as a gateway publishes:
//   paced: one POST /{ch}/{seq} per segment with a chunked body; each frame's bytes (the packets
//          from just after the previous frame up to the end of its PES) go out in one write when
//          the frame's pts comes due relative to the stream's start. Segment seq+1's POST is opened
//          (headers sent, body waiting) when segment seq starts, as go-livepeer's preconnect does;
//          segment seq's body ends when seq+1's first frame comes due (when a segmenter would see
//          the next keyframe), the last one a frame interval after its last frame.
//   burst: each whole segment in one write when its first frame comes due (a gateway that posts
//          whole segments), the body ended right after.
// Records, per video pts, when the write holding its last byte was issued (performance.now()).
import http from 'node:http';
import type { ClipSegment } from './ts.ts';
import { sleep, type Target } from './http.ts';

export type PublishMode = 'paced' | 'burst';

export interface PublishResult {
  /** pts -> performance.now() when the write holding the frame's last byte was issued */
  sentAt: Map<number, number>;
  /** write issue time minus due time, ms, one per write */
  lateMs: number[];
  firstWriteAt: number;
  lastWriteAt: number;
  segmentsOk: number;
  errors: string[];
}

interface OpenPost {
  seq: number;
  req: http.ClientRequest;
  done: Promise<void>;
  failed: string | null;
  wrote: boolean;
}

export interface PublishOptions {
  agent: http.Agent;
  target: Target;
  channel: string;
  segments: ClipSegment[];
  /** performance.now() at which the first frame is due */
  t0: number;
  mode: PublishMode;
  fps: number;
  signal?: AbortSignal;
}

export async function publish(o: PublishOptions): Promise<PublishResult> {
  const result: PublishResult = { sentAt: new Map(), lateMs: [], firstWriteAt: NaN, lastWriteAt: NaN, segmentsOk: 0, errors: [] };
  if (!o.segments.length) return result;
  const firstPts = o.segments[0].pts[0];
  const due = (pts: number) => o.t0 + (pts - firstPts) / 90;
  const frameMs = 1000 / o.fps;

  const open = (seq: number): OpenPost => {
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const req = http.request({
      agent: o.agent,
      host: o.target.host,
      port: o.target.port,
      method: 'POST',
      path: `${o.target.base}/${o.channel}/${seq}`,
      headers: { 'Content-Type': 'video/MP2T' },
    });
    const post: OpenPost = { seq, req, done, failed: null, wrote: false };
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) result.segmentsOk++;
        else post.failed = `POST ${seq}: HTTP ${res.statusCode}`;
        resolveDone();
      });
      res.on('error', (e) => {
        post.failed ??= `POST ${seq}: ${e.message}`;
        resolveDone();
      });
    });
    req.on('error', (e) => {
      post.failed ??= `POST ${seq}: ${e.message}`;
      resolveDone();
    });
    req.flushHeaders(); // preconnect: headers now, body later
    return post;
  };

  /** Writes; a POST that failed before its first write (a stale keep-alive socket) is reopened once. */
  const write = (p: OpenPost, bytes: Buffer): OpenPost => {
    if (p.failed && !p.wrote) {
      result.errors.push(`${p.failed} (reopened)`);
      p = open(p.seq);
    }
    p.wrote = true;
    p.req.write(bytes);
    return p;
  };

  const postFor: OpenPost[] = [open(0)];
  const stamp = (t: number, dueAt: number) => {
    result.lateMs.push(t - dueAt);
    if (Number.isNaN(result.firstWriteAt)) result.firstWriteAt = t;
    result.lastWriteAt = t;
  };
  for (let s = 0; s < o.segments.length && !o.signal?.aborted; s++) {
    const seg = o.segments[s];
    if (o.mode === 'burst') {
      const d = due(seg.pts[0]);
      await sleep(d - performance.now());
      const t = performance.now();
      postFor[s] = write(postFor[s], Buffer.concat(seg.units.map((u) => u.bytes)));
      postFor[s].req.end();
      stamp(t, d);
      for (const pts of seg.pts) result.sentAt.set(pts, t);
      if (s + 1 < o.segments.length) postFor[s + 1] = open(s + 1);
      continue;
    }
    for (let k = 0; k < seg.units.length && !o.signal?.aborted; k++) {
      const u = seg.units[k];
      const d = due(u.pts);
      await sleep(d - performance.now());
      // The previous segment ends as this one's first frame comes due.
      if (k === 0 && s > 0) postFor[s - 1].req.end();
      const t = performance.now();
      postFor[s] = write(postFor[s], u.bytes);
      stamp(t, d);
      result.sentAt.set(u.pts, t);
      if (k === 0 && s + 1 < o.segments.length) postFor[s + 1] = open(s + 1);
    }
  }
  if (o.mode === 'paced' && !o.signal?.aborted) {
    const last = o.segments[o.segments.length - 1];
    await sleep(due(last.pts[last.pts.length - 1]) + frameMs - performance.now());
  }
  for (const p of postFor) if (!p.req.writableEnded) p.req.end();
  // Wait for the POST answers, bounded.
  await Promise.race([Promise.all(postFor.map((p) => p.done)), sleep(5_000)]);
  for (const p of postFor) {
    if (p.failed) result.errors.push(p.failed);
    if (!p.req.writableFinished) p.req.destroy();
  }
  return result;
}
