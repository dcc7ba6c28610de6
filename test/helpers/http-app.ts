// A real HTTP edge over a real actor runtime on the embedded bus, listening on an ephemeral port.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRuntime } from '../../src/actors/runtime.ts';
import { loadConfig, type ConfigInput } from '../../src/config.ts';
import { buildApp, type App } from '../../src/http/app.ts';
import { ensureWorkspace } from '../../src/inference/workspace.ts';
import type { Bus } from '../../src/transport/bus.ts';
import { createBus } from '../../src/transport/create-bus.ts';

export interface TestEdge {
  app: App;
  origin: string;
  runtime: Awaited<ReturnType<typeof createRuntime>>;
  bus: Bus;
  close(): Promise<void>;
}

export async function startEdge(over: ConfigInput = {}): Promise<TestEdge> {
  const dir = mkdtempSync(join(tmpdir(), 'sf-edge-'));
  const workspace = ensureWorkspace(join(dir, 'ws'));
  const config = loadConfig({ ...over, inference: { ...over.inference, workspace } });
  const bus = await createBus(config.bus);
  const runtime = await createRuntime({ config, bus });
  const app = await buildApp({ config, runtime });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    app,
    runtime,
    bus,
    origin: `http://127.0.0.1:${port}`,
    async close() {
      await app.close();
      await runtime.close();
      await bus.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function call(
  origin: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(origin + path, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}
