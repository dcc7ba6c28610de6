// Picks the bus for this process: NATS when a URL is configured, else the embedded bus (in a
// node) or the parent's embedded bus over IPC (in a forked worker).
import { defaultConfig, type BusConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Bus } from './bus.ts';
import { connectParentBus } from './local/bridge-child.ts';
import { LocalBus } from './local/local-bus.ts';
import { connectNatsBus } from './nats/nats-bus.ts';

export interface CreateBusOptions {
  /** Connection name on NATS (e.g. the node id). */
  name?: string;
  logger?: Logger;
}

export async function createBus(config: BusConfig = defaultConfig.bus, opts: CreateBusOptions = {}): Promise<Bus> {
  const { natsUrl, ...rest } = config;
  if (natsUrl) return connectNatsBus(natsUrl, { ...rest, ...opts });
  return new LocalBus(rest);
}

/**
 * The bus of a forked worker process: NATS when a URL is configured (the worker connects itself),
 * else its parent's embedded bus over the IPC channel (the parent must have called `bridgeChild`).
 */
export async function createWorkerBus(config: BusConfig = defaultConfig.bus, opts: CreateBusOptions = {}): Promise<Bus> {
  const { natsUrl, ...rest } = config;
  if (natsUrl) return connectNatsBus(natsUrl, { ...rest, ...opts });
  return connectParentBus({ ...rest, logger: opts.logger });
}
