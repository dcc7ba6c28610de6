// State inspection: every actor's state, a live SSE feed of XState inspection events, and the
// machine definitions as JSON for Stately's visualizer.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { InspectionRecord, StreamRuntime } from '../../actors/types.ts';
import { SfError } from '../../errors.ts';
import { machineDefinition, machines, type MachineName } from '../../machines/index.ts';

const SSE_KEEPALIVE_MS = 15_000;

export const inspectRoutes: FastifyPluginAsync<{ runtime: StreamRuntime }> = async (base, { runtime }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  // Open feeds end before the server waits for its connections (a dashboard left open must not hold
  // a shutdown up).
  const feeds = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...feeds]) end();
  });

  app.get('/inspect/actors', { schema: { tags: ['inspect'] } }, async () => {
    const actors = runtime.inspectActors();
    return { actors, count: actors.length };
  });

  app.get(
    '/inspect/machines/:name',
    { schema: { tags: ['inspect'], params: z.object({ name: z.string().min(1).max(64) }) } },
    async (req) => {
      if (!Object.hasOwn(machines, req.params.name)) {
        throw new SfError('NOT_FOUND', `Machine ${req.params.name} not found; known: ${Object.keys(machines).join(', ')}`);
      }
      return machineDefinition(req.params.name as MachineName);
    },
  );

  app.get(
    '/inspect/events',
    {
      schema: {
        tags: ['inspect'],
        querystring: z.object({ stream: z.string().max(256).optional(), replay: z.enum(['true', 'false']).optional() }),
      },
    },
    (req, reply) => {
      const streamId = req.query.stream;
      const matches = (r: InspectionRecord) => !streamId || r.stream_id === streamId;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const send = (r: InspectionRecord) => {
        res.write(`id: ${r.seq}\nevent: ${r.type}\ndata: ${JSON.stringify(r)}\n\n`);
      };
      res.write(': streamfleet inspection feed\n\n');
      if (req.query.replay === 'true') for (const r of runtime.recentInspection({ streamId })) send(r);
      const off = runtime.onInspection((r) => {
        if (matches(r)) send(r);
      });
      const keepalive = setInterval(() => res.write(': keep-alive\n\n'), SSE_KEEPALIVE_MS);
      const end = () => {
        clearInterval(keepalive);
        off();
        feeds.delete(close);
      };
      const close = () => {
        end();
        res.end();
      };
      feeds.add(close);
      req.raw.on('close', end);
      res.on('close', end);
    },
  );
};
