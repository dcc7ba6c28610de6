// Effect `spawnWorker`: makes sure the stream's worker PROCESS runs (forked and joined to the bus),
// then opens the stream's pipeline in it (idempotent), with the resume point after a crash.
import { fromPromise } from 'xstate';
import type { SpawnWorkerInput, SpawnWorkerOutput } from '../machines/index.ts';
import { streamProcKey, type EffectDeps } from './deps.ts';

export function spawnWorkerLogic(deps: EffectDeps) {
  return fromPromise<SpawnWorkerOutput, SpawnWorkerInput>(async ({ input, signal }) => {
    const h = await deps.procs.ensure(streamProcKey(input.streamId), { shared: false, signal });
    const stream = deps.streams.pipelineConfig(input.streamId, { width: input.width, height: input.height });
    await deps.procs.request(h, { type: 'open_stream', stream }, deps.config.bus.requestTimeoutMs, signal);
    return { pid: h.pid };
  });
}
