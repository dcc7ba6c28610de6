import type { FastifyRequest } from 'fastify';
import { bearerToken, tokenMatches } from '../bearer-token.ts';
import { SfError } from '../errors.ts';
import { cookieValue, SESSION_COOKIE, sessionValid } from './session.ts';

/** Routes a load balancer or orchestrator probes without credentials. */
const OPEN_ROUTES = new Set(['/livez', '/readyz']);

/** The dashboard's page and its static assets: public files (the page asks for the token itself). */
const DASHBOARD_PAGES = new Set(['/', '/index.html']);
const DASHBOARD_ASSETS = '/ui/';

const READ_METHODS = new Set(['GET', 'HEAD']);

export interface BearerAuthOptions {
  /** Serve the dashboard's page and assets without a token, and take its session cookie
   *  (src/http/session.ts) in place of the header on GET and HEAD requests. */
  dashboard?: boolean;
  now?: () => number;
}

/**
 * Optional bearer-token auth (an onRequest hook): every route but the probes needs
 * `Authorization: Bearer <token>`. Undefined when no token is configured.
 */
export function bearerAuth(token: string | undefined, opts: BearerAuthOptions = {}): ((req: FastifyRequest) => Promise<void>) | undefined {
  if (!token) return undefined;
  const now = opts.now ?? Date.now;
  return async (req) => {
    const path = req.url.split('?')[0];
    if (OPEN_ROUTES.has(path)) return;
    if (opts.dashboard && READ_METHODS.has(req.method) && (DASHBOARD_PAGES.has(path) || path.startsWith(DASHBOARD_ASSETS))) return;
    const given = bearerToken(req.headers.authorization);
    if (given !== null && tokenMatches(given, token)) return;
    // A read-only session: the cookie never authorises a change.
    if (given === null && opts.dashboard && READ_METHODS.has(req.method) && sessionValid(cookieValue(req.headers.cookie, SESSION_COOKIE), token, now())) return;
    throw new SfError('UNAUTHORIZED', 'A valid bearer token is required (Authorization: Bearer <token>)');
  };
}
