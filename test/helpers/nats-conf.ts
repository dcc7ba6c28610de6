// Runs nats-server from one of infra/'s config files on ephemeral ports: the file's own text with its
// ports, store dir and route addresses rewritten (every rewrite must find what it expects, so a config
// that drifts from the shape the tests know fails loudly instead of silently running something else).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnNatsServer } from './nats-server.ts';
import { freePort } from './ports.ts';

export interface ConfPorts {
  client: number;
  monitor: number;
  /** This server's cluster (route) port; only for a cluster config. */
  cluster?: number;
  /** Every route's port, in the order the config lists its routes. */
  routes?: number[];
}

function replaceCounted(text: string, re: RegExp, by: (m: string, ...g: string[]) => string, expected: number | 'optional'): string {
  let n = 0;
  const out = text.replace(re, (m: string, ...g: string[]) => {
    n++;
    return by(m, ...g);
  });
  const ok = expected === 'optional' ? n <= 1 : n === expected;
  if (!ok) throw new Error(`config rewrite ${re}: found ${n}, expected ${expected}`);
  return out;
}

/** The config text bound to 127.0.0.1 with the given ports and store dir (and pid file, if it has one). */
export function rewriteNatsConf(text: string, ports: ConfPorts, dir: string): string {
  let t = text;
  t = replaceCounted(t, /^(\s*)host:\s*"?0\.0\.0\.0"?\s*$/m, (_m, ind) => `${ind}host: "127.0.0.1"`, 1);
  t = replaceCounted(t, /^(\s*)port:\s*4222\s*$/m, (_m, ind) => `${ind}port: ${ports.client}`, 1);
  t = replaceCounted(t, /^(\s*)http_port:\s*8222\s*$/m, (_m, ind) => `${ind}http_port: ${ports.monitor}`, 1);
  t = replaceCounted(t, /^(\s*)store_dir:\s*"[^"]*"\s*$/m, (_m, ind) => `${ind}store_dir: ${JSON.stringify(join(dir, 'store'))}`, 1);
  t = replaceCounted(t, /^(\s*)pid_file:\s*"[^"]*"\s*$/m, (_m, ind) => `${ind}pid_file: ${JSON.stringify(join(dir, 'nats.pid'))}`, 'optional');
  const routes = ports.routes ?? [];
  t = replaceCounted(t, /^(\s*)listen:\s*"?0\.0\.0\.0:6222"?\s*$/m, (_m, ind) => `${ind}listen: "127.0.0.1:${ports.cluster}"`, ports.cluster ? 1 : 0);
  let i = 0;
  t = replaceCounted(t, /"nats-route:\/\/[^":/]+:6222"/g, () => `"nats-route://127.0.0.1:${routes[i++]}"`, routes.length);
  return t;
}

export interface ConfServer {
  pid: number;
  url: string;
  monitor: string;
  /** SIGTERM (then SIGKILL after 5 s), wait for exit, remove the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** Writes the rewritten config to a temp dir and starts nats-server on it; resolves on "Server is ready". */
export async function startFromConf(text: string, ports: ConfPorts, env: Record<string, string> = {}, readyTimeoutMs = 15_000): Promise<ConfServer> {
  const dir = await mkdtemp(join(tmpdir(), 'sf-infra-nats-'));
  const conf = join(dir, 'nats.conf');
  await writeFile(conf, rewriteNatsConf(text, ports, dir));
  const server = await spawnNatsServer(['-c', conf], { ownedDir: dir, env, readyTimeoutMs });
  return { ...server, url: `nats://127.0.0.1:${ports.client}`, monitor: `http://127.0.0.1:${ports.monitor}` };
}

/** GETs a monitoring endpoint (/varz, /routez, /jsz, /healthz) as JSON. */
export async function monitorJson<T = Record<string, unknown>>(server: ConfServer, path: string): Promise<T> {
  const res = await fetch(server.monitor + path);
  return (await res.json()) as T;
}

/**
 * Polls a monitoring endpoint until `ok` holds. The servers publish no event when routes come up or
 * JetStream elects its meta leader; their monitoring endpoint is the only place that says so.
 */
export async function untilMonitor<T>(server: ConfServer, path: string, ok: (body: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await monitorJson<T>(server, path).catch(() => undefined);
    if (last !== undefined && ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`${server.monitor}${path} never satisfied the condition; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Routez {
  num_routes: number;
}
export interface Jsz {
  config?: { store_dir: string };
  meta_cluster?: { name: string; leader?: string; cluster_size: number };
}

/** Starts one server per config text, all routed to each other, and waits for routes and a meta leader. */
export async function startCluster(confs: string[], env: (i: number) => Record<string, string> = () => ({})): Promise<ConfServer[]> {
  const ports: ConfPorts[] = [];
  for (let i = 0; i < confs.length; i++) ports.push({ client: await freePort(), monitor: await freePort(), cluster: await freePort() });
  const routes = ports.map((p) => p.cluster!);
  const servers: ConfServer[] = [];
  try {
    for (let i = 0; i < confs.length; i++) servers.push(await startFromConf(confs[i], { ...ports[i], routes }, env(i)));
    for (const s of servers) await untilMonitor<Routez>(s, '/routez', (b) => b.num_routes === confs.length - 1);
    for (const s of servers) await untilMonitor<Jsz>(s, '/jsz', (b) => Boolean(b.meta_cluster?.leader));
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  return servers;
}
