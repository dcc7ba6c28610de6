// Runs nats-server from one of infra/'s config files on ephemeral ports, through the same code as
// `streamfleet cluster up` (src/cli/nats-cluster.ts: the file's own text with its ports, store dir and
// route addresses rewritten; a rewrite that does not find what it expects fails loudly).
import {
  startCluster as startNatsCluster,
  startFromConf as startNatsFromConf,
  type ConfPorts,
  type ConfServer,
} from '../../src/cli/nats-cluster.ts';

export { monitorJson, rewriteNatsConf, untilMonitor, type ConfPorts, type ConfServer, type Jsz, type Routez } from '../../src/cli/nats-cluster.ts';

/** Writes the rewritten config to a temp dir and starts nats-server on it; resolves on "Server is ready". */
export function startFromConf(text: string, ports: ConfPorts, env: Record<string, string> = {}, readyTimeoutMs = 15_000): Promise<ConfServer> {
  return startNatsFromConf(text, ports, { env, readyTimeoutMs });
}

/** Starts one server per config text on ephemeral ports, all routed to each other, and waits for routes and a meta leader. */
export function startCluster(confs: string[], env: (i: number) => Record<string, string> = () => ({})): Promise<ConfServer[]> {
  return startNatsCluster(confs, { env });
}
