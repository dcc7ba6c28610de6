// Wire names of the trickle protocol (docs/trickle-protocol.md), in one place for server and clients.

export const H_SEQ = 'lp-trickle-seq';
export const H_LATEST = 'lp-trickle-latest';
export const H_CLOSED = 'lp-trickle-closed';
export const H_RESET = 'lp-trickle-reset';
export const CLOSED_VALUE = 'terminated';

/** Custom status: the channel exists but the seq does not. */
export const STATUS_ENTRY_NOT_FOUND = 470;

/** seq -1: the next write (a GET parks until the publisher starts it). */
export const SEQ_NEXT = -1;
/** seq -2: the current write (served from byte 0, then the live tail). */
export const SEQ_CURRENT = -2;

export const BODY_STREAM_NOT_FOUND = 'Stream not found';
export const BODY_ENTRY_NOT_FOUND = 'Entry not found';
export const BODY_INVALID_IDX = 'Invalid idx';
export const BODY_NONEXISTENT_SEGMENT = 'Nonexistent segment';
export const BODY_INVALID_STREAM = 'Invalid stream';

/** Parses a decimal seq (`-2`, `-1`, `0`, `17`); anything else (hex, spaces, huge) is null. */
export function parseSeq(s: string): number | null {
  if (!/^-?\d{1,15}$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * A channel URL with one more path part (`/next`, a seq), built with the URL API: the channel's
 * query string (a gateway's token, say) is kept on every request, a fragment is dropped, and a
 * trailing slash is not doubled.
 */
export function joinUrl(base: string, part: string | number): string {
  const u = new URL(base);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/${encodeURIComponent(String(part))}`;
  u.hash = '';
  return u.href;
}
