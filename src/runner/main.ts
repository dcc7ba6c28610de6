// The worker process entry, forked as the bundle actors/worker-bundle.ts builds of it (or through tsx for a test's own entry).
// Env: SF_PROC_ID, SF_NODE_ID, SF_CONFIG (JSON Config), SF_NATS_URL (absent: the parent's bus over
// IPC). Joins the bus, answers ProcCommands on sf.proc.<procId>.cmd, and exits 0 on `shutdown`,
// SIGTERM/SIGINT, or when the parent (IPC channel) or the bus goes away, so no worker is orphaned.
import '../polyfill.ts';
import { createLogger, type Logger } from '../log.ts';
import { mediaSelfTest } from '../media/selftest.ts';
import type { Bus } from '../transport/bus.ts';
import { connectParentBus } from '../transport/local/bridge-child.ts';
import { subjects } from '../transport/subjects.ts';
import type { Reply } from '../transport/worker-protocol.ts';
import { parseWorkerEnv, type WorkerEnv } from './env.ts';
import { WorkerHost } from './host.ts';
import { memoryFigures } from './memory.ts';

async function connect(env: WorkerEnv, log: Logger): Promise<Bus> {
  if (env.natsUrl) {
    // Loaded only when used: a worker on the embedded bus never loads the NATS client.
    const { connectNatsBus } = await import('../transport/nats/nats-bus.ts');
    const { natsUrl: _url, ...rest } = env.config.bus;
    // Reconnects forever whatever the node's setting: the media path does not need the bus, so an
    // outage must not end it (the bus holds its events meanwhile, up to bus.reconnectBufferBytes).
    return connectNatsBus(env.natsUrl, { ...rest, maxReconnectAttempts: -1, name: env.procId, logger: log });
  }
  return connectParentBus({ requestTimeoutMs: env.config.bus.requestTimeoutMs, maxPendingMessages: env.config.bus.maxPendingMessages, logger: log });
}

async function main(): Promise<void> {
  let env: WorkerEnv;
  try {
    env = parseWorkerEnv(process.env);
  } catch (err) {
    process.stderr.write(`streamfleet worker: bad environment: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger(env.config.logLevel).child({ procId: env.procId, nodeId: env.nodeId });
  const fatal = (what: string, err: unknown): never => {
    log.fatal({ err }, what);
    process.exit(1);
  };
  process.on('uncaughtException', (err) => fatal('uncaught exception', err));
  process.on('unhandledRejection', (err) => fatal('unhandled rejection', err));

  // Fails loudly when the Promise.withResolvers polyfill (or the codec build) is missing.
  const loadedMs = performance.now();
  let selfTestMs = 0;
  try {
    selfTestMs = (await mediaSelfTest(env.config.media)).ms;
  } catch (err) {
    fatal('media self-test failed', err);
  }

  let bus: Bus;
  try {
    bus = await connect(env, log);
  } catch (err) {
    return fatal('cannot join the bus', err);
  }
  const host = new WorkerHost({ bus, config: env.config, log, onFatal: (err) => fatal('inference thread died', err) });

  let exiting = false;
  const shutdown = async (why: string, code = 0, nodeGone = false): Promise<void> => {
    if (exiting) return;
    exiting = true;
    log.info({ why }, 'worker process shutting down');
    // A stuck close must not leave the process behind: the runtime's own grace bounds it too.
    const guard = setTimeout(() => process.exit(code), env.config.actors.workerStopGraceMs);
    guard.unref();
    await host.closeAll({ nodeGone }).catch((err: unknown) => log.error({ err }, 'closing pipelines failed'));
    await bus.flush().catch(() => undefined);
    await bus.close().catch(() => undefined);
    process.exit(code);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  // Forked with an IPC channel: the parent going away closes it.
  if (process.connected) process.once('disconnect', () => void shutdown('parent disconnected', 0, true));
  void bus.closed.then(() => void shutdown('bus closed'));

  const inbox = bus.subscribe(subjects.procCmd(env.procId));
  await bus.flush();
  bus.publish(subjects.procReady(env.procId));
  // Times since the process started: module loading, then the codec self-test, then joining the bus.
  const ms = (n: number) => Math.round(n);
  log.info({ pid: process.pid, bus: bus.kind, loadedMs: ms(loadedMs), selfTestMs: ms(selfTestMs), readyMs: ms(performance.now()), memory: memoryFigures() }, 'worker process ready');

  for await (const m of inbox) {
    let raw: unknown;
    try {
      raw = m.json();
    } catch {
      raw = undefined;
    }
    const isShutdown = (raw as { type?: unknown } | undefined)?.type === 'shutdown';
    void host.handle(raw).then(async (reply: Reply) => {
      try {
        m.respond(reply);
      } catch (err) {
        log.warn({ err }, 'reply not sent');
      }
      if (isShutdown && reply.ok) await shutdown('shutdown command');
    });
  }
}

await main();
