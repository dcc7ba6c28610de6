// `streamfleet serve`: one node. Builds the config from flags, creates the bus (embedded, or NATS
// with --nats), the embedded trickle server, the actor runtime and the HTTP edge; prints one JSON
// line with the bound ports once ready; on SIGTERM/SIGINT stops every stream and worker process,
// closes the servers and the bus, and exits 0.
import { readFileSync } from 'node:fs';
import { createRuntime, type Runtime } from '../../actors/runtime.ts';
import { loadConfig, type ConfigInput } from '../../config.ts';
import { buildApp } from '../../http/app.ts';
import { ensureWorkspace } from '../../inference/workspace.ts';
import { createLogger } from '../../log.ts';
import { createBus } from '../../transport/create-bus.ts';
import { createTrickleServer, type TrickleServer } from '../../transport/trickle/index.ts';
import { parseCommandArgs, usageError } from '../args.ts';
import { untilSignal } from '../until-signal.ts';

export const usage =
  'serve [--port 8000] [--trickle-port 3389] [--host 127.0.0.1] [--workspace DIR] [--nats URL] [--auth-token T] ' +
  '[--allowed-hosts h1,h2:port] [--inspect ws://host:port] [--max-streams N] [--node-id ID] [--config FILE.json]   run a node';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `over` wins, object by object (a config file below, flags on top). */
function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isObject(v) && isObject(out[k]) ? merge(out[k] as Json, v) : v;
  }
  return out;
}

function intFlag(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`bad --${name} '${v}'`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('serve', usage, argv, {
    port: { type: 'string' },
    'trickle-port': { type: 'string' },
    host: { type: 'string' },
    workspace: { type: 'string' },
    nats: { type: 'string' },
    'auth-token': { type: 'string' },
    'allowed-hosts': { type: 'string' },
    inspect: { type: 'string' },
    'max-streams': { type: 'string' },
    'node-id': { type: 'string' },
    config: { type: 'string' },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length) return usageError('serve', usage, `unexpected argument '${positionals[0]}'`);

  let config;
  try {
    const file: Json = values.config ? (JSON.parse(readFileSync(values.config, 'utf8')) as Json) : {};
    const flags: Json = {
      nodeId: values['node-id'],
      // The node's worker processes log at the node's level too.
      logLevel: process.env.SF_LOG_LEVEL,
      inference: { workspace: values.workspace },
      bus: { natsUrl: values.nats },
      actors: { maxStreams: intFlag('max-streams', values['max-streams'], 1, 1_000_000) },
      http: {
        port: intFlag('port', values.port, 0, 65535),
        host: values.host,
        tricklePort: intFlag('trickle-port', values['trickle-port'], 0, 65535),
        authToken: values['auth-token'] ?? process.env.SF_AUTH_TOKEN,
        allowedHosts: values['allowed-hosts']
          ?.split(',')
          .map((h) => h.trim())
          .filter(Boolean),
        inspectUrl: values.inspect,
      },
    };
    config = loadConfig(merge(file, flags) as ConfigInput);
  } catch (err) {
    process.stderr.write(`streamfleet serve: bad configuration: ${(err as Error).message}\n`);
    return 2;
  }

  const logger = createLogger(process.env.SF_LOG_LEVEL ?? config.logLevel);
  const workspace = ensureWorkspace(config.inference.workspace);
  const cfg = loadConfig(merge(config as unknown as Json, { inference: { workspace } }) as ConfigInput);

  let bus;
  try {
    bus = await createBus(cfg.bus, { name: cfg.nodeId, logger });
  } catch (err) {
    process.stderr.write(`streamfleet serve: cannot create the bus: ${(err as Error).message}\n`);
    return 1;
  }
  let trickle: TrickleServer | undefined;
  let runtime: Runtime | undefined;
  let tricklePort: number | null = null;
  const closers: Array<() => Promise<void>> = [() => bus.close()];
  try {
    if (cfg.http.tricklePort !== 0) {
      trickle = createTrickleServer({ config: cfg.trickle, logger, authToken: cfg.http.authToken });
      tricklePort = (await trickle.listen(cfg.http.tricklePort, cfg.http.host)).port;
      const t = trickle;
      closers.unshift(() => t.close());
    }
    runtime = await createRuntime({ config: cfg, bus, logger });
    const rt = runtime;
    closers.unshift(() => rt.close());
    const app = await buildApp({ config: cfg, runtime, logger });
    closers.unshift(() => app.close());
    await app.listen({ port: cfg.http.port, host: cfg.http.host });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : cfg.http.port;
    process.stdout.write(
      JSON.stringify({ event: 'ready', pid: process.pid, node_id: cfg.nodeId, host: cfg.http.host, port, trickle_port: tricklePort, bus: bus.kind, workspace }) + '\n',
    );
    logger.info({ port, tricklePort, bus: bus.kind }, 'streamfleet node ready');
  } catch (err) {
    process.stderr.write(`streamfleet serve: cannot start: ${(err as Error).message}\n`);
    await closeAll(closers);
    return 1;
  }

  // A drain (POST /node/{id}/drain) ends the node once its streams run elsewhere; a SIGTERM drains
  // first when other nodes have room for its streams.
  const cue = await Promise.race([untilSignal().then(() => 'signal' as const), runtime!.drained.then(() => 'drained' as const)]);
  if (cue === 'signal' && runtime!.canHandOver()) {
    logger.info('shutting down: handing the streams to other nodes first');
    const bound = new Promise<void>((r) => setTimeout(r, cfg.cluster.handoverTimeoutMs).unref());
    await Promise.race([runtime!.drain(), bound, untilSignal()]);
  }
  logger.info(cue === 'drained' ? 'drained: leaving' : 'shutting down: stopping streams and worker processes');
  // A second signal while shutting down means "now": the workers follow (they exit when their IPC
  // channel to this process closes).
  const again = () => process.exit(1);
  process.once('SIGINT', again);
  process.once('SIGTERM', again);
  // The HTTP edge first (no new streams), then the runtime (streams, processes), then the rest.
  // Each step is bounded: an open SSE feed must not keep the node from exiting.
  await closeAll(closers, cfg.actors.stopTimeoutMs + cfg.actors.workerStopGraceMs);
  return 0;
}

async function closeAll(closers: Array<() => Promise<void>>, boundMs = Infinity): Promise<void> {
  for (const c of closers) {
    let timer: NodeJS.Timeout | undefined;
    const bound = Number.isFinite(boundMs) ? new Promise<void>((r) => (timer = setTimeout(r, boundMs))) : new Promise<void>(() => undefined);
    await Promise.race([c().catch(() => undefined), bound]);
    if (timer) clearTimeout(timer);
  }
}

