// Plain node:http helpers for the bench's own trickle clients (no code from src/transport).
import http from 'node:http';

export function keepAliveAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, scheduling: 'lifo' });
}

export interface Target {
  host: string;
  port: number;
  /** base path, '' or '/ai/trickle' (no trailing slash) */
  base: string;
}

export function parseBase(url: string): Target {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 80), base: u.pathname.replace(/\/+$/, '') };
}

/** A small request with a text body answer (channel create/delete); never throws. */
export function simpleRequest(
  agent: http.Agent,
  t: Target,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  timeoutMs = 5_000,
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders } | { status: 0; error: string }> {
  return new Promise((resolve) => {
    const req = http.request({ agent, host: t.host, port: t.port, method, path: t.base + path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8'), headers: res.headers }));
      res.on('error', (e) => resolve({ status: 0, error: e.message }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, error: e.message }));
    req.end();
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
