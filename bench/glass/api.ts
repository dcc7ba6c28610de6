// The service's REST API as a gateway drives it (fetch; nothing from src/). Never throws.

export interface ApiAnswer {
  status: number;
  ms: number;
  json: unknown;
  text: string;
  error?: string;
}

export async function call(method: string, url: string, body?: unknown, timeoutMs = 45_000): Promise<ApiAnswer> {
  const t0 = performance.now();
  try {
    const r = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await r.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, ms: performance.now() - t0, json, text };
  } catch (err) {
    return { status: 0, ms: performance.now() - t0, json: null, text: '', error: (err as Error).message };
  }
}

export interface StartStream {
  id: string;
  subscribeUrl: string;
  publishUrl: string;
  width: number;
  height: number;
  eventsUrl?: string;
}

export function startStream(api: string, s: StartStream): Promise<ApiAnswer> {
  return call('POST', `${api}/stream/start`, {
    subscribe_url: s.subscribeUrl,
    publish_url: s.publishUrl,
    gateway_request_id: s.id,
    ...(s.eventsUrl ? { events_url: s.eventsUrl } : {}),
    params: { width: s.width, height: s.height },
  });
}

export interface StreamStatus {
  state?: string;
  running?: boolean;
  frame_count?: number;
  restart_count?: number;
  end_reason?: string;
  degraded?: boolean;
  worker_status?: { pid?: number | null; state?: string; restart_count?: number };
  stats?: Record<string, number>;
}

export async function streamStatus(api: string, id: string): Promise<StreamStatus | null> {
  const r = await call('GET', `${api}/stream/${encodeURIComponent(id)}/status`, undefined, 5_000);
  return r.status === 200 && r.json && typeof r.json === 'object' ? (r.json as StreamStatus) : null;
}

/** The worker pid from a status answer (worker_status.pid), or null. */
export function workerPid(s: StreamStatus | null): number | null {
  const p = s?.worker_status?.pid;
  return typeof p === 'number' && p > 0 ? p : null;
}

export function stopStream(api: string, id: string): Promise<ApiAnswer> {
  return call('DELETE', `${api}/stream/${encodeURIComponent(id)}`, undefined, 30_000);
}
