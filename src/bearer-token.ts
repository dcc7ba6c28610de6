// Bearer tokens, shared by the HTTP API and the trickle server: reading one from an Authorization
// header and comparing it with the configured token in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';

/** The token of `Authorization: Bearer <token>` (scheme case-insensitive), or null. */
export function bearerToken(header: string | undefined): string | null {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  const t = m ? m[1].trim() : '';
  return t ? t : null;
}

/** True when `given` equals `expected`. Both are hashed to equal-length digests first, so the time
 *  taken says nothing about either token's length or content. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}
