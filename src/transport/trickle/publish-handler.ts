// POST /{ch}/{seq}: streams one segment's body into the channel as it arrives. A preconnected
// POST (headers, no body yet) parks here with 100 Continue keep-alives until its first byte.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Channel } from './channel.ts';
import { CLOSED_VALUE, H_CLOSED, H_RESET, H_SEQ } from './protocol.ts';
import { plain, type ServerContext } from './server-context.ts';

/** `seq` is already validated (>= -1) and `ch` resolved. */
export function publishSegment(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  ch: Channel,
  seq: number,
  contentType: string,
): void {
  const { cfg, stats, events } = ctx;
  const name = ch.name;
  if (req.headers[H_RESET] !== undefined) ch.reset(seq === -1 ? ch.nextWrite : seq);
  const seg = ch.forWrite(seq, contentType);
  const idx = seg.idx;
  stats.posts++;
  stats.activePosts++;
  let finished = false;
  let keepAlive: NodeJS.Timeout | null = null;

  const finish = (): void => {
    finished = true;
    stats.activePosts--;
    if (keepAlive) clearInterval(keepAlive);
    keepAlive = null;
    if (seg.writer === writer) seg.writer = null;
  };
  const answer = (status: number, extra: Record<string, string> = {}): void => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { [H_SEQ]: String(idx), 'content-length': '0', ...extra });
    res.end();
  };
  const writer = {
    // The segment was closed under us (DELETE, ring reuse, reset, channel close, takeover):
    // answer now and drop whatever the client still sends.
    detach: (): void => {
      if (finished) return;
      finish();
      // Closed before its first byte (DELETE of a dangling preconnect, reset, ring reuse): it ends
      // empty and the write head moves past it, as for an empty POST (go-livepeer does the same), so
      // its readers are not sent back to it. A takeover by another POST leaves the head alone.
      if (seg.closed && seg.length === 0) ch.markWrite(idx);
      answer(200, ch.closed ? { [H_CLOSED]: CLOSED_VALUE, connection: 'close' } : { connection: 'close' });
      req.resume();
    },
  };
  seg.writer = writer;
  events.emit('post-open', { channel: name, seq: idx });

  keepAlive = setInterval(() => {
    if (finished || seg.length > 0 || res.destroyed) return;
    stats.keepAlives++;
    res.writeContinue();
    events.emit('keep-alive', { channel: name, seq: idx });
  }, cfg.keepAliveMs);
  keepAlive.unref();

  req.on('data', (chunk: Buffer) => {
    if (finished) return;
    if (seg.length + chunk.length > cfg.maxSegmentBytes) {
      finish();
      // Its first byte did arrive: the head moves past it, so the publisher's next write and the
      // readers sent on from it do not come back to this seq.
      ch.markWrite(idx);
      stats.rejectedTooLarge++;
      stats.segmentsAborted++;
      seg.close(true);
      events.emit('segment-end', { channel: name, seq: idx, bytes: seg.length, aborted: true });
      plain(res, 413, 'Segment too large', { connection: 'close', [H_SEQ]: String(idx) });
      res.on('finish', () => req.destroy());
      return;
    }
    if (seg.length === 0) {
      ch.markWrite(idx);
      if (keepAlive) clearInterval(keepAlive);
      keepAlive = null;
      events.emit('segment-start', { channel: name, seq: idx });
    }
    stats.bytesIn += chunk.length;
    seg.append(chunk);
  });
  req.on('end', () => {
    if (finished) return;
    finish();
    // An empty POST also moves the write head on (go-livepeer does the same, so readers do not stall).
    if (seg.length === 0) ch.markWrite(idx);
    seg.close(false);
    stats.segmentsCompleted++;
    events.emit('segment-end', { channel: name, seq: idx, bytes: seg.length, aborted: false });
    answer(200);
  });
  const gone = (): void => {
    if (finished || req.complete) return;
    finish();
    if (seg.length > 0) {
      // The publisher died mid-segment: readers get what arrived, then a truncated end.
      seg.close(true);
      stats.segmentsAborted++;
      events.emit('segment-end', { channel: name, seq: idx, bytes: seg.length, aborted: true });
    }
    // A preconnect dropped before its first byte leaves the segment fresh: parked readers keep
    // waiting for the publisher's next try at this seq.
  };
  req.on('close', gone);
  req.on('error', gone);
  res.on('close', gone);
}
