// GET /{ch}/{seq} once mapped to a segment: streams its buffered bytes, then the live tail, flushing
// as bytes arrive. A reader that is behind never makes the segment grow or copy.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Channel } from './channel.ts';
import type { Segment } from './segment.ts';
import { BODY_ENTRY_NOT_FOUND, CLOSED_VALUE, H_CLOSED, H_LATEST, H_SEQ, STATUS_ENTRY_NOT_FOUND } from './protocol.ts';
import { drained, plain, type ServerContext } from './server-context.ts';

export async function serveSegment(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, ch: Channel, seg: Segment, latest: number): Promise<void> {
  const { stats } = ctx;
  stats.activeGets++;
  let gone = false;
  let cancelWait: (() => void) | null = null;
  const onGone = (): void => {
    gone = true;
    cancelWait?.();
  };
  res.on('close', onGone);
  try {
    let i = 0;
    let sent = 0;
    const head = req.method === 'HEAD';
    while (!gone) {
      if (i < seg.chunks.length) {
        if (sent === 0 && !res.headersSent) {
          const headers: Record<string, string> = {
            [H_SEQ]: String(seg.idx),
            'content-type': seg.contentType || ch.mimeType || 'application/octet-stream',
          };
          if (seg.idx !== latest) headers[H_LATEST] = String(latest);
          res.writeHead(200, headers);
          if (head) break;
        }
        // Everything buffered goes out now (noDelay, chunked encoding): nothing waits for a full
        // segment. A reader that is behind gets its backlog in one corked batch.
        const end = seg.chunks.length;
        let ok = true;
        res.cork();
        while (i < end) {
          const chunk = seg.chunks[i++];
          sent += chunk.length;
          stats.bytesOut += chunk.length;
          ok = res.write(chunk);
        }
        res.uncork();
        if (!ok) await drained(res);
        continue;
      }
      if (seg.closed) break;
      const w = seg.changed();
      cancelWait = w.cancel;
      await w.promise;
      cancelWait = null;
    }
    if (gone || res.destroyed) return;
    if (sent === 0 && !res.headersSent) {
      // Nothing was ever written: the channel ended, or the segment was dropped (then the reader
      // is told where the live edge is).
      const headers = { [H_SEQ]: String(seg.idx) };
      if (ch.closed) plain(res, 200, '', { ...headers, [H_CLOSED]: CLOSED_VALUE });
      else {
        stats.entryNotFound++;
        plain(res, STATUS_ENTRY_NOT_FOUND, BODY_ENTRY_NOT_FOUND, { ...headers, [H_LATEST]: String(ch.nextWrite) });
      }
    } else if (seg.aborted) {
      // End the connection without the final chunk so the client sees a truncated body, not a
      // clean end (socket.end flushes what was written; destroy could drop it).
      if (res.socket) res.socket.end();
      else res.destroy();
    } else res.end();
  } finally {
    stats.activeGets--;
    res.off('close', onGone);
  }
}
