// Makes streamfleet's JetStream KV buckets (sf_streams, sf_nodes) hold N replicas on a NATS cluster.
//
// Why it exists: a node opens an existing bucket as it is, and creates a missing one with its
// library's default of ONE replica (src/transport/nats/nats-bus.ts; the bus config has no replicas
// field). On a 3-server cluster a one-replica bucket dies with its server, so this runs once before
// the nodes start (compose: the `nats-init` service; Kubernetes: the Deployment's init container):
// it creates missing buckets with N replicas and raises a bucket that already exists with fewer
// (JetStream moves the data itself). It never lowers replicas and never touches history or data.
// Idempotent; safe to run on every deploy.
//
//   node --import tsx infra/nats/ensure-buckets.ts --nats nats://nats-1:4222,nats://nats-2:4222 --replicas 3
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { defaultConfig, type BusConfig } from '../../src/config.ts';

export interface EnsureBucketsOptions {
  /** Replicas every bucket should have (3 on a 3-server cluster). */
  replicas: number;
  /** Buckets to ensure; default the two the nodes use (bus config `streamsBucket`, `nodesBucket`). */
  buckets?: string[];
  /** Bus config the names and the history of new buckets come from; default `defaultConfig.bus`. */
  bus?: Pick<BusConfig, 'streamsBucket' | 'nodesBucket' | 'kvHistory' | 'connectTimeoutMs' | 'requestTimeoutMs'>;
  /** Keep retrying (connect, a cluster still electing its leaders) this long before giving up. */
  waitMs?: number;
  /** How long a created or raised bucket may take to have a leader and every replica current. */
  catchUpMs?: number;
}

export type BucketAction = 'created' | 'scaled' | 'kept';

export interface BucketReport {
  bucket: string;
  action: BucketAction;
  /** Replicas the bucket has now. */
  replicas: number;
}

export class EnsureBucketsError extends Error {
  readonly code = 'ENSURE_BUCKETS';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EnsureBucketsError';
  }
}

/** The KV bucket's backing stream, as @nats-io/kv names it. */
const streamOf = (bucket: string): string => `KV_${bucket}`;

type Jsm = Awaited<ReturnType<typeof jetstreamManager>>;

/**
 * Waits until the bucket's stream has a leader and all its other replicas are current: only then is a
 * value written before the change safe from the loss of any one server. Raising replicas passes
 * through a moment with no leader while the new peers catch up; nothing announces its end, so ask.
 */
async function untilReplicated(jsm: Jsm, bucket: string, replicas: number, catchUpMs: number): Promise<void> {
  const deadline = Date.now() + catchUpMs;
  for (;;) {
    const c = (await jsm.streams.info(streamOf(bucket)).catch(() => undefined))?.cluster;
    const followers = c?.replicas ?? [];
    if (c?.leader && followers.length === replicas - 1 && followers.every((r) => r.current)) return;
    if (Date.now() > deadline) throw new EnsureBucketsError(`${bucket}: replicas not current after ${catchUpMs} ms (${JSON.stringify(c)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function ensureOne(nc: NatsConnection, bucket: string, replicas: number, history: number, timeoutMs: number, catchUpMs: number): Promise<BucketReport> {
  const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
  const exists = await jsm.streams.info(streamOf(bucket)).then(
    (si) => si,
    (err: unknown) => {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
      throw err;
    },
  );
  if (!exists) {
    const kv = await new Kvm(nc).create(bucket, { replicas, history, timeout: timeoutMs });
    const have = (await kv.status()).replicas;
    if (have > 1) await untilReplicated(jsm, bucket, have, catchUpMs);
    return { bucket, action: 'created', replicas: have };
  }
  const have = exists.config.num_replicas;
  if (have >= replicas) return { bucket, action: 'kept', replicas: have };
  const si = await jsm.streams.update(streamOf(bucket), { num_replicas: replicas });
  await untilReplicated(jsm, bucket, si.config.num_replicas, catchUpMs);
  return { bucket, action: 'scaled', replicas: si.config.num_replicas };
}

/**
 * Ensures every bucket has at least `replicas` replicas; returns what it did per bucket. Retries the
 * whole pass (a server still starting, JetStream still electing its meta leader) until `waitMs` has
 * passed, then throws EnsureBucketsError with the last failure as its cause.
 */
export async function ensureBuckets(servers: string | string[], opts: EnsureBucketsOptions): Promise<BucketReport[]> {
  const bus = opts.bus ?? defaultConfig.bus;
  const buckets = opts.buckets ?? [bus.streamsBucket, bus.nodesBucket];
  if (!Number.isInteger(opts.replicas) || opts.replicas < 1) throw new EnsureBucketsError(`bad replicas '${opts.replicas}'`);
  const deadline = Date.now() + (opts.waitMs ?? 0);
  let backoffMs = 250;
  for (;;) {
    let nc: NatsConnection | undefined;
    try {
      nc = await connect({ servers, name: 'streamfleet-ensure-buckets', timeout: bus.connectTimeoutMs, maxReconnectAttempts: 0 });
      const out: BucketReport[] = [];
      for (const b of buckets) out.push(await ensureOne(nc, b, opts.replicas, bus.kvHistory, bus.requestTimeoutMs, opts.catchUpMs ?? 30_000));
      return out;
    } catch (err) {
      if (Date.now() + backoffMs > deadline) {
        throw new EnsureBucketsError(`cannot give ${buckets.join(', ')} ${opts.replicas} replicas: ${(err as Error).message}`, { cause: err });
      }
    } finally {
      await nc?.close().catch(() => undefined);
    }
    // Nothing to await here but time: the cluster tells no one when its meta leader is elected.
    await new Promise((r) => setTimeout(r, backoffMs));
    backoffMs = Math.min(backoffMs * 2, 4_000);
  }
}

const usage = 'usage: ensure-buckets --nats URL[,URL...] [--replicas 3] [--bucket NAME ...] [--wait SECONDS]';

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        nats: { type: 'string' },
        replicas: { type: 'string', default: '3' },
        bucket: { type: 'string', multiple: true },
        wait: { type: 'string', default: '60' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${usage}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const replicas = Number(values.replicas);
  const wait = Number(values.wait);
  const servers = (values.nats ?? process.env.SF_NATS_URL ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (servers.length === 0 || !Number.isInteger(replicas) || replicas < 1 || !Number.isFinite(wait) || wait < 0) {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  try {
    const reports = await ensureBuckets(servers, { replicas, buckets: values.bucket, waitMs: wait * 1000 });
    for (const r of reports) process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  } catch (err) {
    const cause = (err as Error).cause instanceof Error ? `: ${((err as Error).cause as Error).message}` : '';
    process.stderr.write(`ensure-buckets: ${(err as Error).message}${cause}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
