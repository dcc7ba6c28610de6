import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { StreamRuntime } from '../../actors/types.ts';
import type { Config } from '../../config.ts';
import type { HttpMetrics } from '../metrics.ts';
import { HealthResponse } from '../schemas.ts';

export interface HealthRoutesOptions {
  config: Readonly<Config>;
  runtime: StreamRuntime;
  version: string;
  metrics: HttpMetrics;
}

const ReadyBody = z.object({ ready: z.boolean(), reasons: z.array(z.string()), capacity: z.number(), running: z.number() });

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (base, { runtime, version, metrics }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  for (const prefix of ['', '/live']) {
    app.get(`${prefix}/health`, { schema: { tags: ['health'], response: { 200: HealthResponse } } }, async () => ({
      status: 'healthy' as const,
      service: 'trickle-stream-processor' as const,
      version,
      stream_manager_ready: runtime.readiness().ready,
    }));
  }
  // The process answers: nothing else is checked, so an orchestrator restarts only a hung process.
  app.get('/livez', { schema: { tags: ['health'], response: { 200: z.object({ status: z.literal('ok') }) } } }, async () => ({
    status: 'ok' as const,
  }));
  app.get('/readyz', { schema: { tags: ['health'], response: { 200: ReadyBody, 503: ReadyBody } } }, async (_req, reply) => {
    const r = runtime.readiness();
    return reply.code(r.ready ? 200 : 503).send(r);
  });
  app.get('/metrics', { schema: { tags: ['health'] } }, async (_req, reply) => {
    const text = await metrics.render();
    return reply.type(metrics.contentType).send(text);
  });
};
