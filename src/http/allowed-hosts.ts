// The API must not become a way to make this server fetch arbitrary URLs: every stream URL must
// point at a host on the allow-list, checked before any connection is made.
import { SfError } from '../errors.ts';

function normaliseHost(h: string): string {
  return h.toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

/** True when `url`'s host (or host:port) is on the list; entries without a port allow any port. */
export function hostAllowed(url: string, allowed: readonly string[]): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  const host = normaliseHost(u.hostname);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return allowed.some((entry) => {
    const m = /^(\[[^\]]+\]|[^:]+|[0-9a-f:]+)(?::(\d+))?$/i.exec(entry.trim());
    if (!m) return false;
    // A bare IPv6 address (several colons, no brackets) has no port part.
    const bareV6 = !entry.startsWith('[') && (entry.match(/:/g)?.length ?? 0) > 1;
    const eHost = normaliseHost(bareV6 ? entry.trim() : m[1]);
    const ePort = bareV6 ? undefined : m[2];
    return eHost === host && (!ePort || ePort === port);
  });
}

export function assertHostsAllowed(urls: Record<string, string | undefined>, allowed: readonly string[]): void {
  for (const [field, url] of Object.entries(urls)) {
    if (url !== undefined && !hostAllowed(url, allowed)) {
      throw new SfError('HOST_NOT_ALLOWED', `${field} points at a host that is not allowed: ${new URL(url).host}`, {
        field,
        allowed_hosts: allowed,
      });
    }
  }
}
