// The HTTP edge: a fastify app whose handlers only translate requests into runtime calls and
// their answers back. Every route is served at `/` and under `/live`, as the original service does.
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyError, type FastifyReply } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { StreamRuntime } from '../actors/types.ts';
import type { Config } from '../config.ts';
import { ERROR_CODES, SfError, isSfError, type ErrorCode } from '../errors.ts';
import { rootLogger, type Logger } from '../log.ts';
import { bearerAuth } from './auth.ts';
import { DashboardFeed } from './dashboard-feed.ts';
import { createHttpMetrics } from './metrics.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { healthRoutes } from './routes/health.ts';
import { inspectRoutes } from './routes/inspect.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { objectInfoRoutes } from './routes/object-info.ts';
import { streamMediaRoutes } from './routes/stream-media.ts';
import { streamRoutes } from './routes/streams.ts';

export const API_PREFIXES = ['', '/live'] as const;
export const SERVICE_VERSION = '0.1.0';

export interface AppOptions {
  config: Readonly<Config>;
  runtime: StreamRuntime;
  logger?: Logger;
}

function errorBody(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
  return { error: ERROR_CODES[code].error, message, code, ...extra };
}

/** Maps fastify's own errors (bad JSON, body too large, schema validation) to our codes. */
function fromFastifyError(err: FastifyError): SfError {
  if (err.validation) {
    const where = err.validationContext ?? 'body';
    const issues = err.validation.map((v) => {
      const path = (v.instancePath || '').replace(/^\//, '').replace(/\//g, '.');
      return `${where}${path ? '.' + path : ''}: ${v.message ?? 'invalid'}`;
    });
    return new SfError('BAD_REQUEST', issues.join('; '), { issues });
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new SfError('PAYLOAD_TOO_LARGE', err.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new SfError('UNSUPPORTED_MEDIA_TYPE', 'The body must be application/json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new SfError('BAD_REQUEST', `Invalid JSON body: ${err.message}`);
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new SfError('BAD_REQUEST', err.message);
  }
  return new SfError('INTERNAL', err.message, {}, { cause: err });
}

/** How much of an unknown path an error message repeats (the query string never). */
const SHOWN_PATH_CHARS = 100;

export type App = Awaited<ReturnType<typeof buildApp>>;

export async function buildApp(opts: AppOptions) {
  const { config, runtime } = opts;
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: config.http.bodyLimitBytes,
    // Requests are counted in /metrics; logging each one would drown the stream logs.
    logController: new LogController({ disableRequestLogging: true }),
    // Params longer than this never reach a handler; keep it above the id limit so the id check answers.
    routerOptions: { maxParamLength: Math.max(200, config.http.maxIdLength * 2) },
    // The router's own refusals, in our shape; the URL is not echoed back (it may be huge, or carry a secret).
    frameworkErrors: (err, _req, reply: FastifyReply) => {
      const e =
        err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new SfError('URI_TOO_LONG', `A path segment is longer than ${Math.max(200, config.http.maxIdLength * 2)} characters`)
          : new SfError('BAD_REQUEST', 'The URL is malformed');
      void reply.code(e.status).type('application/json').send(e.toJSON());
    },
  }).withTypeProvider<ZodTypeProvider>();
  // The API speaks JSON only: a text/plain body answers 415 instead of reaching a schema as a string.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // Every route pattern, so an unmatched request can tell "no such route" (404) from "wrong method" (405).
  const routes: Array<{ re: RegExp; methods: Set<string> }> = [];
  app.addHook('onRoute', (r) => {
    const re = new RegExp('^' + r.url.replace(/:[^/]+/g, '[^/]+').replace(/\*/g, '.*') + '/?$');
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    const existing = routes.find((x) => x.re.source === re.source);
    if (existing) methods.forEach((m) => existing.methods.add(m));
    else routes.push({ re, methods: new Set(methods) });
  });

  app.setErrorHandler((err: FastifyError | SfError, req, reply) => {
    const e = isSfError(err) ? err : fromFastifyError(err as FastifyError);
    if (e.status >= 500) req.log.error({ err }, 'request failed');
    void reply.code(e.status).type('application/json').send(e.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0];
    const shown = path.length > SHOWN_PATH_CHARS ? `${path.slice(0, SHOWN_PATH_CHARS)}... (${path.length} characters)` : path;
    const allowed = routes.filter((r) => r.re.test(path)).flatMap((r) => [...r.methods]);
    // A route that takes this method but found nothing (a static file that is not there) is a 404.
    if (allowed.length && !allowed.includes(req.method)) {
      void reply
        .code(405)
        .header('allow', [...new Set(allowed)].join(', '))
        .send(errorBody('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${shown}; use ${[...new Set(allowed)].join(', ')}`));
      return;
    }
    void reply.code(404).send(errorBody('NOT_FOUND', `Route ${req.method} ${shown} not found`));
  });

  const auth = bearerAuth(config.http.authToken, { dashboard: config.dashboard.enabled });
  if (auth) app.addHook('onRequest', auth);
  const metrics = createHttpMetrics(runtime);
  app.addHook('onResponse', async (req, reply) => metrics.observeRequest(req, reply));

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'streamfleet', version: SERVICE_VERSION, description: 'Real-time AI video streams: REST API' },
      components: config.http.authToken
        ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }
        : undefined,
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  await app.register(healthRoutes, { config, runtime, version: SERVICE_VERSION, metrics });
  await app.register(objectInfoRoutes, { workspace: runtime.workspace, testNodes: config.inference.testNodes });
  await app.register(inspectRoutes, { runtime });
  await app.register(nodeRoutes, { runtime });
  const relays = { open: 0, closers: new Set<() => void>() };
  // Long-lived responses (the dashboard feed, output relays) end before the server waits for its
  // connections to close, so they never hold a shutdown up.
  app.addHook('preClose', async () => {
    for (const end of [...relays.closers]) end();
  });
  const log = opts.logger ?? rootLogger;
  for (const prefix of API_PREFIXES) {
    await app.register(streamRoutes, { prefix, config, runtime });
    await app.register(streamMediaRoutes, { prefix, config, runtime, logger: log, relays });
  }
  if (config.dashboard.enabled) {
    const h = config.http;
    const trickleHost = h.host === '0.0.0.0' || h.host === '::' ? '127.0.0.1' : h.host.includes(':') ? `[${h.host}]` : h.host;
    const feed = new DashboardFeed(runtime, config.dashboard, log, h.tricklePort ? `http://${trickleHost}:${h.tricklePort}` : null);
    await app.register(dashboardRoutes, { config, feed });
    app.addHook('preClose', async () => feed.close());
  }
  app.addHook('onClose', async () => metrics.close());
  return app;
}
