// What a stream looks like, for people: its latest thumbnails and its live output.
//   GET /stream/{id}/thumbnail/{input|output}   the latest JPEG its worker made (image/jpeg)
//   GET /stream/{id}/output.ts                  the output channel, live, as ONE MPEG-TS stream
// The relay reads the stream's output trickle channel (its publish_url, wherever that lives) from the
// segment being written now and writes segment after segment into one chunked response: each output
// segment starts with PAT/PMT and an IDR and carries the stream's continuous output clock, so the
// concatenation is a valid live transport stream that an MSE player (mpegts.js) plays as it comes.
// Relaying through the edge, rather than opening the trickle server to browsers (CORS), keeps one
// origin and one auth for the page, works when the output channel lives on a gateway's trickle
// server the browser cannot reach, and costs the edge no media work (bytes in, bytes out). A viewer
// that cannot keep up skips whole segments (never a part of one); viewers are bounded per edge.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { StreamRuntime } from '../../actors/types.ts';
import type { Config } from '../../config.ts';
import { SfError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { TrickleSubscriber } from '../../transport/trickle/subscriber.ts';
import { ErrorBody, streamIdSchema } from '../schemas.ts';

export interface StreamMediaRoutesOptions {
  config: Readonly<Config>;
  runtime: StreamRuntime;
  logger: Logger;
  /** Relays open on this edge (shared by the route's prefixes), and how to end each (on close). */
  relays: { open: number; closers: Set<() => void> };
}

/** How long the relay waits for an output channel that does not exist yet. */
const RELAY_CHANNEL_WAIT_MS = 10_000;

export const streamMediaRoutes: FastifyPluginAsync<StreamMediaRoutesOptions> = async (base, { config, runtime, logger, relays }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const id = streamIdSchema(config.http);

  app.get(
    '/stream/:id/thumbnail/:side',
    {
      schema: {
        tags: ['streams'],
        summary: "The latest thumbnail of a stream's input or output frames (JPEG)",
        params: z.object({ id, side: z.enum(['input', 'output']) }),
      },
    },
    async (req, reply) => {
      const t = runtime.thumbnail(req.params.id, req.params.side);
      if (!t) throw new SfError('THUMBNAIL_NOT_FOUND', `No ${req.params.side} thumbnail of stream ${req.params.id} arrived lately`);
      return reply
        .type('image/jpeg')
        .header('cache-control', 'no-store')
        .header('x-thumbnail-seq', String(t.seq))
        .header('x-thumbnail-age-ms', String(Math.max(0, Date.now() - t.at)))
        .send(t.jpeg);
    },
  );

  app.get(
    '/stream/:id/output.ts',
    {
      schema: {
        tags: ['streams'],
        summary: "The stream's output, live, as one MPEG-TS stream (video/mp2t, chunked, until the stream ends)",
        params: z.object({ id }),
        response: { 404: ErrorBody, 503: ErrorBody },
      },
    },
    async (req, reply) => {
      const s = await runtime.getStream(req.params.id);
      if (!s) throw new SfError('STREAM_NOT_FOUND', `Stream ${req.params.id} not found`);
      const max = config.dashboard.maxVideoRelays;
      if (relays.open >= max) throw new SfError('TOO_MANY_VIEWERS', `This edge relays at most ${max} live outputs at once`);
      relays.open++;
      const log = logger.child({ streamId: req.params.id, relay: true });
      const sub = new TrickleSubscriber(s.publish_url, { start: 'current', config: config.trickle, logger: log, waitForChannel: RELAY_CHANNEL_WAIT_MS });
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'video/mp2t', 'cache-control': 'no-store', 'x-accel-buffering': 'no', 'x-content-type-options': 'nosniff' });
      let gone = false;
      const onGone = () => {
        gone = true;
        sub.close();
      };
      res.on('close', onGone);
      const end = () => {
        onGone();
        res.end();
      };
      relays.closers.add(end);
      const drained = () =>
        new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.once('drain', done);
          res.once('close', done);
        });
      let segments = 0;
      let skipped = 0;
      try {
        for await (const seg of sub) {
          if (gone) break;
          // Behind by more than the bound: this whole segment is skipped (its body is dropped).
          if (res.writableLength > config.dashboard.maxRelayBufferBytes) {
            skipped++;
            continue;
          }
          try {
            for await (const chunk of seg.body) {
              if (gone) break;
              if (!res.write(chunk)) await drained();
            }
          } catch (err) {
            // A segment cut short (its worker died mid-way): the next one starts clean with an IDR.
            log.debug({ err, seq: seg.seq }, 'relayed segment truncated');
          }
          segments++;
        }
      } catch (err) {
        log.debug({ err }, 'output relay ended');
      } finally {
        relays.open--;
        relays.closers.delete(end);
        res.off('close', onGone);
        sub.close();
        if (!res.writableEnded) res.end();
        log.debug({ segments, skipped, endReason: sub.endReason }, 'output relay closed');
      }
    },
  );
};
