import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { SfError } from '../errors.ts';

/** Routes a load balancer or orchestrator probes without credentials. */
const OPEN_ROUTES = new Set(['/livez', '/readyz']);

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Optional bearer-token auth (an onRequest hook): every route but the probes needs
 * `Authorization: Bearer <token>`. Undefined when no token is configured.
 */
export function bearerAuth(token: string | undefined): ((req: FastifyRequest) => Promise<void>) | undefined {
  if (!token) return undefined;
  return async (req) => {
    const path = req.url.split('?')[0];
    if (OPEN_ROUTES.has(path)) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m || !sameToken(m[1].trim(), token)) {
      throw new SfError('UNAUTHORIZED', 'A valid bearer token is required (Authorization: Bearer <token>)');
    }
  };
}
