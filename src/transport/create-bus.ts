// Picks a node's bus: NATS when a URL is configured, else the embedded bus. (A forked worker joins
// NATS itself or its parent's embedded bus over IPC: src/runner/main.ts.)
import { defaultConfig, type BusConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Bus } from './bus.ts';
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
