// infra/compose.yaml's topology run on this machine without Docker: the three cluster configs on real
// nats-servers, the nats-init one-shot with its compose command, then node-a, node-b and node-c as real
// `streamfleet serve` processes with the image's entrypoint flags and their compose flags. Only what
// cannot carry over is rewritten: compose hostnames to the local servers' URLs, fixed ports to free
// ones, --host 0.0.0.0 to 127.0.0.1 and the workspace to a temp dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { defaultConfig } from '../src/config.ts';
import { startCluster, type ConfServer } from './helpers/nats-conf.ts';
import { freePort } from './helpers/ports.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const infra = (p: string): string => readFileSync(join(root, 'infra', p), 'utf8');
const TOKEN = 'infra-compose-token';

interface ComposeService {
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
}
const compose = parseDocument(infra('compose.yaml'), { merge: true }).toJS({ maxAliasCount: 100 }) as { services: Record<string, ComposeService> };

/** The image's ENTRYPOINT (exec form), as the Dockerfile writes it. */
function imageEntrypoint(): string[] {
  const line = infra('Dockerfile')
    .split('\n')
    .find((l) => l.startsWith('ENTRYPOINT '));
  return JSON.parse(line!.slice('ENTRYPOINT '.length)) as string[];
}

let servers: ConfServer[] = [];
const procs: ChildProcess[] = [];
const dirs: string[] = [];
const conns: NatsConnection[] = [];

/** Compose's `nats://nats-N:4222` (one or a comma list) to the local servers' URLs. */
const localNats = (v: string): string => v.replace(/nats:\/\/nats-(\d):4222/g, (_m, n: string) => servers[Number(n) - 1].url);

function exitOf(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((resolve) => p.once('exit', (code) => resolve(code)));
}

async function stopProc(p: ChildProcess): Promise<number | null> {
  if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
  const killer = setTimeout(() => p.kill('SIGKILL'), 20_000);
  const code = await exitOf(p);
  clearTimeout(killer);
  return code;
}

interface Node {
  proc: ChildProcess;
  origin: string;
  ready: { node_id: string; port: number; trickle_port: number; bus: string };
}

/** Starts a compose streamfleet service as the image would, resolving on its `ready` line. */
async function startNode(name: string): Promise<Node> {
  const svc = compose.services[name];
  const [tini, dashes, node, ...entry] = imageEntrypoint();
  expect([tini, dashes, node]).toEqual(['tini', '--', 'node']);
  const ws = mkdtempSync(join(tmpdir(), `sf-infra-${name}-`));
  dirs.push(ws);
  const port = await freePort();
  const tport = await freePort();
  const args = [
    ...entry.map((a) => (a === '0.0.0.0' ? '127.0.0.1' : a === '/data/workspace' ? ws : a)),
    ...svc.command!.map((a) => {
      if (a.startsWith('--port=')) return `--port=${port}`;
      if (a.startsWith('--trickle-port=')) return `--trickle-port=${tport}`;
      if (a.startsWith('--nats=')) return localNats(a);
      return a;
    }),
  ];
  const env = { ...process.env, ...svc.environment, SF_AUTH_TOKEN: TOKEN, SF_LOG_LEVEL: 'warn' };
  const proc = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let out = '';
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
    if (err.length < 32_768) err += c;
  });
  const ready = await new Promise<Node['ready']>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${name} exited with ${code}:\n${err}`)));
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      for (const line of out.split('\n')) {
        if (!line.startsWith('{"event":"ready"')) continue;
        resolve(JSON.parse(line) as Node['ready']);
      }
    });
  });
  return { proc, origin: `http://127.0.0.1:${ready.port}`, ready };
}

beforeAll(async () => {
  servers = await startCluster([1, 2, 3].map((n) => infra(`nats/cluster/nats-${n}.conf`)));
});
afterAll(async () => {
  await Promise.all(conns.map((nc) => nc.close().catch(() => undefined)));
  await Promise.all(procs.map((p) => stopProc(p)));
  await Promise.all(servers.map((s) => s.stop()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('infra/compose.yaml on a local cluster', () => {
  it('nats-init gives both buckets 3 replicas, as its compose command says', async () => {
    const init = compose.services['nats-init'];
    const [node, ...rest] = [...init.entrypoint!, ...init.command!.map(localNats)];
    expect(node).toBe('node');
    const proc = spawn(process.execPath, rest, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(proc);
    let out = '';
    let err = '';
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    expect(await exitOf(proc), err).toBe(0);
    const reports = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { bucket: string; replicas: number });
    expect(reports.map((r) => [r.bucket, r.replicas])).toEqual([
      [defaultConfig.bus.streamsBucket, 3],
      [defaultConfig.bus.nodesBucket, 3],
    ]);
  });

  it('node-a, node-b and node-c start on the cluster, answer their probes, require the token and register in sf_nodes', async () => {
    const nodes = await Promise.all([startNode('node-a'), startNode('node-b'), startNode('node-c')]);
    expect(nodes.map((n) => [n.ready.node_id, n.ready.bus])).toEqual([
      ['node-a', 'nats'],
      ['node-b', 'nats'],
      ['node-c', 'nats'],
    ]);
    for (const n of nodes) {
      expect((await fetch(`${n.origin}/livez`)).status).toBe(200);
      expect((await fetch(`${n.origin}/readyz`)).status).toBe(200);
      expect((await fetch(`${n.origin}/streams`)).status).toBe(401);
      expect((await fetch(`${n.origin}/streams`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    }

    // Each node's heartbeat lands in sf_nodes; read them through the third server alone.
    const nc = await connect({ servers: servers[2].url });
    conns.push(nc);
    const kv = await new Kvm(nc).open(defaultConfig.bus.nodesBucket);
    const seen = new Set<string>();
    const watch = await kv.watch();
    for await (const e of watch) {
      if (e.operation === 'PUT') seen.add(e.key);
      if (seen.has('node-a') && seen.has('node-b') && seen.has('node-c')) break;
    }
    const si = await (await jetstreamManager(nc)).streams.info(`KV_${defaultConfig.bus.nodesBucket}`);
    expect(si.config.num_replicas).toBe(3);

    // SIGTERM (what `docker compose stop` sends through tini) ends each node cleanly.
    expect(await Promise.all(nodes.map((n) => stopProc(n.proc)))).toEqual([0, 0, 0]);
  });
});
