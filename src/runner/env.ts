// The worker process's environment, parsed once at start-up.
import { z } from 'zod';
import { loadConfig, WorkerConfigSchema, type Config } from '../config.ts';

export const WorkerEnvSchema = z.object({
  SF_PROC_ID: z.string().min(1),
  SF_NODE_ID: z.string().min(1).optional(),
  /** JSON of the node's WorkerConfig (its config less the HTTP section; absent: defaults). */
  SF_CONFIG: z.string().optional(),
  /** NATS URL; absent: the parent's embedded bus over the IPC channel. */
  SF_NATS_URL: z.string().min(1).optional(),
});

export interface WorkerEnv {
  procId: string;
  nodeId: string;
  natsUrl: string | undefined;
  config: Readonly<Config>;
}

/** Throws a zod error (or SyntaxError for bad SF_CONFIG JSON) naming what is wrong. */
export function parseWorkerEnv(env: NodeJS.ProcessEnv): WorkerEnv {
  const e = WorkerEnvSchema.parse(env);
  // The HTTP section is not handed to workers: loadConfig gives it its defaults, which nothing here reads.
  const config = loadConfig(WorkerConfigSchema.partial().parse(e.SF_CONFIG ? JSON.parse(e.SF_CONFIG) : {}));
  return { procId: e.SF_PROC_ID, nodeId: e.SF_NODE_ID ?? config.nodeId, natsUrl: e.SF_NATS_URL, config };
}
