// One real node for runtime tests: an embedded trickle server, a bus (embedded, or NATS when a URL is
// given), the actor runtime forking real worker processes, and the HTTP edge on an ephemeral port.
// close() stops all of it, then SIGKILLs any worker process still alive (by pid) and fails loudly
// about it, so no test leaves a process behind.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRuntime, type Runtime } from '../../src/actors/runtime.ts';
import type { RuntimeEvent } from '../../src/actors/types.ts';
import { loadConfig, type Config, type ConfigInput } from '../../src/config.ts';
import { buildApp, type App } from '../../src/http/app.ts';
import { ensureWorkspace } from '../../src/inference/workspace.ts';
import type { Bus } from '../../src/transport/bus.ts';
import { createBus } from '../../src/transport/create-bus.ts';
import { createTrickleServer, type TrickleServer } from '../../src/transport/trickle/index.ts';

export interface TestNode {
  config: Readonly<Config>;
  origin: string;
  trickle: TrickleServer;
  trickleBase: string;
  runtime: Runtime;
  bus: Bus;
  app: App;
  events: RuntimeEvent[];
  /** Every worker pid this node ever forked (seen in status or processes()). */
  pidsSeen: Set<number>;
  close(): Promise<{ orphans: number[] }>;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Test-friendly defaults: quiet logs, quick restarts, short ending retention. */
export function testConfig(over: ConfigInput = {}): ConfigInput {
  return {
    ...over,
    logLevel: over.logLevel ?? ((process.env.SF_LOG_LEVEL as Config['logLevel']) || 'warn'),
    actors: { heartbeatIntervalMs: 500, heartbeatMisses: 6, restartBackoffBaseMs: 100, ...over.actors },
  };
}

export async function startNode(over: ConfigInput = {}): Promise<TestNode> {
  const dir = mkdtempSync(join(tmpdir(), 'sf-node-'));
  const workspace = ensureWorkspace(join(dir, 'ws'));
  const trickle = createTrickleServer({});
  const { port: tport } = await trickle.listen(0, '127.0.0.1');
  const base = testConfig(over);
  const config = loadConfig({ ...base, inference: { ...base.inference, workspace } });
  // Named by its node id on NATS, so a test can tell which server a node is connected to (/connz).
  const bus = await createBus(config.bus, { name: config.nodeId });
  const runtime = await createRuntime({ config, bus });
  const events: RuntimeEvent[] = [];
  runtime.onRuntimeEvent((e) => {
    if (e.type !== 'stats') events.push(e);
  });
  const pidsSeen = new Set<number>();
  const track = setInterval(() => {
    for (const p of runtime.processes({ spares: true })) pidsSeen.add(p.pid);
  }, 100);
  const app = await buildApp({ config, runtime });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    config,
    origin: `http://127.0.0.1:${port}`,
    trickle,
    trickleBase: `http://127.0.0.1:${tport}`,
    runtime,
    bus,
    app,
    events,
    pidsSeen,
    async close() {
      clearInterval(track);
      for (const p of runtime.processes({ spares: true })) pidsSeen.add(p.pid);
      await app.close();
      await runtime.close();
      await bus.close();
      await trickle.close();
      const orphans = [...pidsSeen].filter(alive);
      for (const pid of orphans) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      return { orphans };
    },
  };
}

export async function api(origin: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(origin + path, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json' } : {},
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

export interface StartBody {
  id: string;
  width?: number;
  height?: number;
  params?: Record<string, unknown>;
  control?: boolean;
  events?: boolean;
}

/** The start body for stream `id` with channels `<id>-in` / `<id>-out` on the node's trickle server. */
export function startBody(node: TestNode, b: StartBody): Record<string, unknown> {
  return {
    gateway_request_id: b.id,
    subscribe_url: `${node.trickleBase}/${b.id}-in`,
    publish_url: `${node.trickleBase}/${b.id}-out`,
    ...(b.control ? { control_url: `${node.trickleBase}/${b.id}-control` } : {}),
    ...(b.events ? { events_url: `${node.trickleBase}/${b.id}-events` } : {}),
    params: { width: b.width ?? 128, height: b.height ?? 128, ...b.params },
  };
}

/** Polls a stream's status until `pred` holds (status is a pull API: there is no event to await). */
export async function waitStatus(node: TestNode, id: string, pred: (s: any) => boolean, timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: any;
  for (;;) {
    const r = await api(node.origin, 'GET', `/stream/${id}`);
    last = r.json;
    if (r.status === 200 && pred(r.json)) return r.json;
    if (Date.now() > deadline) throw new Error(`stream ${id}: condition not met in ${timeoutMs} ms; last status ${JSON.stringify(last)}`);
    await new Promise((r2) => setTimeout(r2, 100));
  }
}

/** Resolves with the first runtime event matching `pred` from now on (or already recorded, if `past`). */
export function waitEvent(node: TestNode, pred: (e: RuntimeEvent) => boolean, timeoutMs = 60_000, past = false): Promise<RuntimeEvent> {
  return new Promise((resolve, reject) => {
    if (past) {
      const hit = node.events.find(pred);
      if (hit) return resolve(hit);
    }
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching runtime event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = node.runtime.onRuntimeEvent((e) => {
      if (!pred(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

/** Waits until stream `id` is in `state` (now, or by a later state event), then returns its status. */
export async function waitState(node: TestNode, id: string, state: string, timeoutMs = 60_000): Promise<any> {
  const ev = waitEvent(node, (e) => e.type === 'state' && e.actor === 'stream' && e.streamId === id && e.state === state, timeoutMs);
  const now = await node.runtime.getStream(id);
  if (now?.state !== state) await ev;
  else ev.catch(() => undefined);
  return (await api(node.origin, 'GET', `/stream/${id}`)).json;
}
