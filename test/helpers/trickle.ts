// Helpers for trickle tests: a real server on an ephemeral port, and raw HTTP requests we can hold
// open, stall and cut (what curl or a dying publisher does), without any client code of ours.
import { once } from 'node:events';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { TrickleConfigSchema, type TrickleConfig } from '../../src/config.ts';
import { createTrickleServer, type TrickleServer, type TrickleServerEvents } from '../../src/transport/trickle/server.ts';

export interface Running {
  server: TrickleServer;
  origin: string;
  base: string;
  port: number;
}

export function trickleConfig(over: Partial<TrickleConfig> = {}): TrickleConfig {
  return TrickleConfigSchema.parse(over);
}

export async function startServer(over: Partial<TrickleConfig> = {}, basePath = '/', authToken?: string): Promise<Running> {
  const server = createTrickleServer({ config: trickleConfig(over), basePath, authToken });
  const { port } = await server.listen(0, '127.0.0.1');
  const origin = `http://127.0.0.1:${port}`;
  return { server, origin, base: `${origin}${server.basePath}`, port };
}

/** The servers one test file starts: `start` as startServer, `closeAll` (in afterEach) closes them. */
export function serverPool(): { start: typeof startServer; closeAll(): Promise<void> } {
  let running: Running[] = [];
  return {
    async start(...args) {
      const r = await startServer(...args);
      running.push(r);
      return r;
    },
    async closeAll() {
      await Promise.all(running.map((r) => r.server.close()));
      running = [];
    },
  };
}

/** A request whose body we write by hand; `response` settles when headers arrive. */
export interface OpenRequest {
  req: ClientRequest;
  response: Promise<IncomingMessage>;
}

export function openRequest(url: string, method: string, headers: Record<string, string> = {}): OpenRequest {
  const req = request(url, { method, headers, agent: false });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
  });
  response.catch(() => undefined);
  return { req, response };
}

/** Starts a streaming POST (chunked, headers sent at once). */
export function openPost(url: string, headers: Record<string, string> = {}): OpenRequest {
  const r = openRequest(url, 'POST', { 'content-type': 'video/MP2T', 'transfer-encoding': 'chunked', ...headers });
  r.req.flushHeaders();
  return r;
}

export function openGet(url: string): OpenRequest {
  const r = openRequest(url, 'GET');
  r.req.end();
  return r;
}

/** Reads a body to the end; `error` is set when it broke off. */
export async function readAll(res: IncomingMessage): Promise<{ body: Buffer; error: Error | null }> {
  const parts: Buffer[] = [];
  try {
    for await (const c of res as AsyncIterable<Buffer>) parts.push(c);
    if (!res.complete) return { body: Buffer.concat(parts), error: new Error('incomplete') };
    return { body: Buffer.concat(parts), error: null };
  } catch (error) {
    return { body: Buffer.concat(parts), error: error as Error };
  }
}

/** Reads what a streaming body has delivered so far (waits for at least one byte); leaves the
 *  stream paused so nothing is lost before the next read. */
export async function nextChunk(res: IncomingMessage): Promise<Buffer> {
  for (;;) {
    const c = res.read() as Buffer | null;
    if (c) return c;
    if (res.readableEnded || res.destroyed) throw new Error('body ended');
    await Promise.race([once(res, 'readable'), once(res, 'end'), once(res, 'close')]);
  }
}

/** Resolves on the first server event matching `pred`. */
export function waitEvent<K extends keyof TrickleServerEvents>(
  server: TrickleServer,
  name: K,
  pred: (e: TrickleServerEvents[K][0]) => boolean = () => true,
): Promise<TrickleServerEvents[K][0]> {
  return new Promise((resolve) => {
    const on = (e: TrickleServerEvents[K][0]): void => {
      if (!pred(e)) return;
      (server.events.off as (n: K, f: (e: TrickleServerEvents[K][0]) => void) => void)(name, on);
      resolve(e);
    };
    (server.events.on as (n: K, f: (e: TrickleServerEvents[K][0]) => void) => void)(name, on);
  });
}

/** Publishes a whole segment with fetch (what `curl -X POST --data-binary` does). */
export async function postSegment(base: string, channel: string, seq: number, body: string | Buffer, headers: Record<string, string> = {}): Promise<Response> {
  const res = await fetch(`${base}${channel}/${seq}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'video/MP2T', ...headers },
  });
  await res.arrayBuffer();
  return res;
}
