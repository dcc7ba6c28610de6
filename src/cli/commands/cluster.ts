// `streamfleet cluster up`: a whole cluster on this machine in the foreground (src/cli/local-cluster.ts):
// 3 nats-servers from infra/nats/cluster, the KV buckets with 3 replicas, then node-1..3 as
// `streamfleet serve` processes on all three NATS URLs. Prints a table of what runs once every node
// answers /readyz; a child that dies is reported (the rest keep running); SIGINT/SIGTERM stops the
// nodes, then the NATS servers, removes the temp dir and exits 0 with nothing left running.
import { createLogger } from '../../log.ts';
import { parseCommandArgs, usageError } from '../args.ts';
import { LocalClusterConfigSchema, loadLocalClusterConfig, startLocalCluster, type LocalCluster, type LocalClusterConfigInput } from '../local-cluster.ts';
import { untilSignal } from '../until-signal.ts';

const d = LocalClusterConfigSchema.parse({});

export const usage =
  `cluster up [--nodes ${d.nodes}] [--port ${d.port}] [--trickle-port ${d.tricklePort}] [--nats-port ${d.natsPort}] ` +
  `[--nats-cluster-port ${d.natsClusterPort}] [--nats-monitor-port ${d.natsMonitorPort}] [--base-port B (0: all ephemeral)] ` +
  `[--workspace DIR] [--config FILE.json] [--log-level ${d.nodeLogLevel}]   run 3 NATS servers and N nodes on this machine`;

/** Port blocks under --base-port B: node i's API on B+i, its trickle on B+100+i, nats-i on B+200+i (routes +300, monitoring +400). */
const BASE_OFFSETS = { port: 0, tricklePort: 100, natsPort: 200, natsClusterPort: 300, natsMonitorPort: 400 } as const;

function intFlag(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`bad --${name} '${v}'`);
  return n;
}

/** Rows as columns padded to their widest cell. */
function table(head: string[], rows: Array<Array<string | number>>): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_h, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

function describe(cl: LocalCluster): string {
  return [
    table(
      ['NATS', 'URL', 'MONITOR', 'PID'],
      cl.nats.map((n) => [n.name, n.url, n.monitor, n.pid]),
    ),
    '',
    table(
      ['NODE', 'API', 'TRICKLE', 'NATS', 'PID'],
      cl.nodes.map((n) => [n.nodeId, n.api, n.trickle, n.nats, n.pid]),
    ),
    '',
    `buckets: ${cl.buckets.map((b) => `${b.bucket} (${b.replicas} replicas, ${b.action})`).join(', ')}`,
    `state dir: ${cl.dir}`,
    `cluster up: try  curl -s ${cl.nodes[0].api}/streams   Ctrl-C stops everything`,
    '',
  ].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('cluster', usage, argv, {
    nodes: { type: 'string' },
    port: { type: 'string' },
    'trickle-port': { type: 'string' },
    'nats-port': { type: 'string' },
    'nats-cluster-port': { type: 'string' },
    'nats-monitor-port': { type: 'string' },
    'base-port': { type: 'string' },
    workspace: { type: 'string' },
    config: { type: 'string' },
    'log-level': { type: 'string' },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals[0] !== 'up') return usageError('cluster', usage, positionals.length ? `unknown subcommand '${positionals[0]}'` : 'which one? (up)');
  if (positionals.length > 1) return usageError('cluster', usage, `unexpected argument '${positionals[1]}'`);

  let config;
  try {
    const base = intFlag('base-port', values['base-port'], 0, 65535);
    const fromBase = (k: keyof typeof BASE_OFFSETS): number | undefined => (base === undefined ? undefined : base === 0 ? 0 : base + BASE_OFFSETS[k]);
    const input: LocalClusterConfigInput = {
      nodes: intFlag('nodes', values.nodes, 1, 16),
      port: intFlag('port', values.port, 0, 65535) ?? fromBase('port'),
      tricklePort: intFlag('trickle-port', values['trickle-port'], 0, 65535) ?? fromBase('tricklePort'),
      natsPort: intFlag('nats-port', values['nats-port'], 0, 65535) ?? fromBase('natsPort'),
      natsClusterPort: intFlag('nats-cluster-port', values['nats-cluster-port'], 0, 65535) ?? fromBase('natsClusterPort'),
      natsMonitorPort: intFlag('nats-monitor-port', values['nats-monitor-port'], 0, 65535) ?? fromBase('natsMonitorPort'),
      workspace: values.workspace,
      nodeConfigFile: values.config,
      nodeLogLevel: values['log-level'],
    };
    config = loadLocalClusterConfig(Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)));
  } catch (err) {
    return usageError('cluster', usage, (err as Error).message);
  }

  const logger = createLogger(process.env.SF_LOG_LEVEL ?? 'warn');
  // Signals from the start: a Ctrl-C while it comes up stops what has started.
  const signalled = untilSignal();
  const abort = new AbortController();
  void signalled.then(() => abort.abort());
  let cluster: LocalCluster;
  try {
    cluster = await startLocalCluster(config, {
      logger,
      signal: abort.signal,
      onNodeLog: (nodeId, line) => process.stderr.write(`[${nodeId}] ${line}\n`),
      onLoss: (l) =>
        process.stderr.write(
          `streamfleet cluster: ${l.name} (pid ${l.pid}) exited unexpectedly (${l.exit.code !== null ? `code ${l.exit.code}` : l.exit.signal}); the others keep running\n`,
        ),
    });
  } catch (err) {
    if (abort.signal.aborted) {
      process.stderr.write('streamfleet cluster: interrupted while starting; what had started is stopped\n');
      return 130;
    }
    process.stderr.write(`streamfleet cluster: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(describe(cluster));

  await signalled;
  process.stderr.write('streamfleet cluster: stopping the nodes, then the NATS servers\n');
  // A second signal means "now": SIGKILL of everything still running; the cleanup finishes after it.
  const now = (): void => cluster.kill();
  process.once('SIGINT', now);
  process.once('SIGTERM', now);
  await cluster.stop();
  process.off('SIGINT', now);
  process.off('SIGTERM', now);
  process.stdout.write('cluster stopped\n');
  return 0;
}
