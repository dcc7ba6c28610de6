// The web dashboard: the page at `/`, its assets under `/ui/` (src/http/ui, plain ES modules, no
// build step), the MPEG-TS player it uses (mpegts.js, served from node_modules: nothing comes from a
// CDN), the session cookie for a bearer-token edge (src/http/session.ts) and the live feed
// (src/http/dashboard-feed.ts). Every action the page takes goes through the public REST API.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../../config.ts';
import { SfError } from '../../errors.ts';
import type { DashboardFeed } from '../dashboard-feed.ts';
import { sessionCookieHeader, sessionValue } from '../session.ts';

export const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'ui');
const MPEGTS_DIR = dirname(createRequire(import.meta.url).resolve('mpegts.js/dist/mpegts.js'));

/** The page may load and connect to this origin only (and blob: URLs the player makes for MSE). */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'none'",
].join('; ');

export interface DashboardRoutesOptions {
  config: Readonly<Config>;
  feed: DashboardFeed;
}

const SessionAnswer = z.object({ auth: z.enum(['none', 'token']), expires_at: z.number().nullable() });

export const dashboardRoutes: FastifyPluginAsync<DashboardRoutesOptions> = async (base, { config, feed }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const token = config.http.authToken;
  const securityHeaders = (res: { setHeader(k: string, v: string): unknown }) => {
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
  };

  await app.register(fastifyStatic, {
    root: UI_DIR,
    prefix: '/ui/',
    index: false,
    decorateReply: true,
    setHeaders: (res) => securityHeaders(res),
  });
  await app.register(fastifyStatic, {
    root: MPEGTS_DIR,
    prefix: '/ui/vendor/mpegts/',
    decorateReply: false,
    allowedPath: (path) => path === '/mpegts.js' || path === '/mpegts.js.map' || path === '/mpegts.js.LICENSE.txt',
    setHeaders: (res) => securityHeaders(res),
  });
  for (const url of ['/', '/index.html']) {
    app.get(url, { schema: { hide: true } }, (_req, reply) => {
      void reply.header('content-security-policy', PAGE_CSP).header('cache-control', 'no-cache');
      return reply.sendFile('index.html', UI_DIR);
    });
  }

  // Who am I: 200 when the page may read (no token configured, or a valid header or cookie), else
  // 401 from the auth hook, and the page asks for the token.
  app.get('/dashboard/session', { schema: { tags: ['dashboard'], response: { 200: SessionAnswer } } }, async () => ({
    auth: token ? ('token' as const) : ('none' as const),
    expires_at: null,
  }));
  // The token in the Authorization header (checked by the auth hook like on every route) buys a
  // read-only session cookie for the requests a browser cannot add a header to.
  app.post('/dashboard/session', { schema: { tags: ['dashboard'], response: { 200: SessionAnswer } } }, async (req, reply) => {
    if (!token) return { auth: 'none' as const, expires_at: null };
    const ttl = config.dashboard.sessionTtlMs;
    const expiresAt = Date.now() + ttl;
    void reply.header('set-cookie', sessionCookieHeader(sessionValue(token, expiresAt), Math.floor(ttl / 1000), req.protocol === 'https'));
    return { auth: 'token' as const, expires_at: expiresAt };
  });
  app.delete('/dashboard/session', { schema: { tags: ['dashboard'], response: { 200: SessionAnswer } } }, async (req, reply) => {
    void reply.header('set-cookie', sessionCookieHeader(null, 0, req.protocol === 'https'));
    return { auth: token ? ('token' as const) : ('none' as const), expires_at: null };
  });

  app.get('/dashboard/feed', { schema: { tags: ['dashboard'] } }, async (_req, reply) => {
    if (feed.clientCount >= config.dashboard.maxFeedClients) {
      throw new SfError('TOO_MANY_VIEWERS', `This edge serves at most ${config.dashboard.maxFeedClients} dashboard feeds at once`);
    }
    reply.hijack();
    if (!(await feed.attach(reply.raw))) {
      const e = new SfError('TOO_MANY_VIEWERS', `This edge serves at most ${config.dashboard.maxFeedClients} dashboard feeds at once`);
      reply.raw.writeHead(e.status, { 'content-type': 'application/json' }).end(JSON.stringify(e.toJSON()));
    }
  });
};
