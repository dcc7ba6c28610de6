// GET /{ch}/{seq} once mapped to a segment: streams its buffered bytes, then the live tail, flushing
// as bytes arrive. A reader that is behind never makes the segment grow or copy.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Channel } from './channel.ts';
import type { Segment } from './segment.ts';
import { CLOSED_VALUE, H_CLOSED, H_LATEST, H_SEQ } from './protocol.ts';
import { drained, type ServerContext } from './server-context.ts';

/** The channel's type (from `Expect-Content` or the POST that created it), as go-livepeer answers. */
function contentType(ch: Channel, seg: Segment): string {
  return ch.mimeType || seg.contentType || 'application/octet-stream';
}

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
          const headers: Record<string, string> = { [H_SEQ]: String(seg.idx), 'content-type': contentType(ch, seg) };
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
      // The segment ended with no bytes (an empty POST, a DELETE or reset of a seq nobody wrote, a
      // dropped ring slot) or the channel ended: 200 with an empty body and where the live edge is
      // (go-livepeer since PR #3990); only Lp-Trickle-Closed means the end of the stream.
      const headers: Record<string, string> = {
        [H_SEQ]: String(seg.idx),
        [H_LATEST]: String(ch.nextWrite),
        'content-type': contentType(ch, seg),
        'content-length': '0',
      };
      if (ch.closed) headers[H_CLOSED] = CLOSED_VALUE;
      res.writeHead(200, headers);
      res.end();
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
