// Effect `spawnWorker`: makes sure the worker PROCESS runs (forked and joined to the bus): the
// stream's own, or the node's shared one for a shared stream (forked on first use, kept for the
// node's life); then opens the stream's pipeline in it (idempotent), with the resume point after a crash.
import { fromPromise } from 'xstate';
import type { SpawnWorkerInput, SpawnWorkerOutput } from '../machines/index.ts';
import type { EffectDeps, ProcessPlacement } from './deps.ts';

export function spawnWorkerLogic(deps: EffectDeps, place: ProcessPlacement) {
  return fromPromise<SpawnWorkerOutput, SpawnWorkerInput>(async ({ input, signal }) => {
    const h = await deps.procs.ensure(place.key(input.streamId), { shared: place.shared, signal });
    const stream = deps.streams.pipelineConfig(input.streamId, { width: input.width, height: input.height });
    await deps.procs.request(h, { type: 'open_stream', stream }, deps.config.bus.requestTimeoutMs, signal);
    return { pid: h.pid };
  });
}
