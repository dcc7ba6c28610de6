import type { FastifyRequest } from 'fastify';
import { bearerToken, tokenMatches } from '../bearer-token.ts';
import { SfError } from '../errors.ts';

/** Routes a load balancer or orchestrator probes without credentials. */
const OPEN_ROUTES = new Set(['/livez', '/readyz']);

/**
 * Optional bearer-token auth (an onRequest hook): every route but the probes needs
 * `Authorization: Bearer <token>`. Undefined when no token is configured.
 */
export function bearerAuth(token: string | undefined): ((req: FastifyRequest) => Promise<void>) | undefined {
  if (!token) return undefined;
  return async (req) => {
    const path = req.url.split('?')[0];
    if (OPEN_ROUTES.has(path)) return;
    const given = bearerToken(req.headers.authorization);
    if (given === null || !tokenMatches(given, token)) {
      throw new SfError('UNAUTHORIZED', 'A valid bearer token is required (Authorization: Bearer <token>)');
    }
  };
}
