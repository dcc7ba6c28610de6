// The dashboard's session cookie: how a browser page reaches a bearer-token edge with the requests
// that cannot carry an Authorization header (EventSource, <img>, the video player's stream).
// The page sends the token once, in the header, to POST /dashboard/session; the answer sets
// `sf_session`, an HttpOnly, SameSite=Strict cookie holding an expiry and an HMAC of it keyed by
// the token (stateless: nothing is stored, a changed token ends every session, the token itself
// never travels in the cookie). The cookie is READ-ONLY: auth.ts accepts it for GET and HEAD
// only; every change (start, stop, prompts) still needs the bearer header, so a cookie alone can
// never act, cross-site or not.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'sf_session';
const VERSION = 'v1';

function mac(token: string, expiresAt: number): string {
  return createHmac('sha256', token).update(`streamfleet-dashboard-session:${VERSION}:${expiresAt}`).digest('base64url');
}

/** A cookie value valid until `expiresAt` (ms since the epoch). */
export function sessionValue(token: string, expiresAt: number): string {
  return `${VERSION}.${expiresAt}.${mac(token, expiresAt)}`;
}

/** True when `value` was made with `token` and has not expired at `now`. */
export function sessionValid(value: string | undefined, token: string, now: number): boolean {
  if (!value) return false;
  const parts = value.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION || !/^\d{1,15}$/.test(parts[1])) return false;
  const expiresAt = Number(parts[1]);
  if (expiresAt <= now) return false;
  const want = Buffer.from(mac(token, expiresAt));
  const got = Buffer.from(parts[2]);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** One cookie's value from a Cookie header (no decoding: our values are URL-safe). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie header for a session until `expiresAt`, or one that clears it (`expiresAt` null). */
export function sessionCookieHeader(value: string | null, maxAgeS: number, secure: boolean): string {
  const attrs = ['Path=/', 'HttpOnly', 'SameSite=Strict', ...(secure ? ['Secure'] : [])];
  return value === null ? `${SESSION_COOKIE}=; Max-Age=0; ${attrs.join('; ')}` : `${SESSION_COOKIE}=${value}; Max-Age=${maxAgeS}; ${attrs.join('; ')}`;
}
